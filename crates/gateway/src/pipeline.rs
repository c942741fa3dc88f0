//! One request, start to finish:
//!
//! 1. classify; public endpoints pass through unsigned and unjournaled;
//! 2. authenticate the bot's signature as the venue would (raw bytes, the venue's window);
//!    refuse revoked or expired credentials, exact replays, Kraken nonces that do not increase
//!    (each recorded in the store before the request goes on, so this holds across restarts),
//!    and source IPs outside the bot's allowlist;
//! 3. read the orders (unreadable orders are refused) and decide by the bot's policy, which
//!    reserves capacity (caps hold under concurrency);
//! 4. for trading requests, commit the reservation before forwarding (caps survive a crash);
//! 5. re-sign with the real key and forward; give the capacity back if the exchange rejected;
//! 6. once the reservation is on disk (`sync = "full"`: its fsync ran while the request was at
//!    the exchange), queue the journal entry and answer with the exchange's response
//!    unchanged. The entry commits right after (group commit); if the gateway dies first, the
//!    reservation becomes a "recovery" entry at the next start, so the request still counts.
//!    Refusals are journaled before they are answered.
//!
//! Every refusal is answered in the venue's own error shape with the rule id in the message.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use keyfence_exchange::{
    AuthContext, AuthError, Denial, DenialKind, EndpointClass, HttpRequest, NativeResponse, Order,
    Side, SignContext, SigningKey,
};
use keyfence_policy::{Decision, Facts, Ledger, Mode, PolicyConfig, Prices as _, Reservation};
use keyfence_store::{Journal, NewEntry, Pending, Store};
use keyfence_types::Venue;
use keyfence_upstream::{Retry, UpstreamError};
use keyfence_vault::GatewaySecrets;
use rust_decimal::Decimal;

use crate::bots::{BotCredential, BotTable};
use crate::config::GatewayConfig;
use crate::nonce::NonceSource;
use crate::prices::{Feed, PriceBook};
use crate::replay::ReplayCache;
use crate::{now_ms, now_us, outcome};

/// A real key, ready to sign.
pub struct RealKey {
    pub venue: Venue,
    pub signer: SigningKey,
    /// Kraken only.
    pub nonces: Option<NonceSource>,
}

/// Everything a listener needs, shared by all of them.
pub struct Gateway {
    pub config: GatewayConfig,
    pub store: Store,
    pub journal: Journal,
    pub ledger: Ledger,
    pub prices: Arc<PriceBook>,
    pub feeds: HashMap<Venue, Feed>,
    pub replay: ReplayCache,
    pub keys: HashMap<String, RealKey>,
    pub secrets: GatewaySecrets,
    bots: RwLock<Arc<BotTable>>,
    /// Kraken bot nonces: last accepted per bot credential id.
    bot_nonces: std::sync::Mutex<HashMap<String, u64>>,
    stamp: AtomicU64,
    /// When (µs after `born`) the bots and the kill switch were last known current: the control
    /// stamp was read then and matched what is loaded. See [`keyfence_store::STAMP_FRESH`].
    current_at: AtomicU64,
    born: Instant,
    mode: AtomicU8,
    reload: tokio::sync::Mutex<()>,
    rng: ring::rand::SystemRandom,
}

fn mode_to_u8(m: Mode) -> u8 {
    match m {
        Mode::Active => 0,
        Mode::Reducing => 1,
        Mode::Halted => 2,
    }
}

