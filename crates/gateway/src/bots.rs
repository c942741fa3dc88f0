//! The bots a running gateway knows: every live credential by venue and API key, with what it
//! takes to verify it. Rebuilt from the store whenever `bot add/revoke/rotate` changes it.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::Arc;

use keyfence_exchange::{KeyLookup, VerifyKey};
use keyfence_store::BotRecord;
use keyfence_types::Venue;
use keyfence_vault::GatewaySecrets;

use crate::cidr::Cidr;
use crate::issue::Kept;

/// One bot.
#[derive(Debug)]
pub struct Bot {
    pub name: String,
    pub venue: Venue,
    pub key_label: String,
    pub policy: String,
    pub allow: Vec<Cidr>,
    pub revoked: bool,
}

/// One credential of a bot (two during a rotation overlap).
#[derive(Debug)]
pub struct BotCredential {
    pub bot: Arc<Bot>,
    pub id: String,
    pub verify: VerifyKey,
    pub valid_until_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub struct BotTable {
    creds: HashMap<(Venue, String), BotCredential>,
    /// Credentials that could not be loaded (a damaged seal): named, never guessed at.
    pub problems: Vec<String>,
}

impl BotTable {
    pub fn build(records: &[BotRecord], secrets: &GatewaySecrets) -> Self {
        let mut table = BotTable::default();
        for r in records {
            let allow: Vec<Cidr> = r
                .allow_ips
                .iter()
                .filter_map(|c| match Cidr::from_str(c) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        table.problems.push(format!("bot `{}`: {e}", r.name));
                        None
                    }
                })
                .collect();
            // A bot whose allowlist cannot be read entirely is not loaded at all (fail closed).
            if allow.len() != r.allow_ips.len() {
                continue;
            }
            let bot = Arc::new(Bot {
                name: r.name.clone(),
                venue: r.venue,
                key_label: r.key_label.clone(),
                policy: r.policy.clone(),
                allow,
                revoked: r.revoked_ms.is_some(),
            });
            for c in &r.credentials {
                match kept(c, secrets).and_then(|k| {
                    k.verify_key(r.venue)
                        .map_err(|e| format!("cannot use its key: {e}"))
                }) {
                    Ok(verify) => {
                        table.creds.insert(
                            (r.venue, c.api_key.clone()),
                            BotCredential {
                                bot: bot.clone(),
                                id: c.id.clone(),
                                verify,
                                valid_until_ms: c.valid_until_ms,
                            },
                        );
                    }
                    Err(e) => table
                        .problems
                        .push(format!("bot `{}` credential {}: {e}", r.name, c.id)),
                }
            }
        }
        table
    }

    pub fn get(&self, venue: Venue, api_key: &str) -> Option<&BotCredential> {
        self.creds.get(&(venue, api_key.to_owned()))
    }

    /// The lookup `keyfence_exchange::authenticate` uses, for one venue.
    pub fn lookup(&self, venue: Venue) -> VenueKeys<'_> {
        VenueKeys { table: self, venue }
    }

    pub fn len(&self) -> usize {
        self.creds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }
}

fn kept(c: &keyfence_store::BotCredential, secrets: &GatewaySecrets) -> Result<Kept, String> {
    match (&c.sealed, &c.public_key) {
        (Some(sealed), _) => {
            let plain = secrets
                .unseal(sealed)
                .map_err(|_| "its sealed secret does not open with this vault".to_owned())?;
            serde_json::from_slice::<Kept>(&plain)
                .map_err(|_| "its sealed secret is not a bot credential".to_owned())
        }
        (None, Some(pem)) => Ok(Kept {
            secret: None,
            passphrase: None,
            public_key: Some(pem.clone()),
        }),
        (None, None) => Err("it holds no key".to_owned()),
    }
}

pub struct VenueKeys<'a> {
    table: &'a BotTable,
    venue: Venue,
}

impl KeyLookup for VenueKeys<'_> {
    fn find(&self, api_key: &str) -> Option<&VerifyKey> {
        self.table.get(self.venue, api_key).map(|c| &c.verify)
    }
}
