//! Cancel every open order of one account (`keyfence kill --cancel-open`): list, cancel, list
//! again until nothing is left, with the requests [`keyfence_exchange::cancel`] builds.
//!
//! Listing is retried (it changes nothing); each cancel request is sent once
//! ([`Retry::Never`]): a cancel that timed out may have worked, and the next listing tells.
//! The loop is bounded: orders that survive [`MAX_ROUNDS`] rounds, or a round that cancels
//! nothing, end in [`CancelError::Remaining`] rather than a silent success.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use keyfence_exchange::cancel::{
    OpenOrder, account_listings, account_probe, cancel_requests, cancelled_count,
    list_open_requests, parse_open_orders,
};
use keyfence_exchange::{HttpRequest, KeyInfoError, SignContext, SigningKey, Venue, sign};
use ring::rand::SystemRandom;

use crate::{Retry, Upstream, UpstreamResponse};

/// Most cancel rounds (each: list, then cancel what was listed) before giving up.
pub const MAX_ROUNDS: usize = 5;

/// What [`cancel_open`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelSummary {
    /// Distinct open orders seen across all listings; `None` where the venue cancels
    /// everything in one call without listing (Kraken `CancelAll`). Listings are paged (Bybit
    /// 50, OKX 100) while Bybit's spot cancel-all takes every order, so `cancelled` can exceed
    /// `listed` there.
    pub listed: Option<usize>,
    /// Orders the venue said it cancelled.
    pub cancelled: usize,
}

/// Which part of the work failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelStep {
    List,
    Cancel,
}

impl fmt::Display for CancelStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelStep::List => "listing open orders",
            CancelStep::Cancel => "cancelling open orders",
        })
    }
}

/// Why open orders could not all be cancelled. Names the venue and the step; never carries
/// key material, signatures or signed URLs.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("{venue}: cannot sign the request for {step}: {reason}")]
    Sign {
        venue: Venue,
        step: CancelStep,
        reason: String,
    },
    #[error("{venue}: {step} failed: {reason}")]
    Upstream {
        venue: Venue,
        step: CancelStep,
        reason: String,
        /// Whether trying again later could succeed (the exchange was down or slow).
        retryable: bool,
    },
    #[error(
        "{venue}: the exchange refused {step} (HTTP {status}): {message}; help: check that the \
         key may read and cancel orders on {venue}, or cancel them on the {venue} website"
    )]
    Refused {
        venue: Venue,
        step: CancelStep,
        status: u16,
        message: String,
    },
    #[error("{venue}: the answer to {step} cannot be read (HTTP {status}): {detail}")]
    Garbage {
        venue: Venue,
        step: CancelStep,
        status: u16,
        detail: String,
    },
    #[error(
        "{venue}: {remaining} open orders remain after {rounds} cancel rounds; help: cancel them \
         on the {venue} website, then run the command again"
    )]
    Remaining {
        venue: Venue,
        remaining: usize,
        rounds: usize,
    },
}

impl CancelError {
    pub fn venue(&self) -> Venue {
        match self {
            CancelError::Sign { venue, .. }
            | CancelError::Upstream { venue, .. }
            | CancelError::Refused { venue, .. }
            | CancelError::Garbage { venue, .. }
            | CancelError::Remaining { venue, .. } => *venue,
        }
    }

    /// The step that failed; `None` when every step worked but orders remain.
    pub fn step(&self) -> Option<CancelStep> {
        match self {
            CancelError::Sign { step, .. }
            | CancelError::Upstream { step, .. }
            | CancelError::Refused { step, .. }
            | CancelError::Garbage { step, .. } => Some(*step),
            CancelError::Remaining { .. } => None,
        }
    }
}

/// Everything one request needs to be signed and sent.
struct Call<'a> {
    up: &'a Upstream,
    base_url: &'a str,
    venue: Venue,
    key: &'a SigningKey,
    host: &'a str,
    rng: SystemRandom,
}

