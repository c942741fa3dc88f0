//! Kraken nonces for the real keys: strictly increasing per key, across restarts.
//!
//! A nonce is `max(last + 1, now in µs)`. Before handing out a nonce at or above the persisted
//! floor, the floor is raised (durably) a minute of microseconds ahead, so after a crash or
//! restart the next nonce starts above anything ever sent, even if the clock went back.

use keyfence_store::{Store, StoreError};
use tokio::sync::Mutex;

const AHEAD_US: u64 = 60_000_000;

#[derive(Debug)]
pub struct NonceSource {
    key: String,
    state: Mutex<(u64, u64)>, // (last handed out, persisted floor)
}

impl NonceSource {
    /// `key` names the real key in the store (`kraken:<vault label>`).
    pub async fn load(store: &Store, key: String) -> Result<Self, StoreError> {
        let floor = store.nonce_floor(&key).await?;
        Ok(NonceSource {
            key,
            state: Mutex::new((floor, floor)),
        })
    }

    pub async fn next(&self, store: &Store, now_us: u64) -> Result<u64, StoreError> {
        let mut st = self.state.lock().await;
        let n = st.0.saturating_add(1).max(now_us);
        if n >= st.1 {
            let floor = n.saturating_add(AHEAD_US);
            store.set_nonce_floor(&self.key, floor).await?;
            st.1 = floor;
        }
        st.0 = n;
        Ok(n)
    }
}
