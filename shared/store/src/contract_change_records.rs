//! The store contract on change records: created once, then written only at the version read and
//! found by sys_id; due at their `check_at` (`changes_due`), in and out of the due list as it
//! moves, with racing writers leaving the winner's time.
//!
//! A declared child of `contract`; `change_records_contract!` lists its cases and those of
//! `contract_changes.rs`.

use std::sync::Arc;

use domain::Error;
use jiff::{SignedDuration, Timestamp};

use super::sys_id;

/// A change record with a fresh key (`sha_seed` padded to 40 characters), no sys_id yet and no `check_at`.
pub fn change_record(sha_seed: &str) -> domain::changes::ChangeRecord {
    let now = Timestamp::now();
    domain::changes::ChangeRecord {
        key: domain::changes::ChangeKey {
            project_id: 4242,
            sha: format!("{:0>40}", sha_seed),
            environment: "production".into(),
        },
        version: 1,
        sys_id: String::new(),
        number: String::new(),
        url: String::new(),
        project_path: "acme/shop".into(),
        pipeline_id: 900001,
        pipeline_url: "https://gitlab.example.com/acme/shop/-/pipelines/900001".into(),
        job_id: Some(77001),
        merge_request_iid: Some(7),
        mr_note_id: None,
        title: "Deploy shop".into(),
        planned_start: None,
        planned_end: None,
        last_approval: None,
        played_job: None,
        reported: None,
        note_summary: None,
        emergency_reason: None,
        check_at: None,
        created_at: now,
        updated_at: now,
        history: vec![],
        chain: Default::default(),
    }
}

/// Change records: created once, then written only at the version read, found by sys_id.
pub async fn change_records_are_conditional(records: Arc<dyn domain::changes::ChangeRecords>) {
    let seed = sys_id();
    let mut rec = change_record(&seed);
    assert_eq!(records.get_change(&rec.key).await.unwrap(), None);
    records.put_change(&rec, None).await.unwrap();
    assert!(matches!(records.put_change(&rec, None).await, Err(Error::Stale)), "created once");
    assert_eq!(records.get_change(&rec.key).await.unwrap(), Some(rec.clone()));
    rec.sys_id = sys_id();
    rec.number = "CHG0030001".into();
    rec.version = 2;
    assert!(matches!(records.put_change(&rec, Some(7)).await, Err(Error::Stale)), "wrong version");
    records.put_change(&rec, Some(1)).await.unwrap();
    assert_eq!(records.get_change(&rec.key).await.unwrap().unwrap().number, "CHG0030001");
    assert_eq!(records.change_by_sys_id(&rec.sys_id).await.unwrap(), Some(rec.clone()));
    assert_eq!(records.change_by_sys_id(&sys_id()).await.unwrap(), None);
    // Racing writers at the same version: one wins.
    let mut wins = 0;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let records = records.clone();
        let mut next = rec.clone();
        next.version = 3;
        next.pipeline_id = 900100 + i;
        tasks.push(tokio::spawn(async move { records.put_change(&next, Some(2)).await }));
    }
    for t in tasks {
        if t.await.unwrap().is_ok() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

fn keys<'a>(records: impl IntoIterator<Item = &'a domain::changes::ChangeRecord>) -> Vec<domain::changes::ChangeKey> {
    records.into_iter().map(|r| r.key.clone()).collect()
}

fn due_at(check_at: Option<Timestamp>) -> domain::changes::ChangeRecord {
    domain::changes::ChangeRecord { check_at, ..change_record(&sys_id()) }
}

/// `changes_due`: the records whose `check_at` is at or before `now` (inclusive), whole, earliest
/// first, at most `limit`; a future `check_at` or none is not due.
pub async fn changes_come_due_at_their_check_at(records: Arc<dyn domain::changes::ChangeRecords>) {
    let now = Timestamp::now();
    let early = due_at(Some(now - SignedDuration::from_mins(10)));
    let later = due_at(Some(now - SignedDuration::from_mins(5)));
    let exactly = due_at(Some(now));
    let future = due_at(Some(now + SignedDuration::from_mins(5)));
    let never = due_at(None);
    assert!(records.changes_due(now, 100).await.unwrap().is_empty(), "nothing is due in an empty store");
    for r in [&future, &later, &never, &exactly, &early] {
        records.put_change(r, None).await.unwrap();
    }
    let due = records.changes_due(now, 100).await.unwrap();
    assert_eq!(keys(&due), keys([&early, &later, &exactly]), "earliest first");
    assert_eq!(due[0], early, "the whole record comes back");
    assert_eq!(keys(&records.changes_due(now, 2).await.unwrap()), keys([&early, &later]));
    assert_eq!(keys(&records.changes_due(now, 1).await.unwrap()), keys([&early]));
    assert!(records.changes_due(now, 0).await.unwrap().is_empty());
    let at_future = future.check_at.unwrap();
    assert_eq!(
        keys(&records.changes_due(at_future, 100).await.unwrap()),
        keys([&early, &later, &exactly, &future]),
        "a future check_at is due once its time has come"
    );
    assert!(records.changes_due(now - SignedDuration::from_mins(20), 100).await.unwrap().is_empty());
    let all = records.changes_due(Timestamp::MAX, 100).await.unwrap();
    assert!(all.iter().all(|r| r.key != never.key), "a record without check_at is never due");
}

