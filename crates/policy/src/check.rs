//! The checks that need no usage state: the request gate (class, kill switch) and each order on
//! its own (symbol, trading hours, price band, notional, sizing). They run before the bot's lock
//! is taken, so the lock covers only the cap arithmetic.

use rust_decimal::Decimal;

use crate::{
    EndpointClass, Facts, Mode, Order, OrderType, PolicyConfig, Prices, Side, normalise_symbol,
    rule,
};

/// A failed rule and why, in words for the person reading the bot's error.
pub(crate) type Failure = (&'static str, String);

/// The class and kill-switch gate. `Err` holds every failure.
pub(crate) fn gate(policy: &PolicyConfig, facts: &Facts<'_>) -> Result<(), Vec<Failure>> {
    let mut fail = Vec::new();
    let class = facts.class;
    match class {
        EndpointClass::Unknown => fail.push((
            rule::UNKNOWN_ENDPOINT,
            "keyfence cannot tell what this endpoint does, so it is never forwarded".to_owned(),
        )),
        EndpointClass::Public => fail.push((
            rule::CLASS_NOT_ALLOWED,
            "public endpoints are forwarded without a policy decision".to_owned(),
        )),
        _ if !policy.classes.contains(&class) => fail.push((
            rule::CLASS_NOT_ALLOWED,
            format!("`{class}` requests are not in this bot's classes"),
        )),
        _ => {}
    }
    let risk_free = matches!(class, EndpointClass::Read | EndpointClass::Cancel);
    match facts.mode {
        Mode::Active => {}
        Mode::Halted if !risk_free => fail.push((
            rule::KILL_SWITCH_HALTED,
            "the kill switch is halted: only reads and cancels pass".to_owned(),
        )),
        Mode::Reducing if !risk_free => {
            let not_reducing = facts.orders.iter().position(|o| !o.reduce_only);
            if class != EndpointClass::Trade || facts.orders.is_empty() {
                fail.push((
                    rule::KILL_SWITCH_REDUCING,
                    "the kill switch is reducing: only reads, cancels and reduce-only orders pass"
                        .to_owned(),
                ));
            } else if let Some(i) = not_reducing {
                fail.push((
                    rule::KILL_SWITCH_REDUCING,
                    format!(
                        "the kill switch is reducing: only reduce-only orders pass, and order {}{} is not",
                        i + 1,
                        of(facts.orders, i)
                    ),
                ));
            }
        }
        Mode::Halted | Mode::Reducing => {}
    }
    if class == EndpointClass::Trade && facts.orders.is_empty() {
        fail.push((
            rule::NO_ORDERS,
            "a trade request with no order keyfence could read cannot be checked".to_owned(),
        ));
    }
    if fail.is_empty() { Ok(()) } else { Err(fail) }
}

/// " of 3 (ETHUSDT)" for batches, " (ETHUSDT)" for one order: which order a message is about.
fn of(orders: &[Order], i: usize) -> String {
    let symbol = orders.get(i).map(|o| o.symbol.as_str()).unwrap_or("");
    if orders.len() > 1 {
        format!(" of {} (`{symbol}`)", orders.len())
    } else {
        format!(" (`{symbol}`)")
    }
}

/// " (order 2 of 3, `ETHUSDT`)" for batches; nothing for a single order.
fn which(orders: &[Order], i: usize) -> String {
    match orders.get(i) {
        Some(o) if orders.len() > 1 => {
            format!(" (order {} of {}, `{}`)", i + 1, orders.len(), o.symbol)
        }
        _ => String::new(),
    }
}

/// Show a decimal without trailing zeros.
pub(crate) fn show(d: Decimal) -> Decimal {
    d.normalize()
}

/// Why an order's quote value or base size cannot be known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// It needs the reference price and there is no fresh one.
    NoPrice,
    /// The order carries no size.
    NoSize,
    /// The arithmetic overflows `Decimal`.
    TooLarge,
    /// The order counts contracts and the policy names no contract value for its market.
    Contracts,
    /// An option: priced in premium, so no contract value makes size × price its value.
    Option,
}

/// One order, as the stateful caps see it.
#[derive(Debug, Clone)]
pub(crate) struct OrderFacts {
    /// Normalised symbol.
    pub symbol: String,
    /// Signed base quantity (buy +, sell -); `None` when unknown.
    pub delta: Option<Decimal>,
}

/// What the stateless order checks found.
pub(crate) struct Checked {
    pub orders: Vec<OrderFacts>,
    /// Sum of the notionals, when every one is known.
    pub notional: Option<Decimal>,
    pub failures: Vec<Failure>,
}

