//! What the exchange made of a forwarded request: accepted or rejected, and the order id.
//!
//! Several venues answer HTTP 200 with an error code in the body (Bybit `retCode`, OKX `code`,
//! Kraken `error`), so the status alone does not say. Anything unreadable counts as accepted:
//! capacity reserved for it is kept (fail closed), never given back on a guess.

use keyfence_types::Venue;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: bool,
    pub order_id: Option<String>,
}

pub fn read(venue: Venue, status: u16, body: &[u8]) -> Outcome {
    if !(200..300).contains(&status) {
        return Outcome {
            accepted: false,
            order_id: None,
        };
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Outcome {
            accepted: true,
            order_id: None,
        };
    };
    let text = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match venue {
        Venue::Binance => Outcome {
            accepted: true,
            order_id: v.get("orderId").and_then(text),
        },
        Venue::Bybit => Outcome {
            accepted: v
                .get("retCode")
                .and_then(Value::as_i64)
                .is_none_or(|c| c == 0),
            order_id: v.pointer("/result/orderId").and_then(text),
        },
        Venue::Okx => {
            let code = v.get("code").and_then(Value::as_str);
            Outcome {
                // "2" is a batch in which some orders succeeded.
                accepted: code.is_none_or(|c| c == "0" || c == "2"),
                order_id: v.pointer("/data/0/ordId").and_then(text),
            }
        }
        Venue::Coinbase => Outcome {
            accepted: v.get("success").and_then(Value::as_bool) != Some(false),
            order_id: v
                .pointer("/success_response/order_id")
                .or_else(|| v.get("order_id"))
                .and_then(text),
        },
        Venue::Kraken => Outcome {
            accepted: v
                .get("error")
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty()),
            order_id: v.pointer("/result/txid/0").and_then(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_inside_200_answers_are_rejections() {
        let cases: &[(Venue, u16, &str, bool, Option<&str>)] = &[
            (Venue::Binance, 200, r#"{"orderId":12}"#, true, Some("12")),
            (Venue::Binance, 400, r#"{"code":-2010}"#, false, None),
            (
                Venue::Bybit,
                200,
                r#"{"retCode":0,"result":{"orderId":"a1"}}"#,
                true,
                Some("a1"),
            ),
            (
                Venue::Bybit,
                200,
                r#"{"retCode":10001,"result":{}}"#,
                false,
                None,
            ),
            (
                Venue::Okx,
                200,
                r#"{"code":"0","data":[{"ordId":"77"}]}"#,
                true,
                Some("77"),
            ),
            (
                Venue::Okx,
                200,
                r#"{"code":"51008","data":[]}"#,
                false,
                None,
            ),
            (
                Venue::Coinbase,
                200,
                r#"{"success":true,"success_response":{"order_id":"c"}}"#,
                true,
                Some("c"),
            ),
            (Venue::Coinbase, 200, r#"{"success":false}"#, false, None),
            (
                Venue::Kraken,
                200,
                r#"{"error":[],"result":{"txid":["O1"]}}"#,
                true,
                Some("O1"),
            ),
            (
                Venue::Kraken,
                200,
                r#"{"error":["EOrder:Insufficient funds"]}"#,
                false,
                None,
            ),
            (Venue::Kraken, 200, "not json", true, None),
        ];
        for (venue, status, body, accepted, id) in cases {
            let o = read(*venue, *status, body.as_bytes());
            assert_eq!(o.accepted, *accepted, "{venue} {body}");
            assert_eq!(o.order_id.as_deref(), *id, "{venue} {body}");
        }
    }
}