fn mode_from_u8(v: u8) -> Mode {
    match v {
        0 => Mode::Active,
        1 => Mode::Reducing,
        _ => Mode::Halted,
    }
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        store: Store,
        keys: HashMap<String, RealKey>,
        secrets: GatewaySecrets,
        feeds: HashMap<Venue, Feed>,
    ) -> Self {
        let journal = store.journal();
        Gateway {
            config,
            journal,
            store,
            ledger: Ledger::new(),
            prices: Arc::new(PriceBook::default()),
            feeds,
            replay: ReplayCache::default(),
            keys,
            secrets,
            bots: RwLock::new(Arc::new(BotTable::default())),
            bot_nonces: std::sync::Mutex::new(HashMap::new()),
            stamp: AtomicU64::new(u64::MAX),
            current_at: AtomicU64::new(0),
            born: Instant::now(),
            mode: AtomicU8::new(mode_to_u8(Mode::Halted)),
            reload: tokio::sync::Mutex::new(()),
            rng: ring::rand::SystemRandom::new(),
        }
    }

    /// The kill switch as the policy sees it.
    pub fn mode(&self) -> Mode {
        mode_from_u8(self.mode.load(Ordering::Acquire))
    }

    fn bot_nonces(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.bot_nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn bots(&self) -> Arc<BotTable> {
        match self.bots.read() {
            Ok(b) => b.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-read the kill switch (and the bots, when the control stamp moved). Called per request
    /// (which looks at the stamp at most once per [`keyfence_store::STAMP_FRESH`]: every
    /// change waits that long twice before it is reported done, so a request that starts after
    /// it sees it), and every 50 ms by a background task.
    pub async fn sync(&self, force: bool) {
        let fresh = u64::try_from(keyfence_store::STAMP_FRESH.as_micros()).unwrap_or(u64::MAX);
        let looked = self.micros();
        let at = self.current_at.load(Ordering::Acquire);
        if !force && at != 0 && looked.saturating_sub(at) < fresh {
            return;
        }
        let stamp = self.store.stamp();
        if !force && stamp == self.stamp.load(Ordering::Acquire) {
            self.current_at.fetch_max(looked, Ordering::AcqRel);
            return;
        }
        let _guard = self.reload.lock().await;
        if !force && stamp == self.stamp.load(Ordering::Acquire) {
            self.current_at.fetch_max(looked, Ordering::AcqRel);
            return;
        }
        let mode = self.store.control().await.mode;
        self.mode.store(mode_to_u8(mode), Ordering::Release);
        match self.store.bots().await {
            Ok(records) => {
                let table = BotTable::build(&records, &self.secrets);
                for p in &table.problems {
                    tracing::error!(problem = %p, "bot not loaded");
                }
                if let Ok(mut b) = self.bots.write() {
                    *b = Arc::new(table);
                }
                self.stamp.store(stamp, Ordering::Release);
                self.current_at.fetch_max(looked, Ordering::AcqRel);
            }
            // Keep the previous table and try again on the next request.
            Err(e) => tracing::error!(error = %e, "cannot read the bots"),
        }
    }

    fn micros(&self) -> u64 {
        // At least 1: 0 is "never".
        u64::try_from(self.born.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Only the kill switch (the 50 ms poll). Under the reload lock: a mode read before a
    /// change and stored after a reload that saw the change would undo it until the next poll.
    pub async fn poll_mode(&self) {
        let _guard = self.reload.lock().await;
        let mode = self.store.control().await.mode;
        self.mode.store(mode_to_u8(mode), Ordering::Release);
    }

    /// Seed the ledger from the store after a (re)start: today's usage and positions, with
    /// reservations that were in flight when the gateway stopped counted as used.
    pub async fn seed(&self) -> Result<(), keyfence_store::StoreError> {
        let recovered = self.store.recover_pending().await?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "requests in flight when the gateway stopped are journaled with an unknown outcome and still count against caps"
            );
        }
        let day = now_ms().div_euclid(86_400_000);
        for u in self.store.usage(day).await? {
            self.ledger
                .seed(&u.bot, day, u.notional, u.orders, &u.positions);
        }
        Ok(())
    }
}

/// The answer to send back.
pub type Answer = NativeResponse;

/// What a request was, for the journal.
struct Record {
    bot: Option<String>,
    class: EndpointClass,
    canonical_path: Option<String>,
    first: Option<Order>,
    orders: u64,
    notional: Option<Decimal>,
    positions: Vec<(String, Decimal)>,
}

pub struct Incoming<'a> {
    pub venue: Venue,
    pub req: HttpRequest,
    pub peer: IpAddr,
    /// The Host the bot addressed (Coinbase binds it into the JWT).
    pub host: &'a str,
}

/// A request refused before it could be read (a body over the size limit): journaled too.
pub async fn refuse_unread(gw: &Gateway, venue: Venue, path: &str, denial: Denial) -> Answer {
    let rec = Record {
        bot: None,
        class: EndpointClass::Unknown,
        canonical_path: keyfence_exchange::path::canonical(path),
        first: None,
        orders: 0,
        notional: None,
        positions: Vec::new(),
    };
    refuse(
        gw,
        venue,
        &rec,
        "payload-too-large",
        denial,
        now_ms(),
        Instant::now(),
    )
    .await
}

pub async fn handle(gw: &Gateway, inc: Incoming<'_>) -> Answer {
    let started = Instant::now();
    let venue = inc.venue;
    let now = now_ms();
    let class = keyfence_exchange::classify(venue, &inc.req);
    if class == EndpointClass::Public {
        return forward_public(gw, venue, inc.req).await;
    }
    gw.sync(false).await;

    let mut rec = Record {
        bot: None,
        class,
        canonical_path: keyfence_exchange::path::canonical(&inc.req.path),
        first: None,
        orders: 0,
        notional: None,
        positions: Vec::new(),
    };

    // --- 2. who is asking
    let bots = gw.bots();
    let (cred, nonce) = match authenticate(&bots, &inc, now) {
        Ok(c) => c,
        Err((rule, denial)) => return refuse(gw, venue, &rec, rule, denial, now, started).await,
    };
    rec.bot = Some(cred.bot.name.clone());
    if let Err((rule, denial)) = admit(cred, &inc, now) {
        return refuse(gw, venue, &rec, rule, denial, now, started).await;
    }
    let cancel = class == EndpointClass::Cancel;
    if let Err((rule, denial)) = fresh(gw, cred, nonce, &inc, now, cancel).await {
        return refuse(gw, venue, &rec, rule, denial, now, started).await;
    }

    // --- 3. what it asks for, and may it
    let orders = match keyfence_exchange::parse_orders(venue, &inc.req) {
        Ok(o) => o,
        Err(e) => {
            let d = Denial::new(
                DenialKind::BadRequest,
                format!("keyfence unreadable-order: {e}"),
            );
            return refuse(gw, venue, &rec, "unreadable-order", d, now, started).await;
        }
    };
    rec.first = orders.first().cloned();
    let Some(policy) = gw.config.policies.get(&cred.bot.policy) else {
        let d = Denial::new(
            DenialKind::PermissionDenied,
            format!(
                "keyfence policy-missing: the bot's policy `{}` is not in the gateway config",
                cred.bot.policy
            ),
        );
        return refuse(gw, venue, &rec, "policy-missing", d, now, started).await;
    };
    let risk_reducing = matches!(class, EndpointClass::Read | EndpointClass::Cancel);
    if !risk_reducing && !gw.journal.healthy() {
        let d = Denial::new(
            DenialKind::Unavailable,
            "keyfence journal-unavailable: the journal cannot be written, so nothing that trades is forwarded",
        );
        return refuse(gw, venue, &rec, "journal-unavailable", d, now, started).await;
    }
    ensure_prices(gw, venue, policy, &orders).await;
    let decision = gw.ledger.decide(
        policy,
        &Facts {
            bot: &cred.bot.name,
            venue,
            class,
            orders: &orders,
            now_ms: now,
            mode: gw.mode(),
        },
        gw.prices.as_ref(),
    );
    rec.notional = decision.notional;
    if !decision.allowed {
        let rule = decision.rules.first().copied().unwrap_or("policy");
        let d = Denial::new(DenialKind::PermissionDenied, decision.message.clone());
        return refuse(gw, venue, &rec, rule, d, now, started).await;
    }
    if let Some(r) = &decision.reservation {
        rec.positions = r.positions.clone();
        rec.orders = r.orders;
    }

    // --- 4. record the reservation before anything reaches the exchange (committed: a crash
    // of the gateway cannot lose it; with `sync = "full"` its fsync runs while the request is
    // at the exchange, and the answer waits for it below)
    let (reservation_id, reserved) = match &decision.reservation {
        Some(r) => match reserve(gw, venue, &rec, r, now).await {
            Ok((id, reserved)) => (Some(id), Some(reserved)),
            Err(id) => {
                gw.ledger.release(r);
                let d = Denial::new(
                    DenialKind::Unavailable,
                    "keyfence journal-unavailable: the reservation could not be recorded",
                );
                // The entry names the reservation: if its record reached the log, this
                // refusal settles it (it was never forwarded).
                let e = refusal_entry(
                    &rec,
                    venue,
                    "journal-unavailable",
                    &d,
                    now,
                    started,
                    Some(id),
                );
                return answer_refusal(gw, venue, e, &d, now).await;
            }
        },
        None => (None, None),
    };

    // --- 5. re-sign and forward
    let sent = forward_signed(gw, venue, &cred.bot.key_label, inc.req, class).await;
    let mut counted = true;
    let (answer, status, order_id) = match sent {
        Ok(resp) => {
            let out = outcome::read(venue, resp.status, &resp.body);
            if !out.accepted {
                counted = false;
                if let Some(r) = &decision.reservation {
                    gw.ledger.release(r);
                }
            }
            let answer = NativeResponse {
                status: resp.status,
                headers: pass_headers(&resp.headers),
                body: utf8(resp.body),
            };
            (answer, Some(resp.status), out.order_id)
        }
        Err(ForwardError::NotSent(why)) => {
            counted = false;
            if let Some(r) = &decision.reservation {
                gw.ledger.release(r);
            }
            let d = Denial::new(DenialKind::Unavailable, format!("keyfence upstream: {why}"));
            (keyfence_exchange::native_error(venue, &d, now), None, None)
        }
        // It may have reached the exchange: the reservation stays (fail closed).
        Err(ForwardError::Maybe(why)) => {
            let d = Denial::new(DenialKind::Unavailable, format!("keyfence upstream: {why}"));
            (keyfence_exchange::native_error(venue, &d, now), None, None)
        }
    };

    // --- 6. journal, then answer once the reservation is on disk
    if let Some(reserved) = reserved
        && let Err(e) = reserved.durable().await
    {
        // The request has been forwarded; the bot still gets the exchange's answer. The
        // journal is unhealthy now, so nothing more that trades is forwarded.
        tracing::error!(error = %e, "a reservation did not reach the disk");
    }
    if !counted {
        rec.positions.clear();
        rec.orders = 0;
    }
    let entry = entry(
        &rec,
        venue,
        now,
        "allow",
        decision_rules(&decision),
        Some(decision.message.clone()).filter(|m| !m.is_empty()),
        status,
        started,
        order_id,
        reservation_id,
    );
    // Not awaited: the entry's COMMIT would be a second round trip to the writer thread on
    // every order's path. The reservation already covers a crash in between (see above).
    gw.journal.submit(entry);
    answer
}

fn decision_rules(d: &Decision) -> Vec<String> {
    d.rules.iter().map(|r| (*r).to_owned()).collect()
}

type Refusal = (&'static str, Denial);

fn bot_nonce_key(credential_id: &str) -> String {
    format!("bot:{credential_id}")
}

/// The bot's signature and credential; with a Kraken nonce, which [`fresh`] checks.
fn authenticate<'b>(
    bots: &'b BotTable,
    inc: &Incoming<'_>,
    now: i64,
) -> Result<(&'b BotCredential, Option<u64>), Refusal> {
    let venue = inc.venue;
    let auth_denial = |e: AuthError| {
        let msg = format!("keyfence auth: {e}");
        ("auth", Denial::new(DenialKind::Auth(e), msg))
    };
    let authed = keyfence_exchange::authenticate(
        venue,
        &inc.req,
        &AuthContext {
            now_ms: now,
            host: Some(inc.host),
        },
        &bots.lookup(venue),
    )
    .map_err(auth_denial)?;
    // Coinbase's JWT signs the method, host and path, never the query. On a GET that is the
    // venue's own design (and only reads); on anything else a query string is bytes nobody
    // signed, forwarded to the exchange. Refused, as the Bybit and Kraken checks refuse theirs.
    if venue == Venue::Coinbase && inc.req.method != "GET" && !inc.req.query.is_empty() {
        return Err(auth_denial(AuthError::Malformed(
            "a query string on a request other than GET is not covered by the JWT; send the parameters in the body".into(),
        )));
    }
    let cred = bots
        .get(venue, &authed.api_key)
        .ok_or_else(|| auth_denial(AuthError::UnknownApiKey))?;
    Ok((cred, authed.nonce))
}

/// May this credential be used now, from there: not revoked, not past its rotation overlap,
/// from an address in the bot's allowlist. (After [`authenticate`], so a refusal's journal
/// entry names the bot whose credential was used.)
fn admit(cred: &BotCredential, inc: &Incoming<'_>, now: i64) -> Result<(), Refusal> {
    if cred.bot.revoked {
        return Err((
            "bot-revoked",
            Denial::new(
                DenialKind::Auth(AuthError::UnknownApiKey),
                format!("keyfence bot-revoked: bot `{}` was revoked", cred.bot.name),
            ),
        ));
    }
    if cred.valid_until_ms.is_some_and(|t| now >= t) {
        return Err((
            "credential-expired",
            Denial::new(
                DenialKind::Auth(AuthError::KeyExpired),
                "keyfence credential-expired: this credential was rotated and its overlap has ended",
            ),
        ));
    }
    if !cred.bot.allow.is_empty() && !cred.bot.allow.iter().any(|c| c.contains(inc.peer)) {
        return Err((
            "ip-not-allowed",
            Denial::new(
                DenialKind::Auth(AuthError::IpNotAllowed),
                format!(
                    "keyfence ip-not-allowed: {} is not in bot `{}`'s allowlist",
                    inc.peer, cred.bot.name
                ),
            ),
        ));
    }
    Ok(())
}

/// Not a replay: a Kraken nonce larger than any the credential sent before, then a request
/// not seen before in the venue's window.
///
/// A Kraken bot's nonces must increase across restarts too, or a request captured before a
/// crash would be taken again after it: the credential's floor is read from the store on its
/// first request, and the new nonce is written there before the request goes on. When the
/// store can do neither, only cancels pass (fail closed; a read is no exception here, as a
/// replayed `GetWebSocketsToken` would hand out a token that trades).
async fn fresh(
    gw: &Gateway,
    cred: &BotCredential,
    nonce: Option<u64>,
    inc: &Incoming<'_>,
    now: i64,
    cancel: bool,
) -> Result<(), Refusal> {
    if let Some(n) = nonce {
        // The store keeps a floor as a signed 64-bit integer; a larger nonce could never be
        // recorded, and taken in memory it would refuse every later one.
        if i64::try_from(n).is_err() {
            return Err((
                "auth",
                Denial::new(
                    DenialKind::Auth(AuthError::InvalidNonce),
                    "keyfence auth: the nonce is larger than 9223372036854775807",
                ),
            ));
        }
        let unavailable = |e: &keyfence_store::StoreError| {
            tracing::warn!(error = %e, bot = %cred.bot.name, "cannot read or record a bot's Kraken nonce");
            (
                "journal-unavailable",
                Denial::new(
                    DenialKind::Unavailable,
                    "keyfence journal-unavailable: the bot's last nonce cannot be read or recorded, so only cancels are forwarded",
                ),
            )
        };
        let key = bot_nonce_key(&cred.id);
        let known = gw.bot_nonces().contains_key(&cred.id);
        if !known {
            match gw.store.nonce_floor(&key).await {
                Ok(floor) => {
                    let mut map = gw.bot_nonces();
                    let last = map.entry(cred.id.clone()).or_insert(0);
                    *last = (*last).max(floor);
                }
                // Unknown floor: nothing is learnt or recorded until the store answers.
                Err(e) if cancel => drop(unavailable(&e)),
                Err(e) => return Err(unavailable(&e)),
            }
        }
        // Some(larger): taken (in memory); None: the floor is unknown.
        let larger = gw.bot_nonces().get_mut(&cred.id).map(|last| {
            let larger = n > *last;
            if larger {
                *last = n;
            }
            larger
        });
        match larger {
            Some(false) => {
                return Err((
                    "replay",
                    Denial::new(
                        DenialKind::Auth(AuthError::InvalidNonce),
                        "keyfence replay: the nonce is not larger than the last one",
                    ),
                ));
            }
            Some(true) => {
                if let Err(e) = gw.store.set_nonce_floor(&key, n).await {
                    let refusal = unavailable(&e);
                    if !cancel {
                        return Err(refusal);
                    }
                }
            }
            None => {}
        }
    }
    if !gw.replay.first_sight(inc.venue, &inc.req, now) {
        return Err((
            "replay",
            Denial::new(
                DenialKind::PermissionDenied,
                "keyfence replay: this exact signed request was already received",
            ),
        ));
    }
    Ok(())
}

/// Make sure the orders' symbols have a fresh reference price when a rule needs one.
async fn ensure_prices(gw: &Gateway, venue: Venue, policy: &PolicyConfig, orders: &[Order]) {
    let Some(feed) = gw.feeds.get(&venue) else {
        return;
    };
    let max_age = i64::try_from(policy.max_price_age_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    for o in orders {
        // No price is fetched for a symbol the policy refuses anyway.
        if let Some(allowed) = &policy.symbols {
            let sym = keyfence_policy::normalise_symbol(&o.symbol);
            if !allowed
                .iter()
                .any(|a| keyfence_policy::normalise_symbol(a) == sym)
            {
                continue;
            }
        }
        let fresh = gw
            .prices
            .reference(venue, &o.symbol)
            .is_some_and(|(_, at)| now_ms() - at <= max_age);
        if !fresh {
            gw.prices.fetch(feed, venue, &o.symbol).await;
        } else {
            gw.prices.want(venue, &o.symbol);
        }
    }
}

async fn reserve(
    gw: &Gateway,
    venue: Venue,
    rec: &Record,
    r: &Reservation,
    now: i64,
) -> Result<(String, keyfence_store::Reserved), String> {
    let id = gw.journal.reservation_id();
    let p = Pending {
        id: id.clone(),
        ts_ms: now,
        bot: r.bot.clone(),
        venue,
        day: r.day,
        notional: r.notional,
        orders: r.orders,
        positions: r.positions.clone(),
        symbol: rec.first.as_ref().map(|o| o.symbol.clone()),
        side: rec.first.as_ref().map(|o| side_str(o.side).to_owned()),
        class: rec.class.as_str().to_owned(),
    };
    match gw.journal.reserve(p).await {
        Ok(reserved) => Ok((id, reserved)),
        Err(e) => {
            tracing::error!(error = %e, "cannot record a reservation");
            Err(id)
        }
    }
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

#[allow(clippy::too_many_arguments)]
fn entry(
    rec: &Record,
    venue: Venue,
    now: i64,
    decision: &str,
    rules: Vec<String>,
    message: Option<String>,
    upstream_status: Option<u16>,
    started: Instant,
    order_id: Option<String>,
    reservation_id: Option<String>,
) -> NewEntry {
    NewEntry {
        ts_ms: now,
        kind: "request".into(),
        bot: rec.bot.clone(),
        venue: Some(venue),
        class: Some(rec.class.as_str().to_owned()),
        method: None,
        path: rec.canonical_path.clone(),
        symbol: rec.first.as_ref().map(|o| o.symbol.clone()),
        side: rec.first.as_ref().map(|o| side_str(o.side).to_owned()),
        quantity: rec.first.as_ref().and_then(|o| o.quantity),
        notional: rec.notional,
        decision: decision.to_owned(),
        rules,
        upstream_status,
        latency_us: Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)),
        order_id,
        message,
        reservation_id,
        positions: rec.positions.clone(),
        orders: if decision == "allow" { rec.orders } else { 0 },
    }
}

/// Answer a refusal in the venue's shape and journal it.
async fn refuse(
    gw: &Gateway,
    venue: Venue,
    rec: &Record,
    rule: &'static str,
    denial: Denial,
    now: i64,
    started: Instant,
) -> Answer {
    let e = refusal_entry(rec, venue, rule, &denial, now, started, None);
    answer_refusal(gw, venue, e, &denial, now).await
}

fn refusal_entry(
    rec: &Record,
    venue: Venue,
    rule: &'static str,
    denial: &Denial,
    now: i64,
    started: Instant,
    reservation_id: Option<String>,
) -> NewEntry {
    entry(
        rec,
        venue,
        now,
        "deny",
        vec![rule.to_owned()],
        Some(denial.message.clone()),
        None,
        started,
        None,
        reservation_id,
    )
}

/// Journal a refusal (awaited: it is committed before the bot hears of it), then answer it.
async fn answer_refusal(
    gw: &Gateway,
    venue: Venue,
    e: NewEntry,
    denial: &Denial,
    now: i64,
) -> Answer {
    if let Err(err) = gw.journal.append(e).await {
        tracing::error!(error = %err, "journal append failed for a refusal");
    }
    keyfence_exchange::native_error(venue, denial, now)
}

enum ForwardError {
    /// Certainly not delivered (no connection, or keyfence could not build it).
    NotSent(String),
    /// May have reached the exchange (timeout, connection cut).
    Maybe(String),
}

const HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "user-agent",
    "accept-encoding",
];