/// Check every order of a trade request on its own. Each failure names the order in a batch.
pub(crate) fn orders(policy: &PolicyConfig, facts: &Facts<'_>, prices: &dyn Prices) -> Checked {
    let mut failures = Vec::new();
    match policy.hours() {
        None => {}
        Some(Ok(w)) if w.contains(facts.now_ms) => {}
        Some(Ok(w)) => failures.push((
            rule::TRADING_HOURS,
            format!("trades pass only from {w} UTC"),
        )),
        // `problems` reports this at load; a window nobody can read lets no trade through.
        Some(Err(e)) => failures.push((rule::TRADING_HOURS, e)),
    }
    let needs_notional = policy.max_order_notional.is_some() || policy.daily_notional.is_some();
    let mut out = Vec::with_capacity(facts.orders.len());
    let mut total = Some(Decimal::ZERO);
    for (i, order) in facts.orders.iter().enumerate() {
        let symbol = normalise_symbol(&order.symbol);
        if !policy.symbol_allowed(&symbol) {
            failures.push((
                rule::SYMBOL_NOT_ALLOWED,
                format!(
                    "symbol `{}` is not in this bot's symbols{}",
                    order.symbol,
                    which(facts.orders, i)
                ),
            ));
        }
        let reference = reference(policy, facts, prices, order);
        let limit = limit_price(order);
        if let (Some(pct), Some(price)) = (policy.price_band_pct, limit) {
            match &reference {
                Ok(r) => {
                    if let Some(why) = outside_band(price, *r, pct) {
                        failures
                            .push((rule::PRICE_BAND, format!("{why}{}", which(facts.orders, i))));
                    }
                }
                Err(why) => failures.push((
                    rule::REFERENCE_PRICE_STALE,
                    format!(
                        "{why}, so the price band cannot be checked{}",
                        which(facts.orders, i)
                    ),
                )),
            }
        }
        let qty = base_quantity(policy, order, &symbol);
        let notional = notional(order, qty, limit, &reference);
        if let (Some(cap), Ok(n)) = (policy.max_order_notional, &notional)
            && *n > cap
        {
            failures.push((
                rule::MAX_ORDER_NOTIONAL,
                format!(
                    "order notional {} exceeds {}{}",
                    show(*n),
                    show(cap),
                    which(facts.orders, i)
                ),
            ));
        }
        if let (true, Err(gap)) = (needs_notional, &notional) {
            let id = if policy.max_order_notional.is_some() {
                rule::MAX_ORDER_NOTIONAL
            } else {
                rule::DAILY_NOTIONAL
            };
            failures.push(gap_failure(
                *gap,
                id,
                &reference,
                "value the order",
                &which(facts.orders, i),
            ));
        }
        let delta = base(order, qty, limit, &reference);
        if policy.position_cap(&symbol).is_some()
            && let Err(gap) = &delta
        {
            failures.push(gap_failure(
                *gap,
                rule::MAX_POSITION,
                &reference,
                "size the order in base units",
                &which(facts.orders, i),
            ));
        }
        total = match (total, &notional) {
            (Some(t), Ok(n)) => t.checked_add(*n),
            _ => None,
        };
        out.push(OrderFacts {
            symbol,
            delta: delta.ok(),
        });
    }
    Checked {
        orders: out,
        notional: total,
        failures,
    }
}

fn gap_failure(
    gap: Gap,
    id: &'static str,
    reference: &Result<Decimal, String>,
    to: &str,
    which: &str,
) -> Failure {
    match (gap, reference) {
        (Gap::NoPrice, Err(why)) => (
            rule::REFERENCE_PRICE_STALE,
            format!("{why}, needed to {to}{which}"),
        ),
        (Gap::NoPrice, Ok(_)) => (
            rule::REFERENCE_PRICE_STALE,
            format!("no price to {to}{which}"),
        ),
        (Gap::NoSize, _) => (
            id,
            format!("the order carries no quantity, so keyfence cannot {to}{which}"),
        ),
        (Gap::TooLarge, _) => (id, format!("the order is too large to {to}{which}")),
        (Gap::Option, _) => (
            id,
            format!(
                "options are priced in premium, not in the quote currency, so keyfence cannot {to}{which}"
            ),
        ),
        (Gap::Contracts, _) => (
            id,
            format!(
                "the order is sized in contracts and the policy's contract_values does not name its market, so keyfence cannot {to}{which}"
            ),
        ),
    }
}

