//! keyfence-sim: paper exchanges for Binance, Bybit, OKX, Coinbase and Kraken.
//!
//! One HTTP listener per venue speaks that venue's paths, authentication and error shapes;
//! an admin listener changes prices, injects faults and shows every request received.
//! Configuration: [`config::SimConfig`], documented in `docs/sim-config.md`.

pub mod config;
pub mod server;
pub mod state;
pub mod venues;

pub use config::SimConfig;
pub use server::{RunningSim, start};
