//! Tickers and balances per venue: the documented shapes, each venue's error envelope, and
//! answers that are not what the venue sends.

use super::*;
use crate::{EndpointClass, classify};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn ticker_requests_are_public_and_in_the_venues_spelling() {
    let cases = [
        (
            Venue::Binance,
            "BTCUSDT",
            "GET",
            "/api/v3/ticker/price?symbol=BTCUSDT",
        ),
        (
            Venue::Bybit,
            "BTCUSDT",
            "GET",
            "/v5/market/tickers?category=spot&symbol=BTCUSDT",
        ),
        (
            Venue::Okx,
            "BTC-USDT",
            "GET",
            "/api/v5/market/ticker?instId=BTC-USDT",
        ),
        (
            Venue::Coinbase,
            "BTC-USD",
            "GET",
            "/api/v3/brokerage/market/products/BTC-USD/ticker?limit=1",
        ),
        (
            Venue::Kraken,
            "XBTUSD",
            "GET",
            "/0/public/Ticker?pair=XBTUSD",
        ),
    ];
    for (venue, symbol, method, target) in cases {
        let req = ticker_request(venue, symbol);
        assert_eq!(
            (req.method.as_str(), req.target()),
            (method, target.to_owned()),
            "{venue}"
        );
        assert!(req.headers.is_empty() && req.body.is_empty(), "{venue}");
        assert_eq!(classify(venue, &req), EndpointClass::Public, "{venue}");
    }
}

#[test]
fn a_symbol_cannot_escape_its_parameter() {
    let req = ticker_request(Venue::Binance, "BTCUSDT&symbol=ETHUSDT");
    assert_eq!(req.query, "symbol=BTCUSDT%26symbol%3DETHUSDT");
    let req = ticker_request(Venue::Coinbase, "../accounts");
    assert_eq!(
        req.path,
        "/api/v3/brokerage/market/products/%2E%2E%2Faccounts/ticker"
    );
}

#[test]
fn balance_requests_are_reads() {
    for venue in Venue::ALL {
        let req = balances_request(venue);
        assert_eq!(classify(venue, &req), EndpointClass::Read, "{venue}");
    }
}

#[test]
fn spot_symbols_are_spelled_as_each_venue_spells_them() {
    assert_eq!(spot_symbol(Venue::Binance, "ETH", "USDT"), "ETHUSDT");
    assert_eq!(spot_symbol(Venue::Bybit, "ETH", "USDT"), "ETHUSDT");
    assert_eq!(spot_symbol(Venue::Okx, "ETH", "USDT"), "ETH-USDT");
    assert_eq!(spot_symbol(Venue::Coinbase, "ETH", "USD"), "ETH-USD");
    assert_eq!(spot_symbol(Venue::Kraken, "XBT", "USD"), "XBTUSD");
}

#[test]
fn tickers_read_the_last_price() {
    let cases: [(Venue, &str, &str, &str); 5] = [
        (
            Venue::Binance,
            "BTCUSDT",
            r#"{"symbol":"BTCUSDT","price":"60123.45000000"}"#,
            "60123.45",
        ),
        (
            Venue::Bybit,
            "BTCUSDT",
            r#"{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[
                {"symbol":"BTCUSDT","bid1Price":"60000","ask1Price":"60001","lastPrice":"60000.5"}]},
                "retExtInfo":{},"time":1}"#,
            "60000.5",
        ),
        (
            Venue::Okx,
            "BTC-USDT",
            r#"{"code":"0","msg":"","data":[{"instType":"SPOT","instId":"BTC-USDT","last":"9999.99",
                "askPx":"10000","bidPx":"9999"}]}"#,
            "9999.99",
        ),
        (
            Venue::Coinbase,
            "BTC-USD",
            r#"{"trades":[{"trade_id":"1","product_id":"BTC-USD","price":"140.91","size":"4",
                "time":"2021-05-31T09:59:59.000Z","side":"BUY"}],"best_bid":"140.90","best_ask":"140.92"}"#,
            "140.91",
        ),
        (
            Venue::Kraken,
            "XBTUSD",
            r#"{"error":[],"result":{"XXBTZUSD":{"a":["30300.10000","1","1.000"],
                "b":["30300.00000","1","1.000"],"c":["30303.20000","0.00067643"],
                "v":["4083.67001100","4412.73601799"],"o":"30502.80000"}}}"#,
            "30303.2",
        ),
    ];
    for (venue, symbol, body, want) in cases {
        assert_eq!(
            parse_ticker(venue, symbol, body.as_bytes()),
            Ok(d(want)),
            "{venue}"
        );
    }
}