fn strip_hop(req: &mut HttpRequest) {
    req.headers
        .retain(|(k, _)| !HOP_HEADERS.iter().any(|h| k.eq_ignore_ascii_case(h)));
}

/// The exchange's body as text: moved when it is UTF-8 (it is JSON), replaced characters
/// otherwise.
fn utf8(body: Vec<u8>) -> String {
    String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn pass_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| !HOP_HEADERS.iter().any(|h| k.eq_ignore_ascii_case(h)))
        .cloned()
        .collect()
}

async fn forward_public(gw: &Gateway, venue: Venue, mut req: HttpRequest) -> Answer {
    let now = now_ms();
    let Some(feed) = gw.feeds.get(&venue) else {
        let d = Denial::new(
            DenialKind::Unavailable,
            "keyfence: no upstream for this venue",
        );
        return keyfence_exchange::native_error(venue, &d, now);
    };
    strip_hop(&mut req);
    let retry = if req.method == "GET" {
        Retry::Idempotent
    } else {
        Retry::Never
    };
    match feed
        .upstream
        .send(&feed.base_url, retry, |_| Ok(req.clone()))
        .await
    {
        Ok(resp) => NativeResponse {
            status: resp.status,
            headers: pass_headers(&resp.headers),
            body: utf8(resp.body),
        },
        Err(e) => answer_upstream_error(venue, &e, now),
    }
}

