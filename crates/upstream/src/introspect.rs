//! Ask an exchange what a key can do: sign the venue's key-introspection request, send it
//! through [`Upstream`] (retried: it changes nothing), parse the answer into a [`KeyProfile`].
//! Many keys at once with bounded concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use keyfence_exchange::{
    Credential, HttpRequest, KeyError, KeyInfoError, KeyProfile, SignContext, SigningKey, Venue,
    key_info_request, parse_key_info, sign,
};
use ring::rand::SystemRandom;
use tokio::sync::Semaphore;

use crate::{Blame, Retry, Upstream, UpstreamError, UpstreamResponse};

/// One key to introspect.
#[derive(Debug)]
pub struct Target {
    pub label: String,
    pub venue: Venue,
    /// The venue's base URL (production, a testnet, or the simulator).
    pub base_url: String,
    pub credential: Credential,
}

/// Why a key could not be introspected (or its account valued). Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("the credential cannot be used: {0}")]
    Credential(#[from] KeyError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("the exchange refused the key (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the exchange's answer is not what {venue} sends (HTTP {status}): {detail}")]
    Garbage {
        venue: Venue,
        status: u16,
        detail: String,
    },
}

impl IntrospectError {
    /// Who is at fault: the key and its configuration, keyfence, or the exchange.
    pub fn blame(&self) -> IntrospectBlame {
        match self {
            // 418 (IP banned) and 429 (rate limited) are the exchange holding back, not a key fault.
            IntrospectError::Refused {
                status: 418 | 429, ..
            } => IntrospectBlame::Exchange,
            IntrospectError::Credential(_) | IntrospectError::Refused { .. } => {
                IntrospectBlame::Key
            }
            IntrospectError::Upstream(e) => match e.blame() {
                Blame::Exchange => IntrospectBlame::Exchange,
                Blame::Keyfence => IntrospectBlame::Keyfence,
            },
            IntrospectError::Garbage { .. } => IntrospectBlame::Exchange,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntrospectBlame {
    /// The key or its settings: invalid, expired, wrong secret, IP not allowed.
    Key,
    /// The exchange: unreachable, failing, rate limiting, answering garbage.
    Exchange,
    /// keyfence itself (a bad base URL in its configuration).
    Keyfence,
}

/// Kraken nonces: strictly increasing across every request of this process, above the clock in
/// microseconds (so a later process starts higher).
#[derive(Debug)]
pub struct Nonces(AtomicU64);

impl Default for Nonces {
    fn default() -> Self {
        Nonces(AtomicU64::new(0))
    }
}

impl Nonces {
    pub fn next(&self) -> u64 {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut cur = self.0.load(Ordering::SeqCst);
        loop {
            let next = now_us.max(cur.saturating_add(1));
            match self
                .0
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(seen) => cur = seen,
            }
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

/// Introspect one key.
pub async fn introspect(
    up: &Upstream,
    target: &Target,
    nonces: &Nonces,
) -> Result<KeyProfile, IntrospectError> {
    let venue = target.venue;
    signed(up, target, nonces, key_info_request, |body| {
        parse_key_info(venue, body)
    })
    .await
}

/// Send the request `build` makes for the target's venue, signed with its key (retried: only
/// reads come here), and read the answer with `parse`.
pub(crate) async fn signed<T>(
    up: &Upstream,
    target: &Target,
    nonces: &Nonces,
    build: fn(Venue) -> HttpRequest,
    parse: impl Fn(&[u8]) -> Result<T, KeyInfoError>,
) -> Result<T, IntrospectError> {
    let rng = SystemRandom::new();
    let key = SigningKey::from_credential(target.venue, &target.credential, &rng)?;
    let host = target
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    let venue = target.venue;
    let resp = up
        .send(&target.base_url, Retry::Idempotent, |_| {
            let mut req = build(venue);
            let ctx = SignContext {
                now_ms: now_ms(),
                nonce: Some(nonces.next()),
                host: &host,
                rng: &rng,
            };
            sign(venue, &key, &mut req, &ctx).map_err(|e| e.to_string())?;
            Ok(req)
        })
        .await?;
    answer(venue, &resp, parse(&resp.body))
}

/// What an exchange's answer means: the parsed value only on HTTP 200; the venue's own error,
/// or a 4xx, is a refusal; anything else unreadable is garbage from the exchange.
pub(crate) fn answer<T>(
    venue: Venue,
    resp: &UpstreamResponse,
    parsed: Result<T, KeyInfoError>,
) -> Result<T, IntrospectError> {
    match parsed {
        Ok(value) if resp.status == 200 => Ok(value),
        Ok(_) => Err(IntrospectError::Refused {
            status: resp.status,
            message: excerpt(&resp.body),
        }),
        Err(KeyInfoError::Venue { code, message }) => Err(IntrospectError::Refused {
            status: resp.status,
            message: format!("{code}: {message}"),
        }),
        Err(KeyInfoError::Malformed(detail)) if resp.status == 200 => {
            Err(IntrospectError::Garbage {
                venue,
                status: resp.status,
                detail,
            })
        }
        Err(KeyInfoError::Malformed(_)) if (400..500).contains(&resp.status) => {
            Err(IntrospectError::Refused {
                status: resp.status,
                message: excerpt(&resp.body),
            })
        }
        Err(KeyInfoError::Malformed(detail)) => Err(IntrospectError::Garbage {
            venue,
            status: resp.status,
            detail,
        }),
    }
}

/// Introspect every target, at most `concurrency` at a time; results in the targets' order.
/// `on_done` is called as each finishes (for a progress bar).
pub async fn introspect_all(
    up: &Upstream,
    targets: Vec<Target>,
    concurrency: usize,
    on_done: impl Fn(&str) + Send + Sync + 'static,
) -> Vec<(Target, Result<KeyProfile, IntrospectError>)> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let nonces = Arc::new(Nonces::default());
    let on_done = Arc::new(on_done);
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.into_iter().enumerate() {
        let sem = sem.clone();
        let up = up.clone();
        let nonces = nonces.clone();
        let on_done = on_done.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = introspect(&up, &t, &nonces).await;
            on_done(&t.label);
            (i, t, r)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(item) = joined {
            out.push(item);
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, t, r)| (t, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_strictly_increase() {
        let n = Nonces::default();
        let mut last = 0;
        for _ in 0..10_000 {
            let x = n.next();
            assert!(x > last);
            last = x;
        }
    }
}
