//! Untrusted request bytes through everything that reads them: path canonicalisation,
//! classification, order parsing, signature verification, parameter parsing.
#![no_main]

use std::collections::HashMap;

use keyfence_exchange::{
    AuthContext, HttpRequest, Venue, VerifyKey, authenticate, claimed_api_key, classify,
    params, parse_orders, path,
};
use libfuzzer_sys::fuzz_target;

fn field(parts: &mut std::slice::Split<'_, u8, impl FnMut(&u8) -> bool>) -> String {
    String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned()
}

fuzz_target!(|data: &[u8]| {
    // Layout: venue byte, then method, path, query, header block, body separated by 0xFF.
    let Some((&v, rest)) = data.split_first() else { return };
    let venue = Venue::ALL[usize::from(v) % Venue::ALL.len()];
    let mut parts = rest.split(|b| *b == 0xFF);
    let method = field(&mut parts);
    let path = field(&mut parts);
    let query = field(&mut parts);
    let headers = field(&mut parts)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = parts.next().unwrap_or_default().to_vec();
    let req = HttpRequest { method, path, query, headers, body };

    let _ = path::canonical(&req.path);
    let _ = params::Params::parse(&req.query);
    let _ = params::Params::merge_query_and_body(&req.query, &req.body);
    let _ = params::parse_json_strict(&req.body);
    let _ = classify(venue, &req);
    let _ = parse_orders(venue, &req);
    let _ = claimed_api_key(venue, &req);

    let mut keys: HashMap<String, VerifyKey> = HashMap::new();
    if let Some(k) = claimed_api_key(venue, &req) {
        if let Ok(vk) = VerifyKey::hmac(venue, "ZnV6ei1zZWNyZXQ=", None) {
            keys.insert(k, vk);
        }
    }
    let ctx = AuthContext { now_ms: 1_700_000_000_000, host: Some("127.0.0.1:9104") };
    let _ = authenticate(venue, &req, &ctx, &keys);
});
