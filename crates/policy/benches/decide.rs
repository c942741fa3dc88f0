//! `Ledger::decide` for a one-order limit trade with every rule on, and for a batch of 10.
//! Run: `cargo bench -p keyfence-policy --bench decide`. Target: under 5 µs for one order.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyfence_policy::{
    EndpointClass, Facts, Ledger, Mode, Order, OrderType, PolicyConfig, Side, Venue,
};
use rust_decimal::Decimal;

const NOW: i64 = 1_700_000_000_000;

fn policy() -> PolicyConfig {
    PolicyConfig {
        classes: vec![
            EndpointClass::Read,
            EndpointClass::Trade,
            EndpointClass::Cancel,
        ],
        symbols: Some(vec!["BTCUSDT".into(), "ETHUSDT".into(), "SOLUSDT".into()]),
        max_order_notional: Some(Decimal::from(10_000)),
        // Large enough that a long run never fills them: the bench measures allowed decisions.
        daily_notional: Some(Decimal::from(1_000_000_000_000_i64)),
        daily_orders: Some(u64::MAX / 2),
        max_position: BTreeMap::from([("BTCUSDT".to_owned(), Decimal::from(1_000_000_000))]),
        contract_values: BTreeMap::new(),
        orders_per_minute: Some(u32::MAX),
        price_band_pct: Some(Decimal::from(5)),
        trading_hours: Some("00:00-23:59".into()),
        max_price_age_s: 30,
    }
}

fn order(side: Side) -> Order {
    Order {
        venue: Venue::Binance,
        symbol: "BTCUSDT".into(),
        side,
        order_type: OrderType::Limit,
        quantity: Some(Decimal::new(1, 3)),
        quote_quantity: None,
        price: Some(Decimal::from(60_100)),
        reduce_only: false,
        client_id: None,
    }
}

fn prices(_v: Venue, _s: &str) -> Option<(Decimal, i64)> {
    Some((Decimal::from(60_000), NOW - 1_000))
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let one = [order(Side::Buy)];
    // Alternate buys and sells so the position stays near zero however long the run.
    let ten: Vec<Order> = (0..10)
        .map(|i| order(if i % 2 == 0 { Side::Buy } else { Side::Sell }))
        .collect();
    for (name, orders) in [
        ("decide/one-limit-order", &one[..]),
        ("decide/batch-of-10", &ten[..]),
    ] {
        let ledger = Ledger::new();
        let mut now = NOW;
        c.bench_function(name, |b| {
            b.iter(|| {
                // A fresh millisecond per decision keeps the minute window short, as in traffic.
                now += 1;
                let facts = Facts {
                    bot: "bench-bot",
                    venue: Venue::Binance,
                    class: EndpointClass::Trade,
                    orders,
                    now_ms: now,
                    mode: Mode::Active,
                };
                let d = ledger.decide(black_box(&policy), black_box(&facts), &prices);
                if let Some(r) = &d.reservation {
                    // Give it back so usage stays flat and every iteration is an allow.
                    ledger.release(r);
                }
                black_box(d)
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