fn answer_upstream_error(venue: Venue, e: &UpstreamError, now: i64) -> Answer {
    match e {
        UpstreamError::Status { response, .. } => NativeResponse {
            status: response.status,
            headers: pass_headers(&response.headers),
            body: String::from_utf8_lossy(&response.body).into_owned(),
        },
        other => keyfence_exchange::native_error(
            venue,
            &Denial::new(
                DenialKind::Unavailable,
                format!("keyfence upstream: {other}"),
            ),
            now,
        ),
    }
}

async fn forward_signed(
    gw: &Gateway,
    venue: Venue,
    key_label: &str,
    mut req: HttpRequest,
    class: EndpointClass,
) -> Result<keyfence_upstream::UpstreamResponse, ForwardError> {
    let Some(feed) = gw.feeds.get(&venue) else {
        return Err(ForwardError::NotSent("no upstream for this venue".into()));
    };
    let Some(key) = gw.keys.get(key_label).filter(|k| k.venue == venue) else {
        return Err(ForwardError::NotSent(format!(
            "the real key `{key_label}` is not in the vault"
        )));
    };
    strip_hop(&mut req);
    let host = feed
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let retry = if class == EndpointClass::Read {
        Retry::Idempotent
    } else {
        Retry::Never
    };
    // Nonces (Kraken) are drawn per attempt, before the closure that must be synchronous.
    let attempts = match retry {
        Retry::Idempotent => feed.upstream.policy().max_attempts.max(1),
        Retry::Never => 1,
    };
    let mut nonces = Vec::with_capacity(attempts as usize);
    if let Some(src) = &key.nonces {
        for _ in 0..attempts {
            let n = src
                .next(&gw.store, now_us())
                .await
                .map_err(|e| ForwardError::NotSent(format!("cannot draw a nonce: {e}")))?;
            nonces.push(n);
        }
    }
    let rng = &gw.rng;
    // The last attempt signs the request itself, earlier ones a copy (an order has one).
    let mut unsigned = Some(req);
    let sent = feed
        .upstream
        .send(&feed.base_url, retry, |attempt| {
            let mut r = if attempt >= attempts {
                unsigned.take()
            } else {
                unsigned.clone()
            }
            .ok_or_else(|| "no request left to sign".to_owned())?;
            let nonce = nonces.get(attempt as usize - 1).copied();
            keyfence_exchange::sign(
                venue,
                &key.signer,
                &mut r,
                &SignContext {
                    now_ms: now_ms(),
                    nonce,
                    host: &host,
                    rng,
                },
            )
            .map_err(|e| e.to_string())?;
            Ok(r)
        })
        .await;
    match sent {
        Ok(resp) => Ok(resp),
        Err(UpstreamError::Status { response, .. }) => Ok(*response),
        Err(
            e
            @ (UpstreamError::Connect { .. } | UpstreamError::Build(_) | UpstreamError::BadUrl(_)),
        ) => Err(ForwardError::NotSent(e.to_string())),
        Err(e) => Err(ForwardError::Maybe(e.to_string())),
    }
}
