//! The gateway's reservation log: two files beside the database (`<db>.reserve-0` and
//! `<db>.reserve-1`) that a trading request's reservation is appended to with one `pwrite`
//! from the request's own thread, before it is forwarded. SQLite records the settlement: the
//! journal entry of the request's outcome carries the reservation id (column `reservation`).
//! After a crash, a reservation in the log without such an entry becomes a "recovery" entry.
//!
//! Why a log and not a table: a row in SQLite costs a round trip to the writer thread and a
//! transaction (a dozen system calls) on every order's path; an append costs one system call.
//!
//! Layout: records one after another from offset 0, each
//! `len: u32 LE | epoch: u64 LE | sum: u64 LE | payload (len bytes of JSON)`, where `sum` is
//! FNV-1a 64 over the first 12 bytes and the payload (it finds a torn write; it is not a
//! defence against tampering, which the journal's hash chain is for). A file's epoch is that of
//! its first record, an empty one written when the epoch starts (so the newest epoch is always
//! readable, and the next start takes a larger one); reading stops at the first record that is torn, zero, or of another epoch
//! (older bytes the file held before it was reused). The files are preallocated and reused, so
//! an fsync writes data, not metadata.
//!
//! Compaction without renames: appends go to the current file; when it is full, the current
//! file is fsynced, every reservation not yet durably settled is copied into the other file
//! under the next epoch, and appends continue there (that move happens under the log's lock,
//! about once per 10,000 orders, and holds other appends for an fsync). So every unsettled
//! reservation is always in a file that was fsynced after it was written, or in the current
//! file (fsynced before the bot is answered, or the log refuses every later append). Recovery
//! reads both files and takes the union.
//!
//! One process at a time: the files are locked (`flock`) while a gateway holds them.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::Pending;

const HEADER: usize = 4 + 8 + 8;

/// A record's payload: the reservation and the journal head when it was made. Its settling
/// entry is written after it, so it has a larger seq: recovery reads only entries after the
/// smallest `after` of the records it has to place.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Logged {
    pub after: u64,
    pub pending: Pending,
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn encode(epoch: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StoreError> {
    let len = u32::try_from(payload.len())
        .map_err(|_| StoreError::Corrupt("a reservation record is too large".to_owned()))?;
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..].copy_from_slice(&epoch.to_le_bytes());
    let sum = fnv1a(&[&head, payload]);
    out.extend_from_slice(&head);
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// The valid records of one file's current epoch: (epoch, payloads). A file that starts with
/// no valid record has epoch 0 and nothing in it.
fn decode(bytes: &[u8]) -> (u64, Vec<&[u8]>) {
    let mut out = Vec::new();
    let mut off = 0usize;
    let mut epoch = None;
    while let Some(head) = bytes.get(off..off + HEADER) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let mut e = [0u8; 8];
        e.copy_from_slice(&head[4..12]);
        let rec_epoch = u64::from_le_bytes(e);
        let mut s = [0u8; 8];
        s.copy_from_slice(&head[12..20]);
        let sum = u64::from_le_bytes(s);
        let Some(payload) = bytes.get(off + HEADER..off + HEADER + len) else {
            break;
        };
        if rec_epoch == 0 || fnv1a(&[&head[..12], payload]) != sum {
            break;
        }
        match epoch {
            None => epoch = Some(rec_epoch),
            Some(e) if e != rec_epoch => break,
            Some(_) => {}
        }
        // An empty record marks the epoch's start (a restart, a move between files).
        if len > 0 {
            out.push(payload);
        }
        off += HEADER + len;
    }
    (epoch.unwrap_or(0), out)
}

struct State {
    cur: usize,
    epoch: u64,
    off: u64,
    /// Reservations appended and not yet durably settled: id -> payload (copied at a switch).
    outstanding: HashMap<String, Vec<u8>>,
    outstanding_bytes: u64,
    /// Set by a failed write or `close`: every later append is refused (fail closed).
    broken: Option<String>,
    buf: Vec<u8>,
}

