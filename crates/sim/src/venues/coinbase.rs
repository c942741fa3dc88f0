//! The simulated coinbase: not yet implemented; every request is answered "not found".

use keyfence_exchange::{Denial, DenialKind, NativeResponse, native_error};

use crate::state::{SimRequest, VenueState};

/// Permissions (the venue's own names) that let a key read and trade spot.
pub(crate) const TRADING_PERMISSIONS: &[&str] = &[];

pub(crate) fn split_symbol(symbol: &str) -> Option<(String, String)> {
    super::split_on_dash(symbol)
}

pub(crate) fn handle(state: &mut VenueState, req: &SimRequest) -> NativeResponse {
    native_error(
        state.venue,
        &Denial::new(DenialKind::NotFound, "not found"),
        req.now_ms,
    )
}
