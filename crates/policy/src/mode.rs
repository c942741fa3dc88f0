//! The kill switch's three states.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kill switch. `Active`: the policy alone decides. `Reducing`: reads, cancels and trades
/// whose orders are all reduce-only pass (bots can unwind, not add risk). `Halted`: only reads
/// and cancels pass.
///
/// `Default` is `Halted`: unknown state means halted, a mode nobody set is the safest one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Active,
    Reducing,
    #[default]
    Halted,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Active, Mode::Reducing, Mode::Halted];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Reducing => "reducing",
            Mode::Halted => "halted",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kill-switch mode `{0}`; expected one of active, reducing, halted")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_through_their_names() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>(), Ok(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(
            "Paused".parse::<Mode>(),
            Err(UnknownMode("Paused".to_owned()))
        );
        assert_eq!(Mode::default(), Mode::Halted);
    }
}