/// The order's size in base units, when it has one: its quantity, times the policy's contract
/// value when the quantity counts contracts.
fn base_quantity(
    policy: &PolicyConfig,
    order: &Order,
    symbol: &str,
) -> Result<Option<Decimal>, Gap> {
    if order.is_option() {
        return Err(Gap::Option);
    }
    if !order.counts_contracts() {
        return Ok(order.quantity);
    }
    let Some(value) = policy.contract_value(symbol) else {
        return Err(Gap::Contracts);
    };
    order
        .quantity
        .map(|q| q.checked_mul(value).ok_or(Gap::TooLarge))
        .transpose()
}

/// The fresh reference price, or why there is none.
fn reference(
    policy: &PolicyConfig,
    facts: &Facts<'_>,
    prices: &dyn Prices,
    order: &Order,
) -> Result<Decimal, String> {
    match prices.reference(facts.venue, &order.symbol) {
        None => Err(format!("no reference price for `{}`", order.symbol)),
        Some((p, _)) if p <= Decimal::ZERO => Err(format!(
            "the reference price for `{}` is {} and cannot be used",
            order.symbol,
            show(p)
        )),
        Some((p, at)) => {
            let age = facts.now_ms.saturating_sub(at);
            if age > policy.price_age_ms() {
                Err(format!(
                    "the reference price for `{}` is {} s old, older than max_price_age_s = {}",
                    order.symbol,
                    age / 1000,
                    policy.max_price_age_s
                ))
            } else {
                Ok(p)
            }
        }
    }
}

/// The order's own limit price: any non-market order that names a price.
fn limit_price(order: &Order) -> Option<Decimal> {
    match order.order_type {
        OrderType::Market => None,
        OrderType::Limit | OrderType::Other(_) => order.price,
    }
}

/// The price that values the order: its limit price, else the fresh reference price.
fn valuation(limit: Option<Decimal>, reference: &Result<Decimal, String>) -> Result<Decimal, Gap> {
    match (limit, reference) {
        (Some(p), _) if p > Decimal::ZERO => Ok(p),
        (_, Ok(r)) => Ok(*r),
        (_, Err(_)) => Err(Gap::NoPrice),
    }
}

/// Quote value: quote_quantity if set; else the base quantity × (limit price, or the
/// reference price). Sizes count by magnitude, so a negative size can never shrink a cap's
/// usage.
fn notional(
    order: &Order,
    qty: Result<Option<Decimal>, Gap>,
    limit: Option<Decimal>,
    reference: &Result<Decimal, String>,
) -> Result<Decimal, Gap> {
    if let Some(q) = order.quote_quantity {
        return Ok(q.abs());
    }
    let qty = qty?.ok_or(Gap::NoSize)?.abs();
    let price = valuation(limit, reference)?;
    qty.checked_mul(price).ok_or(Gap::TooLarge)
}

/// Signed base quantity: the base quantity if there is one; else quote / (limit price, or the
/// reference price).
fn base(
    order: &Order,
    qty: Result<Option<Decimal>, Gap>,
    limit: Option<Decimal>,
    reference: &Result<Decimal, String>,
) -> Result<Decimal, Gap> {
    let magnitude = match (qty?, order.quote_quantity) {
        (Some(q), _) => q.abs(),
        (None, Some(quote)) => {
            let price = valuation(limit, reference)?;
            quote.abs().checked_div(price).ok_or(Gap::TooLarge)?
        }
        (None, None) => return Err(Gap::NoSize),
    };
    Ok(match order.side {
        Side::Buy => magnitude,
        Side::Sell => -magnitude,
    })
}

/// `Some(reason)` when |price − ref| / ref × 100 > pct. Compared as |price − ref| × 100 versus
/// pct × ref, so no division rounds the edge of the band.
fn outside_band(price: Decimal, reference: Decimal, pct: Decimal) -> Option<String> {
    let diff = price.checked_sub(reference).map(|d| d.abs());
    let within = match (
        diff.and_then(|d| d.checked_mul(Decimal::ONE_HUNDRED)),
        pct.checked_mul(reference),
    ) {
        (Some(lhs), Some(rhs)) => lhs <= rhs,
        _ => false,
    };
    if within {
        return None;
    }
    let deviation = diff
        .and_then(|d| d.checked_mul(Decimal::ONE_HUNDRED))
        .and_then(|d| d.checked_div(reference))
        .map(|d| d.round_dp(2).normalize().to_string())
        .unwrap_or_else(|| "far".to_owned());
    Some(format!(
        "limit price {} is {deviation}% from the reference price {}, outside ±{}%",
        show(price),
        show(reference),
        show(pct)
    ))
}
