//! The store contract on the history chain (DESIGN.md "Audit evidence"): through a
//! `SealingStore` over the store under test, a request's chain verifies after its creation, after
//! every kind of write (a transition, several entries at once, a write without history, a
//! delivered work note) and after racing writers; an entry edited in the store is named.
//!
//! A declared child of `contract` (its cases are listed in `chain_contract!`; the store-specific
//! edit of `an_edited_entry_is_named` is each store's test).

use std::future::Future;
use std::sync::Arc;

use domain::Error;
use domain::evidence::{EvidenceKey, SealingStore, Verified, verify};
use domain::model::{HistoryEntry, MessageClaim, MessageKind, OutboxMessage, Request, RequestId, Status, WorkNote};
use domain::ports::{Store, Write};
use domain::usecases::outbox::CLAIM_LEASE;
use jiff::{SignedDuration, Timestamp};

use super::{created, sample_request, sys_id, token_for};

const TEST_KEY: &str = "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8=";

fn key() -> EvidenceKey {
    EvidenceKey::from_base64(TEST_KEY).unwrap()
}

fn sealing(store: &Arc<dyn Store>) -> Arc<dyn Store> {
    SealingStore::wrap(store.clone(), key())
}

/// Reads the request and its history back and checks the chain: `count` entries, all chained.
async fn assert_verifies(store: &Arc<dyn Store>, id: &RequestId, count: u64) -> Request {
    let request = store.get(id).await.unwrap().unwrap();
    let history = store.history(id).await.unwrap();
    assert_eq!(
        verify(&key(), id.as_str(), &history, &request.chain),
        Ok(Verified { chained: count, unchained: 0 }),
        "{history:#?} {:?}",
        request.chain
    );
    assert_eq!(request.chain.hash.as_str(), history.last().unwrap().hash.as_deref().unwrap());
    request
}

fn claim_at(now: Timestamp) -> MessageClaim {
    MessageClaim::new(now, CLAIM_LEASE)
}

fn note_of(r: &Request, text: &str) -> OutboxMessage {
    OutboxMessage::new(&r.id, r.created_at, MessageKind::WorkNote(WorkNote { text: text.into(), close: None }))
}

fn written(r: &Request, text: &str) -> HistoryEntry {
    HistoryEntry {
        at: Timestamp::now(),
        actor: "servicenow".into(),
        from: Some(r.status),
        to: r.status,
        note: Some(format!("work note written: {text}")),
        proof: None,
        hash: None,
    }
}

fn write_of(request: Request, expected: u64, history: Vec<HistoryEntry>) -> Write {
    Write { history, ..Write::new(request, expected) }
}

/// Creation starts the chain at the record's id; a transition, a write of several entries (not in
/// time order), a write without history and the last transition each leave a chain that verifies.
pub async fn the_chain_verifies_after_every_kind_of_write(store: Arc<dyn Store>) {
    let sealed = sealing(&store);
    let r = sample_request(&sys_id());
    let (_, tok) = token_for(&r);
    sealed.create(r.clone(), created(&r), vec![tok.clone()], vec![]).await.unwrap();
    let r = assert_verifies(&store, &r.id, 1).await;
    assert_eq!(r.chain.count, 1);

    let mut approved = r.clone();
    let h = approved.transition(Status::Approved, "ops@example.com", Some("ok".into()), Timestamp::now()).unwrap();
    let w = Write { use_token: Some(tok.hash.clone()), ..write_of(approved, r.version, vec![h]) };
    let approved = sealed.apply(w).await.unwrap();
    assert_eq!(approved.chain.count, 2, "the written request carries its new head");
    assert_eq!(assert_verifies(&store, &r.id, 2).await, approved);

    let mut building = approved.clone();
    let later = Timestamp::now();
    let h1 = building.transition(Status::Provisioning, "worker-1", None, later).unwrap();
    // The second entry says an earlier time: the chain keeps the order they were written in.
    let h2 = HistoryEntry {
        at: later - SignedDuration::from_secs(5),
        actor: "worker-1".into(),
        from: Some(Status::Provisioning),
        to: Status::Provisioning,
        note: Some("quota checked".into()),
        proof: None,
        hash: None,
    };
    let building = sealed.apply(write_of(building, approved.version, vec![h1, h2])).await.unwrap();
    let stored = assert_verifies(&store, &r.id, 4).await;
    assert_eq!(store.history(&r.id).await.unwrap()[3].note.as_deref(), Some("quota checked"));

    let mut leased = building.clone();
    leased.touch(Timestamp::now());
    leased.due_at = Some(Timestamp::now() + SignedDuration::from_mins(2));
    let leased = sealed.apply(write_of(leased, building.version, vec![])).await.unwrap();
    let after = assert_verifies(&store, &r.id, 4).await;
    assert_eq!(after.chain, stored.chain, "a write without history leaves the chain as it is");
    assert_eq!(after.version, stored.version + 1);

    let mut active = leased.clone();
    let h = active.transition(Status::Active, "worker-1", None, Timestamp::now()).unwrap();
    sealed.apply(write_of(active, leased.version, vec![h])).await.unwrap();
    assert_verifies(&store, &r.id, 5).await;
}

