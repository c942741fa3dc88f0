//! `trading_hours = "HH:MM-HH:MM"` (UTC), which may wrap midnight.

use std::fmt;
use std::str::FromStr;

use crate::DAY_MS;

const MINUTE_MS: i64 = 60_000;

/// A daily UTC window: trades pass from `start` (inclusive) to `end` (exclusive). A window whose
/// start is after its end wraps midnight (`"22:00-06:00"`). `24:00` is accepted as an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradingHours {
    /// Minutes after 00:00 UTC, 0..1440.
    start: u16,
    /// Minutes after 00:00 UTC, 1..=1440.
    end: u16,
}

impl TradingHours {
    /// Whether `now_ms` falls inside the window.
    pub fn contains(self, now_ms: i64) -> bool {
        let minute = now_ms.rem_euclid(DAY_MS) / MINUTE_MS;
        let (start, end) = (i64::from(self.start), i64::from(self.end));
        if start < end {
            start <= minute && minute < end
        } else {
            minute >= start || minute < end
        }
    }
}

impl fmt::Display for TradingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

fn clock(s: &str, is_end: bool) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m > 59 {
        return None;
    }
    match (h, m) {
        (24, 0) if is_end => Some(1440),
        (0..=23, _) => Some(h * 60 + m),
        _ => None,
    }
}

impl FromStr for TradingHours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "trading_hours `{s}` is not `HH:MM-HH:MM` in UTC (e.g. \"08:00-20:00\", or \"22:00-06:00\" across midnight)"
            )
        };
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let start = clock(a.trim(), false).ok_or_else(bad)?;
        let end = clock(b.trim(), true).ok_or_else(bad)?;
        if start == end || (start == 0 && end == 1440) {
            return Err(format!(
                "trading_hours `{s}` starts where it ends; remove trading_hours to trade at any hour"
            ));
        }
        Ok(TradingHours { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64, m: i64) -> i64 {
        // Some day well after 1970, to show only the time of day matters.
        20_000 * DAY_MS + h * 3_600_000 + m * MINUTE_MS
    }

    #[test]
    fn a_plain_window_includes_its_start_and_excludes_its_end() {
        let w: TradingHours = "08:00-20:00".parse().unwrap();
        assert!(!w.contains(at(7, 59)));
        assert!(w.contains(at(8, 0)));
        assert!(w.contains(at(19, 59)));
        assert!(!w.contains(at(20, 0)));
        assert_eq!(w.to_string(), "08:00-20:00");
    }

    #[test]
    fn a_window_may_wrap_midnight() {
        let w: TradingHours = "22:30-06:00".parse().unwrap();
        assert!(w.contains(at(22, 30)));
        assert!(w.contains(at(23, 59)));
        assert!(w.contains(at(0, 0)));
        assert!(w.contains(at(5, 59)));
        assert!(!w.contains(at(6, 0)));
        assert!(!w.contains(at(12, 0)));
        assert!(!w.contains(at(22, 29)));
    }

    #[test]
    fn twenty_four_is_an_end_only() {
        let w: TradingHours = "12:00-24:00".parse().unwrap();
        assert!(w.contains(at(23, 59)));
        assert!(!w.contains(at(0, 0)));
        assert!("24:00-06:00".parse::<TradingHours>().is_err());
    }

    #[test]
    fn malformed_windows_are_refused_with_an_example() {
        for bad in [
            "",
            "8:00-20:00",
            "08:00",
            "08:60-09:00",
            "25:00-01:00",
            "08:00-08:00",
            "00:00-24:00",
            "ab:cd-ef:gh",
            "08:00-20:00-21:00",
        ] {
            let e = bad.parse::<TradingHours>().unwrap_err();
            assert!(e.contains("trading_hours"), "{bad}: {e}");
        }
    }
}
