//! What `decide` answers, and what it set aside.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the rules that decided (for a denial: the failing rules; for an allow: the rules
    /// that were checked and passed, e.g. ["class-not-allowed", "max-order-notional"]).
    pub rules: Vec<&'static str>,
    /// Human reason naming the rule id, e.g. "keyfence policy max-order-notional: order notional 5000 exceeds 1000".
    pub message: String,
    /// Sum of the orders' notionals in quote currency where known (None when any order's
    /// notional is unknown, or for requests without orders).
    pub notional: Option<Decimal>,
    /// Present when allowed and something was reserved; give it back with `release` if the
    /// exchange rejects the request.
    pub reservation: Option<Reservation>,
}

impl Decision {
    pub(crate) fn deny(failures: Vec<(&'static str, String)>, notional: Option<Decimal>) -> Self {
        let mut rules: Vec<&'static str> = Vec::with_capacity(failures.len());
        let mut message = String::new();
        for (rule, why) in failures {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str("keyfence policy ");
            message.push_str(rule);
            message.push_str(": ");
            message.push_str(&why);
        }
        Decision {
            allowed: false,
            rules,
            message,
            notional,
            reservation: None,
        }
    }

    pub(crate) fn allow(
        rules: Vec<&'static str>,
        notional: Option<Decimal>,
        reservation: Option<Reservation>,
    ) -> Self {
        Decision {
            allowed: true,
            message: format!("keyfence policy: allowed ({})", rules.join(", ")),
            rules,
            notional,
            reservation,
        }
    }
}

/// The share of a bot's caps one allowed request took. The gateway stores it durably before
/// forwarding and gives it back (`Ledger::release`) when the exchange rejects the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub bot: String,
    /// UTC day number (now_ms / 86_400_000) whose daily caps this counted against.
    pub day: i64,
    /// Quote-currency notional counted against `daily_notional` (0 when unknown).
    pub notional: Decimal,
    pub orders: u64,
    /// Normalised symbol -> signed base delta (buy +, sell -).
    pub positions: Vec<(String, Decimal)>,
    /// The now_ms it counted against orders_per_minute.
    pub minute_ms: i64,
}
