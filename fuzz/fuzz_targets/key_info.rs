//! Untrusted key-introspection answers for every venue.
#![no_main]

use keyfence_exchange::{Venue, parse_key_info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for venue in Venue::ALL {
        let _ = parse_key_info(venue, data);
    }
});