/// The reservation log a gateway holds (see the module docs).
pub(crate) struct Reservations {
    files: [File; 2],
    paths: [PathBuf; 2],
    /// Bytes a file holds before appends move to the other one.
    capacity: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for Reservations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservations")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Reservations {
    /// Lock and read both files: the log and what a previous run left in it. The log takes no
    /// appends until [`Reservations::restart`].
    pub(crate) fn open(
        db: &Path,
        capacity: u64,
    ) -> Result<(Reservations, Vec<Logged>), StoreError> {
        let paths = [
            crate::beside(db, ".reserve-0"),
            crate::beside(db, ".reserve-1"),
        ];
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .map_err(StoreError::io(p))
        };
        let files = [open(&paths[0])?, open(&paths[1])?];
        for (f, p) in files.iter().zip(&paths) {
            match f.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::JournalUnavailable(format!(
                        "another keyfence gateway holds this store's reservation log ({}); one gateway per store",
                        p.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io(p)(e)),
            }
        }
        let mut epoch = 0;
        let mut records = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (f, p) in files.iter().zip(&paths) {
            let len = f.metadata().map_err(StoreError::io(p))?.len();
            let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
            f.read_exact_at(&mut bytes, 0).map_err(StoreError::io(p))?;
            let (e, payloads) = decode(&bytes);
            epoch = epoch.max(e);
            for payload in payloads {
                let logged: Logged = serde_json::from_slice(payload).map_err(|e| {
                    StoreError::Corrupt(format!("{}: a reservation record: {e}", p.display()))
                })?;
                if seen.insert(logged.pending.id.clone()) {
                    records.push(logged);
                }
            }
        }
        let log = Reservations {
            files,
            paths,
            capacity: capacity.max(4096),
            state: Mutex::new(State {
                cur: 0,
                epoch,
                off: 0,
                outstanding: HashMap::new(),
                outstanding_bytes: 0,
                broken: Some("the reservation log is being recovered".to_owned()),
                buf: Vec::new(),
            }),
        };
        Ok((log, records))
    }

    /// Once what the files held is journaled (and on disk): forget it and take appends in a
    /// new epoch, one above every epoch seen. File 0 starts with the new epoch's marker and
    /// file 1's head is zeroed, so no old record is read again (and the next start, even after
    /// a run that appended nothing, reads this epoch and takes a larger one); both files are
    /// preallocated to the capacity (zeros), then fsynced.
    pub(crate) fn restart(&self) -> Result<(), StoreError> {
        let mut st = self.lock();
        let epoch = st.epoch + 1;
        let mut marker = Vec::with_capacity(2 * HEADER);
        encode(epoch, &[], &mut marker)?;
        marker.extend_from_slice(&[0u8; HEADER]);
        let zeros = vec![0u8; 64 * 1024];
        for (i, (f, p)) in self.files.iter().zip(&self.paths).enumerate() {
            // The head goes, so nothing this file held is read again...
            let head = if i == 0 {
                &marker[..]
            } else {
                &zeros[..HEADER]
            };
            f.write_all_at(head, 0).map_err(StoreError::io(p))?;
            // ...and the file is filled to its capacity once, then reused.
            let mut at = f
                .metadata()
                .map_err(StoreError::io(p))?
                .len()
                .max(HEADER as u64);
            while at < self.capacity {
                let n = (self.capacity - at).min(zeros.len() as u64);
                f.write_all_at(&zeros[..n as usize], at)
                    .map_err(StoreError::io(p))?;
                at += n;
            }
            f.sync_data().map_err(StoreError::io(p))?;
        }
        st.cur = 0;
        st.epoch = epoch;
        st.off = HEADER as u64;
        st.outstanding.clear();
        st.outstanding_bytes = 0;
        st.broken = None;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was before the write.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append one reservation (one `pwrite`; a switch to the other file when this one is
    /// full). Not on disk until [`Reservations::sync`].
    pub(crate) fn append(&self, pending: Pending, after: u64) -> Result<(), StoreError> {
        let logged = Logged { after, pending };
        let payload =
            serde_json::to_vec(&logged).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id = logged.pending.id;
        let mut st = self.lock();
        if let Some(why) = &st.broken {
            return Err(StoreError::JournalUnavailable(why.clone()));
        }
        if st.outstanding.contains_key(&id) {
            return Err(StoreError::DuplicateReservation(id));
        }
        let need = (HEADER + payload.len()) as u64;
        if st.off + need > self.capacity && st.outstanding_bytes < self.capacity / 2 {
            let st = &mut *st;
            if let Err(e) = self.switch(st) {
                st.broken = Some(format!("the reservation log could not move files: {e}"));
                return Err(e);
            }
        }
        let mut buf = std::mem::take(&mut st.buf);
        buf.clear();
        encode(st.epoch, &payload, &mut buf)?;
        let cur = st.cur;
        let written = self.files[cur].write_all_at(&buf, st.off);
        st.buf = buf;
        if let Err(e) = written {
            let e = StoreError::io(&self.paths[cur])(e);
            st.broken = Some(format!("a reservation could not be written: {e}"));
            return Err(e);
        }
        st.off += need;
        st.outstanding_bytes += need;
        st.outstanding.insert(id, payload);
        Ok(())
    }

    /// Move appends to the other file: fsync this one (everything in it is then on disk), copy
    /// the unsettled reservations into the other under the next epoch.
    fn switch(&self, st: &mut State) -> Result<(), StoreError> {
        let (from, to) = (st.cur, 1 - st.cur);
        self.files[from]
            .sync_data()
            .map_err(StoreError::io(&self.paths[from]))?;
        let epoch = st.epoch + 1;
        let mut buf = Vec::with_capacity(st.outstanding_bytes as usize + 2 * HEADER);
        encode(epoch, &[], &mut buf)?;
        for payload in st.outstanding.values() {
            encode(epoch, payload, &mut buf)?;
        }
        // A zero header after the copies ends a read there until the next append.
        buf.extend_from_slice(&[0u8; HEADER]);
        self.files[to]
            .write_all_at(&buf, 0)
            .map_err(StoreError::io(&self.paths[to]))?;
        st.cur = to;
        st.epoch = epoch;
        st.off = (buf.len() - HEADER) as u64;
        Ok(())
    }

    /// fsync the file appends go to (every earlier file was fsynced when appends left it). A
    /// failure is final: after a failed fsync the kernel may report the next one as done
    /// without the lost pages, so the log takes no more appends (the next start recovers from
    /// what the files hold).
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let cur = self.lock().cur;
        let synced = self.files[cur]
            .sync_data()
            .map_err(StoreError::io(&self.paths[cur]));
        if let Err(e) = &synced {
            self.lock().broken = Some(format!("an fsync of the reservation log failed: {e}"));
        }
        synced
    }

    /// These reservations' settling entries are on disk: they need not be copied any more.
    pub(crate) fn settled(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let mut st = self.lock();
        for id in ids {
            if let Some(p) = st.outstanding.remove(id) {
                st.outstanding_bytes = st
                    .outstanding_bytes
                    .saturating_sub((HEADER + p.len()) as u64);
            }
        }
    }

    /// The reservations not yet settled (for `usage`).
    pub(crate) fn outstanding(&self) -> Result<Vec<Pending>, StoreError> {
        let st = self.lock();
        st.outstanding
            .values()
            .map(|p| {
                serde_json::from_slice::<Logged>(p)
                    .map(|l| l.pending)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Refuse appends from now on, keeping the files locked (the process still holds the
    /// store: no other gateway may take the log while this one runs).
    pub(crate) fn refuse_appends(&self, why: &str) {
        self.lock().broken = Some(why.to_owned());
    }

    /// Refuse appends from now on and release the files' locks (a later open, in this process
    /// or another, may take them).
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.broken = Some("the journal writer has stopped".to_owned());
        for f in &self.files {
            drop(f.unlock());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-order reservation (also for the writer's tests).
    pub(crate) fn pending(id: &str) -> Pending {
        Pending {
            id: id.to_owned(),
            ts_ms: 1,
            bot: "b".to_owned(),
            venue: keyfence_types::Venue::Binance,
            day: 1,
            notional: rust_decimal::Decimal::ONE,
            orders: 1,
            positions: vec![],
            symbol: None,
            side: None,
            class: "trade".to_owned(),
        }
    }

    fn ids(left: &[Logged]) -> Vec<String> {
        left.iter().map(|l| l.pending.id.clone()).collect()
    }

    /// Each start takes a new epoch, also after a run that appended nothing: records of two
    /// runs ago (same size, so a new record ends exactly where an old one begins) stay buried.
    #[test]
    fn a_run_without_appends_still_leaves_old_records_buried() {
        let dir = std::env::temp_dir().join(format!("keyfence-reslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("k.db");
        let run = |append: &[&str]| {
            let (log, left) = Reservations::open(&db, 64 * 1024).unwrap();
            log.restart().unwrap();
            for id in append {
                log.append(pending(id), 0).unwrap();
            }
            log.sync().unwrap();
            log.close();
            ids(&left)
        };
        assert!(run(&["p0", "p1", "p2", "p3", "p4"]).is_empty());
        assert_eq!(run(&[]), ["p0", "p1", "p2", "p3", "p4"]);
        assert!(run(&["p9"]).is_empty());
        assert_eq!(run(&[]), ["p9"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn decode_stops_at_a_torn_record_or_another_epoch() {
        let mut buf = Vec::new();
        encode(7, b"{\"a\":1}", &mut buf).unwrap();
        encode(7, b"{\"a\":2}", &mut buf).unwrap();
        let two = buf.len();
        encode(6, b"{\"a\":3}", &mut buf).unwrap();
        let (epoch, recs) = decode(&buf);
        assert_eq!((epoch, recs.len()), (7, 2));
        // A flipped byte in the second record's payload ends the read before it.
        let mut torn = buf[..two].to_vec();
        let last = torn.len() - 2;
        torn[last] ^= 1;
        assert_eq!(decode(&torn), (7, vec![&b"{\"a\":1}"[..]]));
        // Cut short, zeros, nothing.
        assert_eq!(decode(&buf[..two - 1]).1.len(), 1);
        // An empty record (an epoch's marker) sets the epoch and yields nothing.
        let mut marked = Vec::new();
        encode(9, b"", &mut marked).unwrap();
        encode(9, b"{}", &mut marked).unwrap();
        encode(8, b"{\"old\":1}", &mut marked).unwrap();
        assert_eq!(decode(&marked), (9, vec![&b"{}"[..]]));
        assert_eq!(decode(&[0u8; 64]), (0, vec![]));
        assert_eq!(decode(&[]), (0, vec![]));
    }
}
