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
    let fast = read_fields(venue, Fields::parse(body));
    if fast.accepted {
        return fast;
    }
    // A rejection gives capacity back: it must come from an answer that reads as JSON in
    // whole (what was skipped above was not checked: depth, escapes, number ranges), so
    // anything unreadable still counts as accepted.
    let whole = serde_json::from_slice::<Value>(body).ok().map(Fields::of);
    read_fields(venue, whole)
}

/// An id as venues write them: a non-empty string or a number.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A 2xx answer's outcome from its fields (None: not JSON, which counts as accepted).
fn read_fields(venue: Venue, fields: Option<Fields>) -> Outcome {
    let Some(v) = fields else {
        return Outcome {
            accepted: true,
            order_id: None,
        };
    };
    match venue {
        Venue::Binance => Outcome {
            accepted: true,
            order_id: v.order_id_binance.as_ref().and_then(text),
        },
        Venue::Bybit => Outcome {
            accepted: v
                .ret_code
                .as_ref()
                .and_then(Value::as_i64)
                .is_none_or(|c| c == 0),
            order_id: v
                .result
                .as_ref()
                .and_then(|r| r.get("orderId"))
                .and_then(text),
        },
        Venue::Okx => {
            let code = v.code.as_ref().and_then(Value::as_str);
            Outcome {
                // "2" is a batch in which some orders succeeded.
                accepted: code.is_none_or(|c| c == "0" || c == "2"),
                order_id: v
                    .data
                    .as_ref()
                    .and_then(|d| d.pointer("/0/ordId"))
                    .and_then(text),
            }
        }
        Venue::Coinbase => Outcome {
            accepted: v.success.as_ref().and_then(Value::as_bool) != Some(false),
            order_id: v
                .success_response
                .as_ref()
                .and_then(|r| r.get("order_id"))
                .or(v.order_id.as_ref())
                .and_then(text),
        },
        Venue::Kraken => Outcome {
            accepted: v
                .error
                .as_ref()
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty()),
            order_id: v
                .result
                .as_ref()
                .and_then(|r| r.pointer("/txid/0"))
                .and_then(text),
        },
    }
}

/// The top-level fields any venue's answer is read for; the rest of the answer (fills, echoes
/// of the order) is skipped without being built.
#[derive(Debug, serde::Deserialize)]
struct Fields {
    #[serde(rename = "orderId")]
    order_id_binance: Option<Value>,
    #[serde(rename = "retCode")]
    ret_code: Option<Value>,
    result: Option<Value>,
    code: Option<Value>,
    data: Option<Value>,
    success: Option<Value>,
    success_response: Option<Value>,
    order_id: Option<Value>,
    error: Option<Value>,
}

impl Fields {
    /// The fields, skipping the rest unbuilt; None when the body is not JSON. An answer that
    /// is JSON but not an object of distinct keys (an array, a repeated key) is read as a
    /// whole: a repeated key counts by its last value, anything but an object has none.
    fn parse(body: &[u8]) -> Option<Fields> {
        let object = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        if object && let Ok(f) = serde_json::from_slice::<Fields>(body) {
            return Some(f);
        }
        serde_json::from_slice::<Value>(body).ok().map(Fields::of)
    }

    /// The fields of an answer read whole.
    fn of(v: Value) -> Fields {
        let get = |k: &str| v.get(k).filter(|x| !x.is_null()).cloned();
        Fields {
            order_id_binance: get("orderId"),
            ret_code: get("retCode"),
            result: get("result"),
            code: get("code"),
            data: get("data"),
            success: get("success"),
            success_response: get("success_response"),
            order_id: get("order_id"),
            error: get("error"),
        }
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

    /// The reading as a whole `Value` (what `read` did before it picked out its fields).
    fn read_whole(venue: Venue, status: u16, body: &[u8]) -> Outcome {
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
        let (accepted, order_id) = match venue {
            Venue::Binance => (true, v.get("orderId").and_then(text)),
            Venue::Bybit => (
                v.get("retCode")
                    .and_then(Value::as_i64)
                    .is_none_or(|c| c == 0),
                v.pointer("/result/orderId").and_then(text),
            ),
            Venue::Okx => (
                v.get("code")
                    .and_then(Value::as_str)
                    .is_none_or(|c| c == "0" || c == "2"),
                v.pointer("/data/0/ordId").and_then(text),
            ),
            Venue::Coinbase => (
                v.get("success").and_then(Value::as_bool) != Some(false),
                v.pointer("/success_response/order_id")
                    .or_else(|| v.get("order_id"))
                    .and_then(text),
            ),
            Venue::Kraken => (
                v.get("error")
                    .and_then(Value::as_array)
                    .is_none_or(|e| e.is_empty()),
                v.pointer("/result/txid/0").and_then(text),
            ),
        };
        Outcome { accepted, order_id }
    }

    #[test]
    fn picking_fields_reads_as_the_whole_answer_would() {
        let bodies = [
            r#"{"symbol":"BTCUSDT","orderId":28,"fills":[{"price":"1"}]}"#,
            r#"{"orderId":"","retCode":null}"#,
            r#"{"orderId":1,"orderId":2}"#,
            r#"{"retCode":"0","result":{"orderId":"b"}}"#,
            r#"{"retCode":10001,"retCode":0,"result":{"orderId":"b"}}"#,
            r#"{"code":"2","data":[{"ordId":"o1"},{"ordId":"o2"}]}"#,
            r#"{"code":0,"data":{"ordId":"x"}}"#,
            r#"{"success":null,"order_id":"c"}"#,
            r#"{"success":false,"success_response":{"order_id":"s"},"order_id":"c"}"#,
            r#"{"error":[],"result":{"txid":["T1"],"descr":{}}}"#,
            r#"{"error":["EOrder:x"],"result":null}"#,
            r#"{"error":"none"}"#,
            r#"[{"orderId":1}]"#,
            r#""text""#,
            "not json",
            "",
            // An array of nine: must not be read by position as the fields.
            r#"[1,"x",10001,4,"1",6,false,8,["E"]]"#,
            // Unreadable as a whole (a skipped part would pass unchecked): still accepted.
            r#"{"retCode":10001,"code":"1","success":false,"error":["E"],"x":1e400}"#,
            r#"{"retCode":10001,"code":"1","success":false,"error":["E"],"x":"\ud800"}"#,
        ];
        let deep = format!(
            r#"{{"retCode":10001,"code":"1","success":false,"error":["E"],"x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let mut bad_utf8 =
            br#"{"retCode":10001,"code":"1","success":false,"error":["E"],"x":""#.to_vec();
        bad_utf8.extend_from_slice(b"\xff\"}");
        let mut all: Vec<Vec<u8>> = bodies.iter().map(|b| b.as_bytes().to_vec()).collect();
        all.push(deep.into_bytes());
        all.push(bad_utf8);
        for venue in Venue::ALL {
            for body in &all {
                for status in [200, 201, 400] {
                    let (new, old) = (read(venue, status, body), read_whole(venue, status, body));
                    let shown = String::from_utf8_lossy(body);
                    // Accepted or not: always as the whole reading says.
                    assert_eq!(new.accepted, old.accepted, "{venue:?} {status} {shown}");
                    // The order id too, wherever the whole reading could read the answer.
                    if serde_json::from_slice::<Value>(body).is_ok() {
                        assert_eq!(new, old, "{venue:?} {status} {shown}");
                    }
                }
            }
        }
    }
}
