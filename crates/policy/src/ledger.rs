//! Usage state for every bot, and `decide`: check a request and reserve its share of the caps.
//!
//! Caps hold exactly under concurrency because the check and the reservation happen under one
//! lock per bot: two requests of one bot never both see the same remaining capacity, while
//! requests of different bots never wait for each other.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use rust_decimal::Decimal;

use crate::check::{self, Failure, OrderFacts, show};
use crate::{
    Decision, EndpointClass, Facts, Mode, PolicyConfig, Prices, Reservation, day_of, rule,
};

/// The orders-per-minute window.
const WINDOW_MS: i64 = 60_000;

/// Usage state for all bots; `Send + Sync`; caps hold exactly under concurrency (check and
/// reserve under one lock per bot).
#[derive(Debug, Default)]
pub struct Ledger {
    bots: RwLock<HashMap<String, Arc<Mutex<BotState>>>>,
}

/// One bot's usage.
#[derive(Debug)]
struct BotState {
    /// The UTC day `notional` and `orders` count for.
    day: i64,
    notional: Decimal,
    orders: u64,
    /// Normalised symbol -> net base quantity, all time.
    positions: HashMap<String, Decimal>,
    /// (now_ms, orders) of allowed requests in the last minute, kept only while the policy has
    /// an `orders_per_minute` cap (so an uncapped bot costs no memory).
    recent: VecDeque<(i64, u64)>,
}

impl Default for BotState {
    fn default() -> Self {
        BotState {
            day: i64::MIN,
            notional: Decimal::ZERO,
            orders: 0,
            positions: HashMap::new(),
            recent: VecDeque::new(),
        }
    }
}

impl BotState {
    /// A new UTC day resets the daily caps. A request stamped with an earlier day than the
    /// ledger has seen (a race around midnight) counts against the newer day: never less strict.
    fn roll(&mut self, day: i64) -> i64 {
        if day > self.day {
            self.day = day;
            self.notional = Decimal::ZERO;
            self.orders = 0;
        }
        self.day
    }

    /// Orders counted in the 60 s before `now_ms`, dropping entries older than that.
    fn recent_orders(&mut self, now_ms: i64) -> u64 {
        let cutoff = now_ms.saturating_sub(WINDOW_MS);
        while self.recent.front().is_some_and(|(t, _)| *t <= cutoff) {
            self.recent.pop_front();
        }
        self.recent
            .iter()
            .filter(|(t, _)| *t > cutoff)
            .map(|(_, n)| *n)
            .fold(0u64, u64::saturating_add)
    }

    fn position(&self, symbol: &str) -> Decimal {
        self.positions.get(symbol).copied().unwrap_or(Decimal::ZERO)
    }

    fn shift(&mut self, symbol: &str, delta: Decimal) {
        let now = self.position(symbol);
        // A position past Decimal's range was never let through; saturate rather than wrap.
        let next = now.checked_add(delta).unwrap_or(now);
        if next.is_zero() {
            self.positions.remove(symbol);
        } else {
            self.positions.insert(symbol.to_owned(), next);
        }
    }
}

/// A bot's usage as the ledger holds it (for metrics, the dashboard and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotUsage {
    /// The UTC day `notional` and `orders` count for.
    pub day: i64,
    pub notional: Decimal,
    pub orders: u64,
    /// Normalised symbol -> net base quantity (zero positions are left out).
    pub positions: BTreeMap<String, Decimal>,
}