#[test]
fn ticker_errors_are_the_venues_own() {
    let cases: [(Venue, &str, &str, &str); 5] = [
        (
            Venue::Binance,
            "NOPE",
            r#"{"code":-1121,"msg":"Invalid symbol."}"#,
            "-1121",
        ),
        (
            Venue::Bybit,
            "NOPE",
            r#"{"retCode":10001,"retMsg":"Not supported symbols","result":{},"retExtInfo":{},"time":1}"#,
            "10001",
        ),
        (
            Venue::Okx,
            "NOPE-USDT",
            r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
            "51001",
        ),
        (
            Venue::Coinbase,
            "NOPE-USD",
            r#"{"error":"NOT_FOUND","error_details":"ProductID is invalid","message":"ProductID is invalid"}"#,
            "NOT_FOUND",
        ),
        (
            Venue::Kraken,
            "NOPEUSD",
            r#"{"error":["EQuery:Unknown asset pair"]}"#,
            "EQuery:Unknown asset pair",
        ),
    ];
    for (venue, symbol, body, want) in cases {
        match parse_ticker(venue, symbol, body.as_bytes()) {
            Err(KeyInfoError::Venue { code, .. }) => assert_eq!(code, want, "{venue}"),
            other => panic!("{venue}: {other:?}"),
        }
    }
}

#[test]
fn garbage_tickers_are_malformed() {
    let garbage: &[(Venue, &str, &str)] = &[
        (Venue::Binance, "BTCUSDT", "<html>502 Bad Gateway</html>"),
        (
            Venue::Binance,
            "BTCUSDT",
            r#"{"symbol":"BTCUSDT","price":"6e4"}"#,
        ),
        (
            Venue::Binance,
            "BTCUSDT",
            r#"{"symbol":"BTCUSDT","price":60000}"#,
        ),
        (
            Venue::Binance,
            "BTCUSDT",
            r#"{"symbol":"ETHUSDT","price":"3000"}"#,
        ),
        (
            Venue::Binance,
            "BTCUSDT",
            r#"{"symbol":"BTCUSDT","price":"0"}"#,
        ),
        (
            Venue::Binance,
            "BTCUSDT",
            r#"[{"symbol":"BTCUSDT","price":"1"}]"#,
        ),
        (
            Venue::Bybit,
            "BTCUSDT",
            r#"{"retCode":0,"result":{"list":[]}}"#,
        ),
        (
            Venue::Bybit,
            "BTCUSDT",
            r#"{"result":{"list":[{"symbol":"BTCUSDT","lastPrice":"1"}]}}"#,
        ),
        (
            Venue::Okx,
            "BTC-USDT",
            r#"{"code":"0","data":[{"instId":"BTC-USDT"}]}"#,
        ),
        (
            Venue::Okx,
            "BTC-USDT",
            r#"{"code":"0","data":[{"instId":"BTC-USDT","last":"-5"}]}"#,
        ),
        (
            Venue::Coinbase,
            "BTC-USD",
            r#"{"trades":[],"best_bid":"1","best_ask":"1"}"#,
        ),
        (
            Venue::Coinbase,
            "BTC-USD",
            r#"{"trades":[{"product_id":"BTC-USD","price":""}]"#,
        ),
        (Venue::Kraken, "XBTUSD", r#"{"error":[],"result":{}}"#),
        (
            Venue::Kraken,
            "XBTUSD",
            r#"{"error":[],"result":{"XXBTZUSD":{"c":[]}}}"#,
        ),
        (Venue::Kraken, "XBTUSD", ""),
    ];
    for (venue, symbol, body) in garbage {
        assert!(
            matches!(
                parse_ticker(*venue, symbol, body.as_bytes()),
                Err(KeyInfoError::Malformed(_))
            ),
            "{venue}: {body}"
        );
    }
}

type Balances = Vec<(String, Decimal)>;

fn bal(pairs: &[(&str, &str)]) -> Balances {
    pairs.iter().map(|(a, x)| ((*a).to_owned(), d(x))).collect()
}

#[test]
fn balances_are_totals_per_asset_without_zeros() {
    let cases: [(Venue, &str, Balances); 5] = [
        (
            Venue::Binance,
            r#"{"makerCommission":0,"canTrade":true,"balances":[
                {"asset":"BTC","free":"1.50000000","locked":"0.50000000"},
                {"asset":"LTC","free":"0.00000000","locked":"0.00000000"},
                {"asset":"USDT","free":"100.00000000","locked":"0.00000000"}],"accountType":"SPOT"}"#,
            bal(&[("BTC", "2"), ("USDT", "100")]),
        ),
        (
            Venue::Bybit,
            r#"{"retCode":0,"retMsg":"OK","result":{"list":[{"accountType":"UNIFIED","totalEquity":"1",
                "coin":[{"coin":"BTC","walletBalance":"0.25","equity":"0.25"},
                        {"coin":"USDC","walletBalance":"-10","equity":"-10"},
                        {"coin":"USDT","walletBalance":"0","equity":"0"}]}]},"retExtInfo":{},"time":1}"#,
            bal(&[("BTC", "0.25"), ("USDC", "-10")]),
        ),
        (
            Venue::Okx,
            r#"{"code":"0","msg":"","data":[{"totalEq":"1","details":[
                {"ccy":"BTC","eq":"0.1","cashBal":"0.1"},{"ccy":"USDT","eq":"5.5","cashBal":"5.5"}]}]}"#,
            bal(&[("BTC", "0.1"), ("USDT", "5.5")]),
        ),
        (
            Venue::Coinbase,
            r#"{"accounts":[
                {"uuid":"a","currency":"BTC","available_balance":{"value":"1","currency":"BTC"},
                 "hold":{"value":"0.5","currency":"BTC"}},
                {"uuid":"b","currency":"USD","available_balance":{"value":"20.5","currency":"USD"}},
                {"uuid":"c","currency":"ETH","available_balance":{"value":"0","currency":"ETH"},
                 "hold":{"value":"0","currency":"ETH"}}],
               "has_next":false,"cursor":"","size":3}"#,
            bal(&[("BTC", "1.5"), ("USD", "20.5")]),
        ),
        (
            Venue::Kraken,
            r#"{"error":[],"result":{"XXBT":"1.0000000000","XBT.F":"0.5000000000",
                "ZUSD":"100.0000","USDT":"3.00000000","XETH":"0.0000000000","DOT":"10.0000000000"}}"#,
            bal(&[("DOT", "10"), ("USD", "100"), ("USDT", "3"), ("XBT", "1.5")]),
        ),
    ];
    for (venue, body, want) in cases {
        assert_eq!(parse_balances(venue, body.as_bytes()), Ok(want), "{venue}");
    }
}

