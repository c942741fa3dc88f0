//! The persisted kill-switch state.

use serde::{Deserialize, Serialize};

/// The kill-switch mode is the policy's own type. Anything the store cannot read is `Halted`.
pub use keyfence_policy::{Mode, UnknownMode};

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