/// A poisoned lock means a thread panicked while holding it; the code under these locks does no
/// arithmetic that can panic and leaves the state whole at every step, so the state is usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ledger {
    pub fn new() -> Self {
        Ledger::default()
    }

    fn bot(&self, bot: &str) -> Arc<Mutex<BotState>> {
        {
            let bots = self.bots.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(b) = bots.get(bot) {
                return Arc::clone(b);
            }
        }
        let mut bots = self.bots.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(bots.entry(bot.to_owned()).or_default())
    }

    /// Decide one request and, when it is an allowed trade, reserve its notional, order count,
    /// rate-window slot and position change against the bot's caps. A denial reserves nothing.
    pub fn decide(
        &self,
        policy: &PolicyConfig,
        facts: &Facts<'_>,
        prices: &dyn Prices,
    ) -> Decision {
        if let Err(failures) = check::gate(policy, facts) {
            return Decision::deny(failures, None);
        }
        if facts.class != EndpointClass::Trade {
            // Reads, cancels and any other class the policy names: nothing to cap.
            return Decision::allow(gate_rules(facts.mode), None, None);
        }
        let checked = check::orders(policy, facts, prices);
        let mut failures = checked.failures;
        let state = self.bot(facts.bot);
        let mut state = lock(&state);
        let day = state.roll(day_of(facts.now_ms));
        failures.extend(caps(
            policy,
            facts,
            &checked.orders,
            checked.notional,
            &mut state,
        ));
        if !failures.is_empty() {
            failures.sort_by_key(|(id, _)| rule::ALL.iter().position(|r| r == id));
            return Decision::deny(failures, checked.notional);
        }
        let reservation = reserve(
            facts,
            policy,
            day,
            &checked.orders,
            checked.notional,
            &mut state,
        );
        drop(state);
        Decision::allow(
            trade_rules(policy, facts.mode),
            checked.notional,
            Some(reservation),
        )
    }

    /// Give a reservation back (the exchange rejected the request). Daily usage is returned only
    /// while its day is still the current one; positions always.
    pub fn release(&self, r: &Reservation) {
        let state = self.bot(&r.bot);
        let mut state = lock(&state);
        if r.day == state.day {
            state.notional = state
                .notional
                .checked_sub(r.notional)
                .unwrap_or(Decimal::ZERO)
                .max(Decimal::ZERO);
            state.orders = state.orders.saturating_sub(r.orders);
        }
        for (symbol, delta) in &r.positions {
            state.shift(symbol, -*delta);
        }
        // From the back: a rejected request is among the newest entries.
        if let Some(i) = state
            .recent
            .iter()
            .rposition(|(t, n)| *t == r.minute_ms && *n == r.orders)
        {
            state.recent.remove(i);
        }
    }

    /// Seed after a restart from the store: today's usage and net positions.
    pub fn seed(
        &self,
        bot: &str,
        day: i64,
        notional: Decimal,
        orders: u64,
        positions: &[(String, Decimal)],
    ) {
        let state = self.bot(bot);
        let mut state = lock(&state);
        state.day = day;
        state.notional = notional;
        state.orders = orders;
        state.positions.clear();
        for (symbol, delta) in positions {
            state.shift(&crate::normalise_symbol(symbol), *delta);
        }
    }

    /// A bot's current usage, or `None` for a bot the ledger has not seen.
    pub fn usage(&self, bot: &str) -> Option<BotUsage> {
        let state = {
            let bots = self.bots.read().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(bots.get(bot)?)
        };
        let state = lock(&state);
        Some(BotUsage {
            day: state.day,
            notional: state.notional,
            orders: state.orders,
            positions: state
                .positions
                .iter()
                .map(|(s, q)| (s.clone(), *q))
                .collect(),
        })
    }
}

/// The ids every allowed request was checked against.
fn gate_rules(mode: Mode) -> Vec<&'static str> {
    match mode {
        Mode::Active => vec![rule::CLASS_NOT_ALLOWED],
        Mode::Reducing => vec![rule::CLASS_NOT_ALLOWED, rule::KILL_SWITCH_REDUCING],
        Mode::Halted => vec![rule::CLASS_NOT_ALLOWED, rule::KILL_SWITCH_HALTED],
    }
}

/// The ids an allowed trade was checked against: the gate and every rule the policy configures.
fn trade_rules(policy: &PolicyConfig, mode: Mode) -> Vec<&'static str> {
    let mut rules = gate_rules(mode);
    let configured = [
        (rule::TRADING_HOURS, policy.trading_hours.is_some()),
        (rule::SYMBOL_NOT_ALLOWED, policy.symbols.is_some()),
        (rule::PRICE_BAND, policy.price_band_pct.is_some()),
        (
            rule::MAX_ORDER_NOTIONAL,
            policy.max_order_notional.is_some(),
        ),
        (rule::MAX_POSITION, !policy.max_position.is_empty()),
        (rule::DAILY_NOTIONAL, policy.daily_notional.is_some()),
        (rule::DAILY_ORDERS, policy.daily_orders.is_some()),
        (rule::ORDERS_PER_MINUTE, policy.orders_per_minute.is_some()),
    ];
    rules.extend(configured.iter().filter(|(_, on)| *on).map(|(id, _)| *id));
    rules
}

fn count(orders: &[OrderFacts]) -> u64 {
    u64::try_from(orders.len()).unwrap_or(u64::MAX)
}