#[test]
fn balance_errors_are_the_venues_own() {
    let cases: [(Venue, &str, &str); 5] = [
        (
            Venue::Binance,
            r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#,
            "-2015",
        ),
        (
            Venue::Bybit,
            r#"{"retCode":10005,"retMsg":"Permission denied","result":{},"time":1}"#,
            "10005",
        ),
        (
            Venue::Okx,
            r#"{"code":"50113","msg":"Invalid Sign","data":[]}"#,
            "50113",
        ),
        (
            Venue::Coinbase,
            r#"{"error":"PERMISSION_DENIED","error_details":"Missing required scopes","message":"Missing required scopes"}"#,
            "PERMISSION_DENIED",
        ),
        (
            Venue::Kraken,
            r#"{"error":["EGeneral:Permission denied"]}"#,
            "EGeneral:Permission denied",
        ),
    ];
    for (venue, body, want) in cases {
        match parse_balances(venue, body.as_bytes()) {
            Err(KeyInfoError::Venue { code, .. }) => assert_eq!(code, want, "{venue}"),
            other => panic!("{venue}: {other:?}"),
        }
    }
}

#[test]
fn garbage_balances_are_malformed() {
    let garbage: &[(Venue, &str)] = &[
        (Venue::Binance, "Unauthorized"),
        (
            Venue::Binance,
            r#"{"balances":[{"asset":"BTC","free":"1"}]}"#,
        ),
        (
            Venue::Binance,
            r#"{"balances":[{"asset":"","free":"1","locked":"0"}]}"#,
        ),
        (
            Venue::Bybit,
            r#"{"retCode":0,"result":{"list":[{"coin":[{"coin":"BTC"}]}]}}"#,
        ),
        (
            Venue::Okx,
            r#"{"code":"0","data":[{"details":[{"ccy":"BTC","eq":"1e3"}]}]}"#,
        ),
        // A partial list would understate the account: refused, not valued.
        (
            Venue::Coinbase,
            r#"{"accounts":[],"has_next":true,"cursor":"x"}"#,
        ),
        (
            Venue::Coinbase,
            r#"{"accounts":[{"currency":"BTC"}],"has_next":false}"#,
        ),
        (Venue::Kraken, r#"{"error":[],"result":{"XXBT":1.0}}"#),
        (
            Venue::Kraken,
            r#"{"error":[],"result":{"XXBT":"1","ZUSD":"99999999999999999999"}}"#,
        ),
    ];
    for (venue, body) in garbage {
        assert!(
            matches!(
                parse_balances(*venue, body.as_bytes()),
                Err(KeyInfoError::Malformed(_))
            ),
            "{venue}: {body}"
        );
    }
}

#[test]
fn kraken_assets_lose_only_the_legacy_prefix_and_earn_suffix() {
    for (id, want) in [
        ("XXBT", "XBT"),
        ("ZUSD", "USD"),
        ("XETH", "ETH"),
        ("XXDG", "XDG"),
        ("USDT", "USDT"),
        ("XTZ", "XTZ"),
        ("ETH2.S", "ETH2"),
        ("DOT.F", "DOT"),
    ] {
        assert_eq!(kraken_asset(id), want, "{id}");
    }
}
