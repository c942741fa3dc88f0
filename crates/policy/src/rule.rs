//! Rule ids: stable strings that appear in decisions, journal entries and the venue-native
//! errors a bot sees. Each id names the rule by what it denies; `docs/policy.md` describes them.

/// The request's class is `unknown`: keyfence could not tell what the endpoint does.
pub const UNKNOWN_ENDPOINT: &str = "unknown-endpoint";
/// The request's class is not in the policy's `classes`.
pub const CLASS_NOT_ALLOWED: &str = "class-not-allowed";
/// An order's symbol is not in the policy's `symbols`.
pub const SYMBOL_NOT_ALLOWED: &str = "symbol-not-allowed";
/// An order's notional exceeds `max_order_notional`.
pub const MAX_ORDER_NOTIONAL: &str = "max-order-notional";
/// Today's notional plus the request's would exceed `daily_notional`.
pub const DAILY_NOTIONAL: &str = "daily-notional";
/// Today's order count plus the request's would exceed `daily_orders`.
pub const DAILY_ORDERS: &str = "daily-orders";
/// An order would take a symbol's |net position| above its `max_position`.
pub const MAX_POSITION: &str = "max-position";
/// The last 60 s of orders plus the request's would exceed `orders_per_minute`.
pub const ORDERS_PER_MINUTE: &str = "orders-per-minute";
/// A limit price is further than `price_band_pct` from the reference price.
pub const PRICE_BAND: &str = "price-band";
/// A trade outside `trading_hours`.
pub const TRADING_HOURS: &str = "trading-hours";
/// A rule needs a reference price and none is fresher than `max_price_age_s`.
pub const REFERENCE_PRICE_STALE: &str = "reference-price-stale";
/// The kill switch is `halted`: only reads and cancels pass.
pub const KILL_SWITCH_HALTED: &str = "kill-switch-halted";
/// The kill switch is `reducing`: only reads, cancels and reduce-only orders pass.
pub const KILL_SWITCH_REDUCING: &str = "kill-switch-reducing";
/// A trade request that carries no order keyfence could read (fail closed: nothing to check).
pub const NO_ORDERS: &str = "no-orders";

/// Every rule id, in the order `decide` evaluates them.
pub const ALL: [&str; 14] = [
    UNKNOWN_ENDPOINT,
    CLASS_NOT_ALLOWED,
    KILL_SWITCH_HALTED,
    KILL_SWITCH_REDUCING,
    NO_ORDERS,
    TRADING_HOURS,
    SYMBOL_NOT_ALLOWED,
    REFERENCE_PRICE_STALE,
    PRICE_BAND,
    MAX_ORDER_NOTIONAL,
    MAX_POSITION,
    DAILY_NOTIONAL,
    DAILY_ORDERS,
    ORDERS_PER_MINUTE,
];