/// Cancel every open order the account behind `key` has on `venue`, at `base_url`.
///
/// `nonce` gives Kraken a fresh, strictly increasing nonce per request (share the source with
/// every other request made with the key); `host` is the `host[:port]` of `base_url`, which
/// Coinbase binds into its JWT. A listing that fails (a venue has several: OKX lists its algo
/// orders type by type) does not stop the others: what they list is cancelled, then the
/// listing's error is returned.
pub async fn cancel_open(
    up: &Upstream,
    base_url: &str,
    venue: Venue,
    key: &SigningKey,
    nonce: &mut (dyn FnMut() -> u64 + Send),
    host: &str,
) -> Result<CancelSummary, CancelError> {
    let call = Call {
        up,
        base_url,
        venue,
        key,
        host,
        rng: SystemRandom::new(),
    };
    let mut lists = list_open_requests(venue);
    // What the account holds beyond the venue's usual listings (Bybit: options, on a unified
    // account). If that cannot be learnt, the usual listings still run and their orders are
    // cancelled before the error is reported, as with a listing that fails.
    let mut probe_failed = None;
    if let Some(probe) = account_probe(venue) {
        match call.probe(probe, nonce).await {
            Ok(more) => lists.extend(more),
            Err(e) => probe_failed = Some(e),
        }
    }
    if lists.is_empty() {
        // One call cancels everything and says how many.
        let mut cancelled = 0;
        for req in cancel_requests(venue, &[]) {
            cancelled += call.cancel(req, nonce).await?;
        }
        return Ok(CancelSummary {
            listed: None,
            cancelled,
        });
    }
    let mut seen: BTreeSet<OpenOrder> = BTreeSet::new();
    let mut cancelled = 0;
    let mut rounds = 0;
    let mut stalled = false;
    loop {
        let mut open = Vec::new();
        let mut failed = probe_failed.take();
        for req in &lists {
            match call.list(req.clone(), nonce).await {
                Ok(listed) => open.extend(listed),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        seen.extend(open.iter().cloned());
        if let Some(e) = failed {
            // Cancel what could be listed before telling what could not.
            for req in cancel_requests(venue, &open) {
                drop(call.cancel(req, nonce).await);
            }
            return Err(e);
        }
        if open.is_empty() {
            return Ok(CancelSummary {
                listed: Some(seen.len()),
                cancelled,
            });
        }
        if rounds == MAX_ROUNDS || stalled {
            return Err(CancelError::Remaining {
                venue,
                remaining: open.len(),
                rounds,
            });
        }
        let mut this_round = 0;
        for req in cancel_requests(venue, &open) {
            this_round += call.cancel(req, nonce).await?;
        }
        tracing::debug!(%venue, rounds, listed = open.len(), cancelled = this_round, "cancel round");
        cancelled += this_round;
        stalled = this_round == 0;
        rounds += 1;
    }
}

impl Call<'_> {
    /// A read of the listing step (retried: it changes nothing), parsed by `parse`.
    async fn fetch<T>(
        &self,
        req: HttpRequest,
        nonce: &mut (dyn FnMut() -> u64 + Send),
        parse: impl Fn(Venue, &[u8]) -> Result<T, KeyInfoError>,
    ) -> Result<T, CancelError> {
        let resp = self
            .send(CancelStep::List, Retry::Idempotent, req, nonce)
            .await?;
        self.read(CancelStep::List, &resp, |body| parse(self.venue, body))
    }

    async fn list(
        &self,
        req: HttpRequest,
        nonce: &mut (dyn FnMut() -> u64 + Send),
    ) -> Result<Vec<OpenOrder>, CancelError> {
        self.fetch(req, nonce, parse_open_orders).await
    }

    async fn probe(
        &self,
        req: HttpRequest,
        nonce: &mut (dyn FnMut() -> u64 + Send),
    ) -> Result<Vec<HttpRequest>, CancelError> {
        self.fetch(req, nonce, account_listings).await
    }

    async fn cancel(
        &self,
        req: HttpRequest,
        nonce: &mut (dyn FnMut() -> u64 + Send),
    ) -> Result<usize, CancelError> {
        let resp = self
            .send(CancelStep::Cancel, Retry::Never, req, nonce)
            .await?;
        self.read(CancelStep::Cancel, &resp, |body| {
            cancelled_count(self.venue, body)
        })
    }

    async fn send(
        &self,
        step: CancelStep,
        retry: Retry,
        req: HttpRequest,
        nonce: &mut (dyn FnMut() -> u64 + Send),
    ) -> Result<UpstreamResponse, CancelError> {
        let venue = self.venue;
        // Signing errors surface through `send` as `Build`; keep our own, clearer copy.
        let mut sign_error = None;
        let result = self
            .up
            .send(self.base_url, retry, |_| {
                let mut signed = req.clone();
                let ctx = SignContext {
                    now_ms: now_ms(),
                    nonce: (venue == Venue::Kraken).then(&mut *nonce),
                    host: self.host,
                    rng: &self.rng,
                };
                sign(venue, self.key, &mut signed, &ctx).map_err(|e| {
                    let reason = e.to_string();
                    sign_error = Some(reason.clone());
                    reason
                })?;
                Ok(signed)
            })
            .await;
        match result {
            Ok(resp) => Ok(resp),
            Err(_) if sign_error.is_some() => Err(CancelError::Sign {
                venue,
                step,
                reason: sign_error.unwrap_or_default(),
            }),
            Err(e) => Err(CancelError::Upstream {
                venue,
                step,
                reason: e.to_string(),
                retryable: e.retryable(),
            }),
        }
    }

    /// Read an answer whatever its status: venues put their verdict in the body (Binance's
    /// "nothing open on this symbol" is an HTTP 400 that means zero cancelled).
    fn read<T>(
        &self,
        step: CancelStep,
        resp: &UpstreamResponse,
        parse: impl Fn(&[u8]) -> Result<T, KeyInfoError>,
    ) -> Result<T, CancelError> {
        let venue = self.venue;
        match parse(&resp.body) {
            Ok(v) => Ok(v),
            Err(KeyInfoError::Venue { code, message }) => Err(CancelError::Refused {
                venue,
                step,
                status: resp.status,
                message: format!("{code}: {message}"),
            }),
            Err(KeyInfoError::Malformed(_)) if (400..500).contains(&resp.status) => {
                Err(CancelError::Refused {
                    venue,
                    step,
                    status: resp.status,
                    message: excerpt(&resp.body),
                })
            }
            Err(KeyInfoError::Malformed(detail)) => Err(CancelError::Garbage {
                venue,
                step,
                status: resp.status,
                detail,
            }),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 160 {
        format!("{}…", one_line.chars().take(160).collect::<String>())
    } else {
        one_line
    }
}
