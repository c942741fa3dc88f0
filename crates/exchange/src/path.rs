//! Canonical paths: read a request path the way the venue's front door would, so that an
//! encoded or disguised path (`%2F`, `//`, case, trailing slash, `;params`, dot segments) is
//! classified as what it really reaches.

use percent_encoding::percent_decode_str;

/// The canonical, lower-case form of `raw`: percent-decoded once, `;` path parameters dropped,
/// empty and `.` segments removed, `..` resolved, no trailing slash. `None` when the path
/// cannot be read unambiguously (not UTF-8, still encoded after one decode, NUL or backslash,
/// `..` above the root); callers treat that as an unknown endpoint.
pub fn canonical(raw: &str) -> Option<String> {
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    if decoded.contains('%') || decoded.contains('\\') || decoded.contains('\0') {
        return None;
    }
    if decoded.chars().any(char::is_control) {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out.to_ascii_lowercase())
}

/// Whether `raw` reaches its endpoint only through a reading a front door might not share:
/// an encoded slash or backslash, a `;` path parameter, an empty segment (`//`), or a dot
/// segment. [`crate::classify`] returns such a path's class only when that class is one a
/// policy refuses by default; otherwise it is `Unknown`.
pub fn is_ambiguous(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains(';') {
        return true;
    }
    let Ok(decoded) = percent_decode_str(raw).decode_utf8() else {
        return true;
    };
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && !trimmed.is_empty()
}

#[cfg(test)]
mod tests {
    use super::{canonical, is_ambiguous};

    #[test]
    fn ambiguous_paths_are_recognised() {
        for raw in [
            "/a%2Fb",
            "/a%2fb",
            "/a;x=1/b",
            "//a/b",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/%2e%2e/b",
            "/a%5Cb",
        ] {
            assert!(is_ambiguous(raw), "{raw}");
        }
        for raw in [
            "/",
            "/api/v3/order",
            "/API/V3/Order",
            "/api/v3/order/",
            "/0/private/AddOrder",
        ] {
            assert!(!is_ambiguous(raw), "{raw}");
        }
    }

    #[test]
    fn disguised_paths_canonicalise_to_the_real_endpoint() {
        let want = Some("/sapi/v1/capital/withdraw/apply".to_owned());
        for raw in [
            "/sapi/v1/capital/withdraw/apply",
            "/sapi/v1/capital%2Fwithdraw/apply",
            "/sapi/v1/capital%2fwithdraw%2Fapply",
            "//sapi//v1/capital/withdraw/apply/",
            "/SAPI/V1/Capital/Withdraw/Apply",
            "/sapi/v1/capital/withdraw/apply;x=1",
            "/sapi/v1/./capital/x/../withdraw/apply",
            "/sapi/v1/capital/withdraw/%61pply",
        ] {
            assert_eq!(canonical(raw), want, "{raw}");
        }
    }

    #[test]
    fn unreadable_paths_are_none() {
        assert_eq!(canonical("/a/%252F/b"), None);
        assert_eq!(canonical("/a/%ff"), None);
        assert_eq!(canonical("/../etc"), None);
        assert_eq!(canonical("/a\\b"), None);
        assert_eq!(canonical("/a%00b"), None);
    }
}
