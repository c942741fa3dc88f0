//! Form and query parameters, read exactly once each: a parameter sent twice is an error, so
//! what keyfence checks is what the exchange executes. Names that differ only in ASCII case
//! (`qty` and `Qty`) count as the same name: an exchange that folds case would see one of them.

use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `{0}` is sent more than once")]
    Duplicate(String),
    #[error("{0}")]
    Malformed(String),
}

/// Decoded parameters in the order sent, each name at most once. Borrows from the raw input
/// where no decoding was needed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Params<'a> {
    /// Parse `application/x-www-form-urlencoded` (or a query string), refusing repeated names.
    pub fn parse(raw: &'a str) -> Result<Self, ParamError> {
        // Room for a signed order's parameters (query and body) without growing.
        let mut p = Params {
            pairs: Vec::with_capacity(16),
        };
        p.extend(raw)?;
        Ok(p)
    }

    fn extend(&mut self, raw: &'a str) -> Result<(), ParamError> {
        for (k, v) in pairs(raw) {
            if self.pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(&k)) {
                return Err(ParamError::Duplicate(k.into_owned()));
            }
            self.pairs.push((k, v));
        }
        Ok(())
    }

    /// Parse raw body bytes as a form; bodies must be UTF-8.
    pub fn parse_bytes(raw: &'a [u8]) -> Result<Self, ParamError> {
        let s = std::str::from_utf8(raw)
            .map_err(|_| ParamError::Malformed("body is not UTF-8".into()))?;
        Params::parse(s)
    }

    /// Binance's rule: query and body together; a name in both is refused (the exchange would
    /// take the query's value, and the policy must never see a different one).
    pub fn merge_query_and_body(query: &'a str, body: &'a [u8]) -> Result<Self, ParamError> {
        let body = std::str::from_utf8(body)
            .map_err(|_| ParamError::Malformed("body is not UTF-8".into()))?;
        let mut p = Params::parse(query)?;
        p.extend(body)?;
        Ok(p)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.pairs
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// The pairs of a form, exactly as `form_urlencoded::parse` reads them (split at `&`, empty
/// pieces skipped, name and value split at the first `=`, `+` and `%XX` decoded, invalid UTF-8
/// replaced), but borrowed from the input when a pair has nothing to decode: a signed order's
/// parameters are plain ASCII, and decoding them through `form_urlencoded` was a few percent
/// of the gateway's CPU per order (it is done for the signature check, the policy and the
/// re-signing).
fn pairs(raw: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|piece| {
            if piece.bytes().any(|b| b == b'%' || b == b'+') {
                form_urlencoded::parse(piece.as_bytes()).next()
            } else {
                let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                Some((Cow::Borrowed(name), Cow::Borrowed(value)))
            }
        })
}

/// Largest amount (quantity or price) any parser accepts: 1e14. Far above any real order, and
/// low enough that the product of two amounts (a notional) cannot overflow a `Decimal`.
pub const MAX_AMOUNT: u64 = 100_000_000_000_000;

/// An amount as exchanges write them: ASCII digits with at most one point (`1.25`, `.5`, `3.`);
/// no sign, exponent, separator or space; at most 18 decimal places; at most [`MAX_AMOUNT`].
/// The one parser every venue uses, so that keyfence never reads a number differently from
/// the exchange (`1e3`, `+1`, `1_000` are refused, not reinterpreted).
pub fn plain_decimal(s: &str) -> Option<rust_decimal::Decimal> {
    let bytes = s.as_bytes();
    let points = bytes.iter().filter(|b| **b == b'.').count();
    let plain = bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && points <= 1;
    let decimals = s.split_once('.').map_or(0, |(_, f)| f.len());
    if !plain || decimals > 18 {
        return None;
    }
    let d: rust_decimal::Decimal = s.parse().ok()?;
    (d <= rust_decimal::Decimal::from(MAX_AMOUNT)).then_some(d)
}

/// Parse a JSON object body, refusing a key that appears twice at any depth
/// (serde_json keeps the last one silently; an exchange might keep the first).
pub fn parse_json_strict(raw: &[u8]) -> Result<serde_json::Value, ParamError> {
    use serde::de::{Deserializer as _, MapAccess, SeqAccess, Visitor};

    struct Strict;
    impl<'de> Visitor<'de> for Strict {
        type Value = serde_json::Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(serde_json::Value::Null)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(serde_json::Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element_seed(StrictSeed)? {
                out.push(v);
            }
            Ok(out.into())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(k) = map.next_key::<String>()? {
                let v = map.next_value_seed(StrictSeed)?;
                if out.keys().any(|e| e.eq_ignore_ascii_case(&k)) {
                    return Err(serde::de::Error::custom(format!("duplicate key `{k}`")));
                }
                out.insert(k, v);
            }
            Ok(out.into())
        }
    }
    struct StrictSeed;
    impl<'de> serde::de::DeserializeSeed<'de> for StrictSeed {
        type Value = serde_json::Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Strict)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(raw);
    let v = (&mut de)
        .deserialize_any(Strict)
        .map_err(|e| classify_json_error(&e))?;
    de.end().map_err(|e| classify_json_error(&e))?;
    Ok(v)
}

