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

#[cfg(test)]
mod tests {
    use super::canonical;

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
