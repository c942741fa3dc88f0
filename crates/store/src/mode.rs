//! Kill-switch mode. Temporary home: the design puts `Mode` in `keyfence-policy`; it lives here
//! with the same variants and serde spelling until the lead unifies the two.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Kill-switch mode. Anything the store cannot read is reported as `Halted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Active,
    Reducing,
    Halted,
}

impl Mode {
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

/// A mode string that is none of `active`, `reducing`, `halted`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{0}`; expected one of active, reducing, halted")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Mode::Active),
            "reducing" => Ok(Mode::Reducing),
            "halted" => Ok(Mode::Halted),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// The persisted kill-switch state: mode plus who set it, why and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlState {
    pub mode: Mode,
    pub who: String,
    pub why: String,
    pub changed_ms: i64,
}

impl ControlState {
    /// The fail-closed answer when the state cannot be read.
    pub(crate) fn unknown(reason: String) -> Self {
        ControlState {
            mode: Mode::Halted,
            who: "keyfence".to_owned(),
            why: format!("kill-switch state unreadable, treated as halted: {reason}"),
            changed_ms: 0,
        }
    }
}