/// A delivered work note joins the chain in the same write that removes the message, and keeps
/// the request's version: a writer that read the request before still writes, on the new head.
/// A delivery whose claim was lost changes nothing.
pub async fn a_delivered_note_joins_the_chain_without_a_new_version(store: Arc<dyn Store>) {
    let sealed = sealing(&store);
    let r = sample_request(&sys_id());
    let (first, second) = (note_of(&r, "received"), note_of(&r, "again"));
    sealed.create(r.clone(), created(&r), vec![], vec![first.clone(), second.clone()]).await.unwrap();
    let read_before = sealed.get(&r.id).await.unwrap().unwrap();

    let now = Timestamp::now();
    let claim = claim_at(now);
    let held = sealed.claim_message(&r.id, &first.id, &claim, now).await.unwrap().unwrap();
    sealed.message_sent(&held, &claim, Some(written(&r, "received"))).await.unwrap();
    let noted = assert_verifies(&store, &r.id, 2).await;
    assert_eq!(noted.version, read_before.version, "a delivered note is no new version");
    assert_eq!(sealed.messages_of(&r.id).await.unwrap(), vec![second.clone()]);

    let mut approved = read_before.clone();
    let h = approved.transition(Status::Approved, "ops@example.com", None, Timestamp::now()).unwrap();
    let approved = sealed.apply(write_of(approved, read_before.version, vec![h])).await.unwrap();
    assert_eq!(approved.chain.count, 3);
    let stored = assert_verifies(&store, &r.id, 3).await;
    assert_eq!(stored.status, Status::Approved);

    // The claim ran out and another sender took the message over: the first sender's late
    // delivery writes nothing.
    let early = claim_at(now);
    let taken = sealed.claim_message(&r.id, &second.id, &early, now).await.unwrap().unwrap();
    let after = early.until + SignedDuration::from_secs(1);
    let takeover = claim_at(after);
    sealed.claim_message(&r.id, &second.id, &takeover, after).await.unwrap().unwrap();
    let late = sealed.message_sent(&taken, &early, Some(written(&r, "again"))).await;
    assert!(matches!(late, Err(Error::Stale)), "{late:?}");
    assert_eq!(assert_verifies(&store, &r.id, 3).await, stored, "the lost claim changed nothing");
    sealed.message_sent(&taken, &takeover, Some(written(&r, "again"))).await.unwrap();
    assert_verifies(&store, &r.id, 4).await;
}