fn classify_json_error(e: &serde_json::Error) -> ParamError {
    let msg = e.to_string();
    match msg
        .strip_prefix("duplicate key `")
        .and_then(|r| r.split('`').next())
    {
        Some(k) => ParamError::Duplicate(k.to_owned()),
        None => ParamError::Malformed(format!("invalid JSON: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_read_a_form_as_form_urlencoded_does() {
        let forms = [
            "",
            "&",
            "&&a=1&&",
            "symbol=BTCUSDT&side=BUY&quantity=0.001&price=59000&timestamp=1700000000000",
            "a",
            "a=",
            "=b",
            "=",
            "a==b",
            "a=b=c",
            "a=1+2",
            "a+b=c",
            "a=%2B&b=%26&c=%3D",
            "%73ignature=x",
            "a=%",
            "a=%2",
            "a=%zz",
            "a=%FF&b=%C3%A9",
            "a=%C3",
            "na%6De=v%61lue",
            "é=ü&ü=%C3%BC",
            "a=1;b=2",
            "a=\u{0}&b=\t",
        ];
        for form in forms {
            let ours: Vec<_> = pairs(form).collect();
            let theirs: Vec<_> = form_urlencoded::parse(form.as_bytes()).collect();
            assert_eq!(ours, theirs, "{form:?}");
            for ((k, v), piece) in ours.iter().zip(form.split('&').filter(|p| !p.is_empty())) {
                if !piece.contains(['%', '+']) {
                    assert!(
                        matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))),
                        "{piece:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn repeated_names_are_refused() {
        assert_eq!(
            Params::parse("a=1&b=2&a=3"),
            Err(ParamError::Duplicate("a".into()))
        );
        assert_eq!(
            Params::merge_query_and_body("quantity=1", b"quantity=100"),
            Err(ParamError::Duplicate("quantity".into()))
        );
        assert_eq!(
            Params::parse("quantity=1&Quantity=100"),
            Err(ParamError::Duplicate("Quantity".into()))
        );
        let p = Params::merge_query_and_body("symbol=BTCUSDT", b"quantity=1").unwrap();
        assert_eq!(p.get("symbol"), Some("BTCUSDT"));
        assert_eq!(p.get("quantity"), Some("1"));
    }

    #[test]
    fn percent_encoding_is_decoded_once() {
        let p = Params::parse("symbol=%EF%BC%91&x=a%2Bb&y=a+b").unwrap();
        assert_eq!(p.get("symbol"), Some("１"));
        assert_eq!(p.get("x"), Some("a+b"));
        assert_eq!(p.get("y"), Some("a b"));
    }

    #[test]
    fn amounts_are_read_only_in_their_plain_form() {
        for (s, want) in [
            ("1", "1"),
            ("1.25", "1.25"),
            (".5", "0.5"),
            ("0", "0"),
            ("3.", "3"),
        ] {
            assert_eq!(plain_decimal(s), Some(want.parse().unwrap()), "{s}");
        }
        for s in [
            "",
            ".",
            "1e3",
            "1E3",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1_000",
            "1,5",
            "1..2",
            "0x10",
            "NaN",
            "inf",
            "0.0000000000000000001",
            "100000000000001",
            "79228162514264337593543950335",
        ] {
            assert_eq!(plain_decimal(s), None, "{s:?}");
        }
    }

    #[test]
    fn strict_json_refuses_duplicate_keys_at_any_depth() {
        assert!(parse_json_strict(br#"{"a":1,"b":{"c":1}}"#).is_ok());
        assert_eq!(
            parse_json_strict(br#"{"qty":"1","qty":"100"}"#),
            Err(ParamError::Duplicate("qty".into()))
        );
        assert_eq!(
            parse_json_strict(br#"{"request":[{"qty":"1","qty":"2"}]}"#),
            Err(ParamError::Duplicate("qty".into()))
        );
        assert_eq!(
            parse_json_strict(br#"{"qty":"0.001","Qty":"100"}"#),
            Err(ParamError::Duplicate("Qty".into()))
        );
        assert!(matches!(
            parse_json_strict(b"{\"a\":"),
            Err(ParamError::Malformed(_))
        ));
        assert!(matches!(
            parse_json_strict(b"{} trailing"),
            Err(ParamError::Malformed(_))
        ));
    }
}