/// Writing `check_at` moves the record in and out of the due list, under the usual conditions: a
/// losing write changes nothing, and the sys_id lookup is unaffected.
pub async fn a_change_leaves_the_due_list_when_check_at_moves(records: Arc<dyn domain::changes::ChangeRecords>) {
    let now = Timestamp::now();
    let past = Some(now - SignedDuration::from_mins(1));
    let due_keys = |list: Vec<domain::changes::ChangeRecord>| keys(&list);

    // Created without check_at, then given one (and a sys_id, so both lookups hold at once).
    let mut a = due_at(None);
    records.put_change(&a, None).await.unwrap();
    assert!(records.changes_due(now, 100).await.unwrap().is_empty());
    a.version = 2;
    a.sys_id = sys_id();
    a.check_at = past;
    records.put_change(&a, Some(1)).await.unwrap();
    let mut b = due_at(Some(now - SignedDuration::from_mins(2)));
    records.put_change(&b, None).await.unwrap();
    assert_eq!(due_keys(records.changes_due(now, 100).await.unwrap()), keys([&b, &a]));
    assert_eq!(records.change_by_sys_id(&a.sys_id).await.unwrap(), Some(a.clone()));

    // Nothing left to do: out of the list, still found by sys_id.
    a.version = 3;
    a.check_at = None;
    records.put_change(&a, Some(2)).await.unwrap();
    assert_eq!(due_keys(records.changes_due(now, 100).await.unwrap()), keys([&b]));
    assert_eq!(records.change_by_sys_id(&a.sys_id).await.unwrap(), Some(a.clone()));
    assert!(records.changes_due(Timestamp::MAX, 100).await.unwrap().iter().all(|r| r.key != a.key));

    // A losing write (wrong version) does not bring it back.
    let mut stale = a.clone();
    stale.version = 4;
    stale.check_at = past;
    assert!(matches!(records.put_change(&stale, Some(2)).await, Err(Error::Stale)));
    assert_eq!(due_keys(records.changes_due(now, 100).await.unwrap()), keys([&b]));
    assert_eq!(records.get_change(&a.key).await.unwrap(), Some(a.clone()));

    // Moved to the future: not due now, due then; moved back: due again, at its new time.
    b.version = 2;
    b.check_at = Some(now + SignedDuration::from_mins(30));
    records.put_change(&b, Some(1)).await.unwrap();
    assert!(records.changes_due(now, 100).await.unwrap().is_empty());
    assert_eq!(due_keys(records.changes_due(b.check_at.unwrap(), 100).await.unwrap()), keys([&b]));
    b.version = 3;
    b.check_at = Some(now - SignedDuration::from_secs(1));
    records.put_change(&b, Some(2)).await.unwrap();
    assert_eq!(records.changes_due(now, 100).await.unwrap(), vec![b.clone()]);
    a.version = 4;
    a.check_at = Some(now - SignedDuration::from_mins(1));
    records.put_change(&a, Some(3)).await.unwrap();
    assert_eq!(due_keys(records.changes_due(now, 100).await.unwrap()), keys([&a, &b]));
}

/// Racing writers that disagree about `check_at`: one wins, and the due list says what it wrote.
pub async fn racing_check_at_writes_leave_the_winners_time(records: Arc<dyn domain::changes::ChangeRecords>) {
    let now = Timestamp::now();
    let rec = due_at(Some(now - SignedDuration::from_mins(1)));
    records.put_change(&rec, None).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let records = records.clone();
            let mut next = rec.clone();
            next.version = 2;
            next.pipeline_id = 900200 + i;
            next.check_at = match i % 3 {
                0 => None,
                1 => Some(now + SignedDuration::from_mins(10)),
                _ => Some(now - SignedDuration::from_secs(i as i64)),
            };
            tokio::spawn(async move { records.put_change(&next, Some(1)).await.map(|()| next) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(next) => winners.push(next),
            Err(Error::Stale) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let winner = winners.pop().unwrap();
    assert_eq!(records.get_change(&rec.key).await.unwrap(), Some(winner.clone()));
    let expected = if winner.check_at.is_some_and(|t| t <= now) { vec![winner] } else { vec![] };
    assert_eq!(records.changes_due(now, 100).await.unwrap(), expected);
}

/// Expands to the change-record contract tests, each with a fresh store from `$make`.
#[macro_export]
macro_rules! change_records_contract {
    ($make:expr) => {
        $crate::change_records_contract!(@cases $make;
            change_records_are_conditional, changes_come_due_at_their_check_at,
            a_change_leaves_the_due_list_when_check_at_moves, racing_check_at_writes_leave_the_winners_time,
            change_history_is_sealed_and_only_appended, changes_touched_in_a_period_come_in_order);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::contract::$case($make).await;
            }
        )*
    };
}
