//! Tampering done with raw SQL on the file is named at the right seq by `verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TempDir, open_signed, raw, request};
use keyfence_store::{CheckpointSigner, Store, VerifyReport};

/// 21 entries (seq 1 is the store's own "active" entry), checkpoints at 5, 10, 15, 20.
async fn journal(dir: &TempDir) -> (Store, Vec<u8>) {
    let key = CheckpointSigner::generate_pkcs8().unwrap();
    let (store, pk) = open_signed(&dir.db(), key.expose(), 5).await;
    for i in 0..20 {
        store.journal().append(request("b", i)).await.unwrap();
    }
    let clean = store.verify(Some(&pk)).await.unwrap();
    assert_eq!(
        clean,
        VerifyReport {
            entries: 21,
            checkpoints: 4,
            first_bad: None,
            public_key_hex: Some(hex::encode(&pk)),
        }
    );
    (store, pk)
}

async fn tamper(dir: &TempDir, sqls: &[&'static str]) {
    let pool = raw(&dir.db()).await;
    for sql in sqls {
        sqlx::query(*sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

fn bad(report: &VerifyReport) -> (u64, &str) {
    let (seq, why) = report.first_bad.as_ref().expect("tampering went unnoticed");
    (*seq, why.as_str())
}

#[tokio::test]
async fn an_altered_field_is_named() {
    let dir = TempDir::new("alter");
    let (store, pk) = journal(&dir).await;
    tamper(
        &dir,
        &["UPDATE journal SET notional = '1.00' WHERE seq = 7"],
    )
    .await;
    let r = store.verify(Some(&pk)).await.unwrap();
    let (seq, why) = bad(&r);
    assert_eq!(seq, 7);
    assert!(why.starts_with("altered"), "{why}");
}

#[tokio::test]
async fn an_altered_entry_with_a_forged_hash_is_named() {
    let dir = TempDir::new("rehash");
    let (store, pk) = journal(&dir).await;
    tamper(
        &dir,
        &["UPDATE journal SET decision = 'allow', hash = 'ff' || substr(hash, 3) WHERE seq = 12"],
    )
    .await;
    let r = store.verify(Some(&pk)).await.unwrap();
    assert_eq!(bad(&r).0, 12);
}

#[tokio::test]
async fn a_removed_row_is_named() {
    let dir = TempDir::new("remove");
    let (store, pk) = journal(&dir).await;
    tamper(&dir, &["DELETE FROM journal WHERE seq = 9"]).await;
    let r = store.verify(Some(&pk)).await.unwrap();
    let (seq, why) = bad(&r);
    assert_eq!(seq, 9);
    assert!(why.starts_with("removed"), "{why}");
}

#[tokio::test]
async fn swapped_rows_are_named() {
    let dir = TempDir::new("swap");
    let (store, pk) = journal(&dir).await;
    tamper(
        &dir,
        &[
            "UPDATE journal SET seq = -1 WHERE seq = 13",
            "UPDATE journal SET seq = 13 WHERE seq = 14",
            "UPDATE journal SET seq = 14 WHERE seq = -1",
        ],
    )
    .await;
    let r = store.verify(Some(&pk)).await.unwrap();
    let (seq, why) = bad(&r);
    assert_eq!(seq, 13);
    assert!(why.starts_with("reordered"), "{why}");
}

#[tokio::test]
async fn a_truncated_tail_after_a_checkpoint_is_named() {
    let dir = TempDir::new("truncate");
    let (store, pk) = journal(&dir).await;
    tamper(&dir, &["DELETE FROM journal WHERE seq > 17"]).await;
    let r = store.verify(Some(&pk)).await.unwrap();
    let (seq, why) = bad(&r);
    assert_eq!(seq, 18);
    assert!(
        why.starts_with("removed") && why.contains("checkpoint at 20"),
        "{why}"
    );
    assert_eq!(r.entries, 17);
}

#[tokio::test]
async fn a_corrupt_checkpoint_signature_is_named() {
    let dir = TempDir::new("badsig");
    let (store, pk) = journal(&dir).await;
    tamper(
        &dir,
        &["UPDATE checkpoints SET signature = (CASE substr(signature, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(signature, 2) WHERE seq = 10"],
    )
    .await;
    let r = store.verify(Some(&pk)).await.unwrap();
    let (seq, why) = bad(&r);
    assert_eq!(seq, 10);
    assert!(why.contains("signature invalid"), "{why}");
}

#[tokio::test]
async fn checkpoints_from_another_key_fail_against_the_pinned_key() {
    let dir = TempDir::new("pinned");
    let (store, _pk) = journal(&dir).await;
    let other =
        CheckpointSigner::from_pkcs8(CheckpointSigner::generate_pkcs8().unwrap().expose()).unwrap();
    let r = store.verify(Some(other.public_key())).await.unwrap();
    let (seq, why) = bad(&r);
    assert_eq!(seq, 5);
    assert!(why.contains("not the pinned key"), "{why}");
    // Unpinned, the checkpoints verify against the key they carry.
    assert_eq!(store.verify(None).await.unwrap().first_bad, None);
}

#[tokio::test]
async fn a_checkpoint_rewritten_to_match_an_altered_entry_fails_its_signature() {
    let dir = TempDir::new("cphash");
    let (store, pk) = journal(&dir).await;
    tamper(
        &dir,
        &["UPDATE checkpoints SET hash = 'ab' || substr(hash, 3) WHERE seq = 15"],
    )
    .await;
    let r = store.verify(Some(&pk)).await.unwrap();
    assert_eq!(bad(&r).0, 15);
}