/// Writers racing for one version, and work notes delivered meanwhile: one decision wins, and
/// the chain holds the creation, the winner's entry and every note, and verifies.
pub async fn racing_writers_and_notes_leave_one_verified_chain(store: Arc<dyn Store>) {
    let sealed = sealing(&store);
    let r = sample_request(&sys_id());
    let (_, tok) = token_for(&r);
    let notes: Vec<OutboxMessage> = (0..4).map(|i| note_of(&r, &format!("note {i}"))).collect();
    sealed.create(r.clone(), created(&r), vec![tok.clone()], notes.clone()).await.unwrap();
    let mut deciders = Vec::new();
    for i in 0..12 {
        let (sealed, r, hash) = (sealed.clone(), r.clone(), tok.hash.clone());
        deciders.push(tokio::spawn(async move {
            let mut next = r.clone();
            let to = if i % 2 == 0 { Status::Approved } else { Status::Denied };
            let actor = format!("approver-{i}@example.com");
            let h = next.transition(to, &actor, None, Timestamp::now()).unwrap();
            let w = Write { use_token: Some(hash), ..write_of(next, r.version, vec![h]) };
            sealed.apply(w).await.map(|_| actor)
        }));
    }
    let mut senders = Vec::new();
    for m in notes {
        let (sealed, r) = (sealed.clone(), r.clone());
        senders.push(tokio::spawn(async move {
            let now = Timestamp::now();
            let claim = claim_at(now);
            let held = sealed.claim_message(&r.id, &m.id, &claim, now).await.unwrap().unwrap();
            sealed.message_sent(&held, &claim, Some(written(&r, &m.id))).await
        }));
    }
    let mut winners = Vec::new();
    for t in deciders {
        match t.await.unwrap() {
            Ok(actor) => winners.push(actor),
            Err(Error::Stale) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    for t in senders {
        t.await.unwrap().unwrap();
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = assert_verifies(&store, &r.id, 6).await;
    let history = store.history(&r.id).await.unwrap();
    let decisions: Vec<&str> = history.iter().filter(|e| e.from != Some(e.to)).map(|e| e.actor.as_str()).collect();
    assert_eq!(decisions, ["servicenow", winners[0].as_str()], "the creation and the winner's decision only");
    assert_eq!(history.iter().filter(|e| e.actor == "servicenow" && e.note.is_some()).count(), 4, "every note");
    assert_eq!(stored.version, r.version + 1);
}

/// After an entry of a sealed history is edited in the store by `edit` (given the request's id
/// and the stored entry, it changes that entry's note), `verify` names that entry.
pub async fn an_edited_entry_is_named<F, Fut>(store: Arc<dyn Store>, edit: F)
where
    F: FnOnce(RequestId, HistoryEntry) -> Fut,
    Fut: Future<Output = ()>,
{
    let sealed = sealing(&store);
    let r = sample_request(&sys_id());
    sealed.create(r.clone(), created(&r), vec![], vec![]).await.unwrap();
    let mut next = r.clone();
    let h1 = next.transition(Status::Approved, "ops@example.com", Some("fine".into()), Timestamp::now()).unwrap();
    let h2 = next.transition(Status::Provisioning, "worker-1", None, Timestamp::now()).unwrap();
    sealed.apply(write_of(next, r.version, vec![h1, h2])).await.unwrap();
    let stored = assert_verifies(&store, &r.id, 3).await;

    let history = store.history(&r.id).await.unwrap();
    edit(r.id.clone(), history[1].clone()).await;
    let edited = store.history(&r.id).await.unwrap();
    assert_eq!(edited.len(), 3);
    assert_ne!(edited[1].note, history[1].note, "the edit reached the store");
    let broken = verify(&key(), r.id.as_str(), &edited, &stored.chain).unwrap_err();
    assert_eq!(broken.entry, 1, "{broken}");
    assert!(broken.reason.contains("edited"), "{broken}");
}

/// Expands to one `#[tokio::test]` per chain case, each with a fresh store from `$make`.
#[macro_export]
macro_rules! chain_contract {
    ($make:expr) => {
        $crate::store_contract!(@cases $make;
            the_chain_verifies_after_every_kind_of_write,
            a_delivered_note_joins_the_chain_without_a_new_version,
            racing_writers_and_notes_leave_one_verified_chain);
    };
}
