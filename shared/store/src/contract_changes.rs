//! The store contract on change records' history (audit evidence): through `SealingChanges`, each
//! write's new entries are chained and the chain verifies; a write that drops or edits an entry is
//! refused and leaves the record as it was; racing writers extend one head once; and the records
//! touched in a period come in (`updated_at`, key) order, a page at a time.
//!
//! A declared child of `contract` (its cases are listed in `change_records_contract!`).

use std::sync::Arc;

use domain::Error;
use domain::changes::{ChangeEntry, ChangeEvent, ChangeRecord, ChangeRecords};
use domain::evidence::{EvidenceKey, SealingChanges, verify};
use jiff::{SignedDuration, Timestamp};

use super::{change_record, sys_id};

fn key() -> EvidenceKey {
    EvidenceKey::from_base64("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=").unwrap()
}

fn step(event: ChangeEvent, note: &str) -> ChangeEntry {
    ChangeEntry::gate(Timestamp::now(), event, note)
}

fn verifies(rec: &ChangeRecord) -> bool {
    verify(&key(), &rec.key.record_id(), &rec.history, &rec.chain).is_ok()
}

/// `rec` at its next version with `entries` appended.
fn appended(rec: &ChangeRecord, entries: &[ChangeEntry]) -> ChangeRecord {
    let mut next = rec.clone();
    next.history.extend(entries.iter().cloned());
    next.version += 1;
    next
}

/// Sealed on every write; an edit, a drop or an out-of-order entry is refused; racers extend once.
pub async fn change_history_is_sealed_and_only_appended(records: Arc<dyn ChangeRecords>) {
    let sealed = SealingChanges::wrap(records.clone(), key());
    let mut rec = change_record(&sys_id());
    rec.history.push(step(ChangeEvent::Requested, "pipeline 900001 asks"));
    sealed.put_change(&rec, None).await.unwrap();
    let stored = records.get_change(&rec.key).await.unwrap().unwrap();
    assert_eq!(stored.chain.count, 1);
    assert!(stored.history[0].hash.is_some() && verifies(&stored));

    let next = appended(&stored, &[step(ChangeEvent::Created, "CHG0030001 created"), step(ChangeEvent::Gate, "wait")]);
    sealed.put_change(&next, Some(stored.version)).await.unwrap();
    let stored = records.get_change(&rec.key).await.unwrap().unwrap();
    assert_eq!(stored.chain.count, 3);
    assert!(verifies(&stored));

    // Edited, dropped, or a sealed entry handed in again after a new one: refused, nothing written.
    let mut edited = appended(&stored, &[step(ChangeEvent::Gate, "proceed")]);
    edited.history[1].note = "CHG0039999 created".into();
    let mut dropped = appended(&stored, &[step(ChangeEvent::Gate, "proceed")]);
    dropped.history.remove(0);
    let mut disordered = appended(&stored, &[step(ChangeEvent::Gate, "proceed")]);
    disordered.history.push(stored.history[0].clone());
    for (what, bad) in [("edited", edited), ("dropped", dropped), ("disordered", disordered)] {
        let refused = sealed.put_change(&bad, Some(stored.version)).await;
        assert!(matches!(refused, Err(Error::Internal { .. })), "{what}: {refused:?}");
        assert_eq!(records.get_change(&rec.key).await.unwrap().as_ref(), Some(&stored), "{what}");
    }
    // An edit straight in the store (no key) is caught by the chain.
    let mut tampered = stored.clone();
    tampered.history[2].note = "proceed".into();
    tampered.version += 1;
    records.put_change(&tampered, Some(stored.version)).await.unwrap();
    let broken = verify(&key(), &rec.key.record_id(), &tampered.history, &tampered.chain).unwrap_err();
    assert_eq!(broken.entry, 2);

    // Racing writers at one version: one extends the chain, the rest lose and write nothing.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (sealed, next) = (sealed.clone(), appended(&tampered, &[step(ChangeEvent::Gate, &format!("racer {i}"))]));
        tasks.push(tokio::spawn(async move { sealed.put_change(&next, Some(next.version - 1)).await }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(Error::Stale) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    let last = records.get_change(&rec.key).await.unwrap().unwrap();
    assert_eq!((last.history.len(), last.chain.count), (4, 4));
}

/// `changes_touched`: exactly the records last written in the period, in (`updated_at`, key)
/// order, paged with `after` (ties on the time included); a record written again moves.
pub async fn changes_touched_in_a_period_come_in_order(records: Arc<dyn ChangeRecords>) {
    let t0: Timestamp = "2031-01-31T23:59:59Z".parse().unwrap();
    let at = |secs: i64| t0 + SignedDuration::from_secs(secs);
    let put_at = |t: Timestamp| {
        let records = records.clone();
        async move {
            let mut rec = change_record(&sys_id());
            rec.updated_at = t;
            records.put_change(&rec, None).await.unwrap();
            rec
        }
    };
    let before = put_at(at(-1)).await;
    let (a, b) = (put_at(at(0)).await, put_at(at(0)).await);
    let c = put_at(at(2)).await; // across the month's end
    let after_period = put_at(at(10)).await;
    let (since, until) = (at(0), at(10));
    let mut tied = [a.clone(), b.clone()];
    tied.sort_by_key(|r| r.key.storage_key());
    let expected: Vec<_> = tied.iter().chain([&c]).map(|r| r.key.clone()).collect();
    let all = records.changes_touched(since, until, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|r| r.key.clone()).collect::<Vec<_>>(), expected);
    // Page by page, one at a time.
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = records.changes_touched(since, until, cursor.clone(), 1).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some((last.updated_at, last.key.clone()));
        walked.extend(page.iter().map(|r| r.key.clone()));
    }
    assert_eq!(walked, expected);
    // Written again later: it leaves its old place for the new one.
    let mut moved = c.clone();
    moved.updated_at = at(11);
    moved.version += 1;
    records.put_change(&moved, Some(c.version)).await.unwrap();
    let now = records.changes_touched(since, until, None, 100).await.unwrap();
    assert_eq!(now.iter().map(|r| r.key.clone()).collect::<Vec<_>>(), expected[..2].to_vec());
    let later = records.changes_touched(at(10), at(20), None, 100).await.unwrap();
    let later_keys: Vec<_> = later.iter().map(|r| r.key.clone()).collect();
    assert_eq!(later_keys, vec![after_period.key.clone(), moved.key.clone()]);
    assert!(!later_keys.contains(&before.key));
}
