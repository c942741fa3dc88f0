//! For any sequence of orders and releases, the reserved notional never exceeds daily_notional,
//! and the ledger's count matches a simple model exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use keyfence_policy::{NoPrices, PolicyConfig, Reservation, Side};
use proptest::prelude::*;
use rust_decimal::Decimal;

#[derive(Debug, Clone)]
enum Step {
    /// A batch of quote-sized orders (cents).
    Order(Vec<u32>),
    /// Release the n-th outstanding reservation (mod their count).
    Release(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::collection::vec(1u32..=50_000, 1..4).prop_map(Step::Order),
        1 => any::<usize>().prop_map(Step::Release),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reserved_notional_never_exceeds_daily_notional(
        cap_cents in 1u32..=200_000,
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let cap = Decimal::new(i64::from(cap_cents), 2);
        let policy = PolicyConfig { daily_notional: Some(cap), ..PolicyConfig::default() };
        let ledger = keyfence_policy::Ledger::new();
        let mut outstanding: Vec<Reservation> = Vec::new();
        for (t, step) in steps.into_iter().enumerate() {
            match step {
                Step::Order(cents) => {
                    let orders: Vec<_> = cents
                        .iter()
                        .map(|c| quote("BTCUSDT", Side::Buy, &Decimal::new(i64::from(*c), 2).to_string()))
                        .collect();
                    let want: Decimal = cents.iter().map(|c| Decimal::new(i64::from(*c), 2)).sum();
                    let used: Decimal = outstanding.iter().map(|r| r.notional).sum();
                    let d = Req::trade(&orders).at(NOON + t as i64).decide(&ledger, &policy, &NoPrices);
                    // Exact: allowed if and only if it fits.
                    prop_assert_eq!(d.allowed, used + want <= cap);
                    if let Some(r) = d.reservation {
                        prop_assert_eq!(r.notional, want);
                        outstanding.push(r);
                    }
                }
                Step::Release(n) => {
                    if !outstanding.is_empty() {
                        let r = outstanding.remove(n % outstanding.len());
                        ledger.release(&r);
                    }
                }
            }
            let reserved: Decimal = outstanding.iter().map(|r| r.notional).sum();
            prop_assert!(reserved <= cap);
            let u = ledger.usage(BOT).map(|u| u.notional).unwrap_or(Decimal::ZERO);
            prop_assert_eq!(u, reserved);
        }
    }
}