/// The caps that depend on usage: daily notional and orders, the minute window, positions.
fn caps(
    policy: &PolicyConfig,
    facts: &Facts<'_>,
    orders: &[OrderFacts],
    notional: Option<Decimal>,
    state: &mut BotState,
) -> Vec<Failure> {
    let mut fail = Vec::new();
    let n = count(orders);
    if let (Some(cap), Some(add)) = (policy.daily_notional, notional) {
        match state.notional.checked_add(add) {
            Some(total) if total <= cap => {}
            total => fail.push((
                rule::DAILY_NOTIONAL,
                format!(
                    "this request's notional {} would take today's total to {}, above {} (used {})",
                    show(add),
                    total.map_or_else(
                        || "more than keyfence can count".to_owned(),
                        |t| show(t).to_string()
                    ),
                    show(cap),
                    show(state.notional)
                ),
            )),
        }
    }
    if let Some(cap) = policy.daily_orders
        && state.orders.saturating_add(n) > cap
    {
        fail.push((
            rule::DAILY_ORDERS,
            format!(
                "{n} more order(s) would exceed today's {cap} (used {})",
                state.orders
            ),
        ));
    }
    if let Some(cap) = policy.orders_per_minute {
        let recent = state.recent_orders(facts.now_ms);
        if recent.saturating_add(n) > u64::from(cap) {
            fail.push((
                rule::ORDERS_PER_MINUTE,
                format!(
                    "{recent} order(s) in the last 60 s; {n} more would exceed {cap} per minute"
                ),
            ));
        }
    }
    fail.extend(positions(policy, facts, orders, state));
    fail
}

/// max_position: walk the batch in order, each order moving the running position; deny an order
/// that takes |position| above the cap, unless it shrinks |position|.
fn positions(
    policy: &PolicyConfig,
    facts: &Facts<'_>,
    orders: &[OrderFacts],
    state: &BotState,
) -> Vec<Failure> {
    let mut fail = Vec::new();
    if policy.max_position.is_empty() {
        return fail;
    }
    let mut running: HashMap<&str, Decimal> = HashMap::new();
    for (i, o) in orders.iter().enumerate() {
        let (Some(cap), Some(delta)) = (policy.position_cap(&o.symbol), o.delta) else {
            continue;
        };
        let before = *running
            .entry(o.symbol.as_str())
            .or_insert_with(|| state.position(&o.symbol));
        let after = before.checked_add(delta);
        let ok = match after {
            Some(a) => a.abs() <= cap || a.abs() < before.abs(),
            None => false,
        };
        if !ok {
            let which = if orders.len() > 1 {
                format!(" (order {} of {})", i + 1, orders.len())
            } else {
                String::new()
            };
            fail.push((
                rule::MAX_POSITION,
                format!(
                    "the position in `{}` would go from {} to {}, beyond ±{}{which}",
                    facts
                        .orders
                        .get(i)
                        .map_or(o.symbol.as_str(), |x| x.symbol.as_str()),
                    show(before),
                    after.map_or_else(|| "out of range".to_owned(), |a| show(a).to_string()),
                    show(cap)
                ),
            ));
        }
        if let Some(a) = after {
            running.insert(o.symbol.as_str(), a);
        }
    }
    fail
}

/// Take the request's share: every check passed under this same lock.
fn reserve(
    facts: &Facts<'_>,
    policy: &PolicyConfig,
    day: i64,
    orders: &[OrderFacts],
    notional: Option<Decimal>,
    state: &mut BotState,
) -> Reservation {
    let n = count(orders);
    // Unknown notional passes only when no notional cap is set; it then counts as 0.
    let notional = notional.unwrap_or(Decimal::ZERO);
    state.notional = state.notional.checked_add(notional).unwrap_or(Decimal::MAX);
    state.orders = state.orders.saturating_add(n);
    if policy.orders_per_minute.is_some() {
        state.recent.push_back((facts.now_ms, n));
    }
    let mut deltas: Vec<(String, Decimal)> = Vec::new();
    for o in orders {
        let Some(d) = o.delta else { continue };
        match deltas.iter_mut().find(|(s, _)| *s == o.symbol) {
            Some((_, sum)) => *sum = sum.checked_add(d).unwrap_or(*sum),
            None => deltas.push((o.symbol.clone(), d)),
        }
    }
    deltas.retain(|(_, d)| !d.is_zero());
    for (s, d) in &deltas {
        state.shift(s, *d);
    }
    Reservation {
        bot: facts.bot.to_owned(),
        day,
        notional,
        orders: n,
        positions: deltas,
        minute_ms: facts.now_ms,
    }
}
