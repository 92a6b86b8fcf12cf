//! The store contract that history is only ever appended to (DESIGN.md "Audit evidence"): no
//! write of any kind, winning or losing, deletes, edits, reorders or re-seals an entry of any
//! request, and no request's chain head goes back.
//!
//! `AppendOnly` wraps the store under test and, after every call of a method that writes, reads
//! the history and head of every request created through it and compares them with what it read
//! after the call before. The scenario drives every writing method through a `SealingStore` over
//! it, as the services do, so the store sees exactly what it sees in production: creations,
//! transitions, writes without history, losing and resealed writes, deliveries with and without
//! a history entry, failed, dead and revived messages, sign-ins and sessions.
//!
//! A declared child of `contract` (its case is listed in `history_contract!`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::evidence::{ChainHead, EvidenceKey, SealingStore, Verified, verify};
use domain::model::{
    HistoryEntry, Lease, MessageClaim, MessageKind, OutboxMessage, Request, RequestId, Retirement, Status, WorkNote,
};
use domain::ports::{Created, MessageCounts, Store, Write};
use domain::signin::{ApproverSession, PendingSignIn, SignIns};
use domain::token::{TokenHash, TokenRecord};
use domain::usecases::outbox::CLAIM_LEASE;
use domain::{Error, Result};
use jiff::{SignedDuration, Timestamp};

use super::{approver_session, created, mail, pending_sign_in, sample_request, sys_id, token_for};

/// Every method of the store's ports that writes, by the name `AppendOnly` records it under.
///
/// - `Store`: `create`, `apply`, `claim_message` (writes the claim), `message_sent`,
///   `message_sent_chained`, `message_failed`, `revive_message`. Approval tokens have no method
///   of their own: they are written by `create` and by `apply` (`new_tokens`, `use_token`).
/// - `SignIns`: `begin_sign_in`, `take_sign_in` (deletes the sign-in), `put_session`.
///
/// The other methods only read: `get`, `find_by_source`, `history`, `token`, `due`,
/// `messages_due`, `messages_of`, `message_counts`, `touched`, `session`.
///
/// Change records have one writing method, `ChangeRecords::put_change`, whose history lives in
/// the record itself: `change_history_is_sealed_and_only_appended` (contract_changes.rs) drives it
/// through `SealingChanges` with creations, appends, racing writers and every kind of rewrite
/// (edited, dropped, re-sealed entries), which are refused and leave the record as it was.
pub const WRITES: [&str; 10] = [
    "create",
    "apply",
    "claim_message",
    "message_sent",
    "message_sent_chained",
    "message_failed",
    "revive_message",
    "begin_sign_in",
    "take_sign_in",
    "put_session",
];

/// A record whose history is watched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Watched {
    Request(RequestId),
}

/// A watched record as read after a write.
#[derive(Debug, Clone, Default)]
struct Seen {
    history: Vec<HistoryEntry>,
    head: ChainHead,
    version: u64,
}

/// How often a writing method was called, and how often it answered an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub all: usize,
    pub failed: usize,
}

/// A `Store` that forwards every call to the store under it and, after each call of a method in
/// `WRITES` (whatever it answered), checks every request created through it: its history as read
/// before is an unchanged prefix of its history now (entries and hashes equal), its head's count
/// and its version never went back, and its head does not count more sealed entries than the
/// history holds.
pub struct AppendOnly {
    inner: Arc<dyn Store>,
    /// Held across each check's reads, so checks after racing writes read one after another and
    /// each compares with the latest state read.
    watched: tokio::sync::Mutex<BTreeMap<Watched, Seen>>,
    calls: Mutex<BTreeMap<&'static str, Calls>>,
}

impl AppendOnly {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        AppendOnly { inner, watched: Default::default(), calls: Default::default() }
    }

    /// The calls of each writing method so far.
    pub fn calls(&self) -> BTreeMap<&'static str, Calls> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The methods of `WRITES` never called.
    pub fn unseen(&self) -> Vec<&'static str> {
        let calls = self.calls();
        WRITES.into_iter().filter(|m| !calls.contains_key(m)).collect()
    }

    /// The head (read first) and the history of `record`: history only grows, so the history
    /// read after the head holds at least the entries the head counts.
    async fn read(&self, record: &Watched) -> Seen {
        match record {
            Watched::Request(id) => {
                let request = self.inner.get(id).await.unwrap();
                let history = self.inner.history(id).await.unwrap();
                let (head, version) = request.map(|r| (r.chain, r.version)).unwrap_or_default();
                Seen { history, head, version }
            }
        }
    }

    async fn watch(&self, record: Watched) {
        self.watched.lock().await.entry(record).or_default();
    }

    /// Records a call of `method` (a name of `WRITES`) that answered `failed`, then checks.
    async fn after(&self, method: &'static str, failed: bool) {
        {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let count = calls.entry(method).or_default();
            count.all += 1;
            count.failed += usize::from(failed);
        }
        let mut watched = self.watched.lock().await;
        for (record, before) in watched.iter_mut() {
            let now = self.read(record).await;
            let what = format!("after {method} ({}), {record:?}", if failed { "failed" } else { "ok" });
            assert!(
                now.history.len() >= before.history.len(),
                "{what}: the history went from {} entries to {}:\nbefore {:#?}\nnow {:#?}",
                before.history.len(),
                now.history.len(),
                before.history,
                now.history
            );
            for (i, (was, is)) in before.history.iter().zip(&now.history).enumerate() {
                assert_eq!(was.hash, is.hash, "{what}: entry {i}'s hash changed");
                assert_eq!(was, is, "{what}: entry {i} was rewritten");
            }
            assert!(
                now.head.count >= before.head.count,
                "{what}: the head went back: {:?} then {:?}",
                before.head,
                now.head
            );
            if now.head.count == before.head.count {
                assert_eq!(now.head, before.head, "{what}: the head's hash changed with its count");
            }
            let sealed = now.history.iter().filter(|e| e.hash.is_some()).count() as u64;
            assert!(
                now.head.count <= sealed,
                "{what}: the head counts {} entries, {sealed} are sealed",
                now.head.count
            );
            assert!(now.version >= before.version, "{what}: the version went back");
            *before = now;
        }
    }

    /// `after`, taking the method's answer and handing it back.
    async fn checked<T>(&self, method: &'static str, answer: Result<T>) -> Result<T> {
        self.after(method, answer.is_err()).await;
        answer
    }
}

#[async_trait]
impl Store for AppendOnly {
    async fn create(
        &self,
        request: Request,
        history: HistoryEntry,
        tokens: Vec<TokenRecord>,
        messages: Vec<OutboxMessage>,
    ) -> Result<Created> {
        let id = request.id.clone();
        let answer = self.inner.create(request, history, tokens, messages).await;
        if let Ok(Created::New(_)) = &answer {
            self.watch(Watched::Request(id)).await;
        }
        self.checked("create", answer).await
    }
    async fn apply(&self, write: Write) -> Result<Request> {
        let answer = self.inner.apply(write).await;
        self.checked("apply", answer).await
    }
    async fn claim_message(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>> {
        let answer = self.inner.claim_message(request, id, claim, now).await;
        self.checked("claim_message", answer).await
    }
    async fn message_sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()> {
        let answer = self.inner.message_sent(message, claim, history).await;
        self.checked("message_sent", answer).await
    }
    async fn message_sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &ChainHead,
    ) -> Result<()> {
        let answer = self.inner.message_sent_chained(message, claim, entry, from).await;
        self.checked("message_sent_chained", answer).await
    }
    async fn message_failed(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<()> {
        let answer = self.inner.message_failed(message, claim).await;
        self.checked("message_failed", answer).await
    }
    async fn revive_message(&self, message: &OutboxMessage) -> Result<()> {
        let answer = self.inner.revive_message(message).await;
        self.checked("revive_message", answer).await
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>> {
        self.inner.get(id).await
    }
    async fn find_by_source(&self, source_key: &str) -> Result<Option<Request>> {
        self.inner.find_by_source(source_key).await
    }
    async fn history(&self, id: &RequestId) -> Result<Vec<HistoryEntry>> {
        self.inner.history(id).await
    }
    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        self.inner.token(hash).await
    }
    async fn due(&self, status: Status, now: Timestamp, limit: usize) -> Result<Vec<Request>> {
        self.inner.due(status, now, limit).await
    }
    async fn messages_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.inner.messages_due(now, limit).await
    }
    async fn messages_of(&self, request: &RequestId) -> Result<Vec<OutboxMessage>> {
        self.inner.messages_of(request).await
    }
    async fn message_counts(&self) -> Result<MessageCounts> {
        self.inner.message_counts().await
    }
    async fn touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, RequestId)>,
        limit: usize,
    ) -> Result<Vec<Request>> {
        self.inner.touched(since, until, after, limit).await
    }
}

#[async_trait]
impl SignIns for AppendOnly {
    async fn begin_sign_in(&self, state_hash: &str, pending: &PendingSignIn) -> Result<()> {
        let answer = self.inner.begin_sign_in(state_hash, pending).await;
        self.checked("begin_sign_in", answer).await
    }
    async fn take_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>> {
        let answer = self.inner.take_sign_in(state_hash).await;
        self.checked("take_sign_in", answer).await
    }
    async fn put_session(&self, id_hash: &str, session: &ApproverSession) -> Result<()> {
        let answer = self.inner.put_session(id_hash, session).await;
        self.checked("put_session", answer).await
    }
    async fn session(&self, id_hash: &str) -> Result<Option<ApproverSession>> {
        self.inner.session(id_hash).await
    }
}

const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn evidence_key() -> EvidenceKey {
    EvidenceKey::from_base64(TEST_KEY).unwrap()
}

fn claim_at(now: Timestamp) -> MessageClaim {
    MessageClaim::new(now, CLAIM_LEASE)
}

fn note_of(r: &Request, text: &str) -> OutboxMessage {
    OutboxMessage::new(&r.id, r.created_at, MessageKind::WorkNote(WorkNote { text: text.into(), close: None }))
}

/// The entry a delivered work note adds to its request's history (the store reads none of it).
fn written(r: &Request, text: &str) -> HistoryEntry {
    HistoryEntry::unchanged(Timestamp::now(), "servicenow", r.status, format!("work note written: {text}"))
}

fn write_of(request: Request, expected: u64, history: Vec<HistoryEntry>) -> Write {
    Write { history, ..Write::new(request, expected) }
}

fn stale<T: std::fmt::Debug>(answer: Result<T>) -> bool {
    matches!(answer, Err(Error::Stale))
}

/// Claims `message` now and delivers it with `entry` (a work note's) or none (a mail's).
async fn deliver(store: &Arc<dyn Store>, message: &OutboxMessage, entry: Option<HistoryEntry>) -> Result<()> {
    let now = Timestamp::now();
    let claim = claim_at(now);
    let held = store.claim_message(&message.request_id, &message.id, &claim, now).await?.expect("the message is due");
    store.message_sent(&held, &claim, entry).await
}

/// A request approved (after a losing write, and after a work note moved its chain under the
/// approval), provisioned while a note races the write, kept with a write that has no history,
/// made active with a lease and retired; its mail fails, dies, is revived and delivered; late
/// and stale deliveries and a reused approval link lose. A second request is denied, a third is
/// decided by racing approvers, a duplicate creation writes nothing; sign-ins and a session are
/// written. After every one of those writes, no history lost or changed an entry.
pub async fn history_is_only_ever_appended(store: Arc<dyn Store>) {
    let watch = Arc::new(AppendOnly::new(store));
    let sealed = SealingStore::wrap(watch.clone(), evidence_key());

    let a = sample_request(&sys_id());
    let (_, link) = token_for(&a);
    let ask = mail(&a, "ops@example.com");
    let notes: Vec<OutboxMessage> = (0..4).map(|i| note_of(&a, &format!("note {i}"))).collect();
    let owed = [vec![ask.clone()], notes.clone()].concat();
    let answer = sealed.create(a.clone(), created(&a), vec![link.clone()], owed).await.unwrap();
    assert!(matches!(answer, Created::New(_)));
    let first_head = sealed.get(&a.id).await.unwrap().unwrap().chain;
    // The same source again: the first request is answered and nothing is written.
    let twin = Request { id: RequestId::generate(), ..a.clone() };
    let answer = sealed.create(twin.clone(), created(&twin), vec![], vec![]).await.unwrap();
    assert!(matches!(answer, Created::Existing(ref r) if r.id == a.id), "{answer:?}");

    // The mail fails, then dies on its last attempt, is revived once, and goes out.
    let now = Timestamp::now();
    let claim = claim_at(now);
    let held = sealed.claim_message(&a.id, &ask.id, &claim, now).await.unwrap().unwrap();
    let failed = OutboxMessage { attempts: 1, last_error: Some("relay down".into()), ..held };
    sealed.message_failed(&failed, &claim).await.unwrap();
    let claim = claim_at(now);
    let held = sealed.claim_message(&a.id, &ask.id, &claim, now).await.unwrap().unwrap();
    let dead = OutboxMessage { attempts: 2, dead_at: Some(now), ..held };
    sealed.message_failed(&dead, &claim).await.unwrap();
    let revived = OutboxMessage { dead_at: None, attempts: 0, next_attempt_at: now, ..dead };
    sealed.revive_message(&revived).await.unwrap();
    assert!(stale(sealed.revive_message(&revived).await), "revived once");
    deliver(&sealed, &ask, None).await.unwrap();

    // A write at a version never stored loses.
    let mut wrong = a.clone();
    let h = wrong.transition(Status::Denied, "mallory@example.com", None, Timestamp::now()).unwrap();
    assert!(stale(sealed.apply(write_of(wrong, a.version + 3, vec![h])).await));

    // A work note delivered after the approver read the request: the approval is resealed on
    // the moved head (its first attempt loses), with the link used and a next-stage link.
    let read_before = sealed.get(&a.id).await.unwrap().unwrap();
    deliver(&sealed, &notes[0], Some(written(&a, "note 0"))).await.unwrap();
    let mut approved = read_before.clone();
    let now = Timestamp::now();
    let h = approved.transition(Status::Approved, "ops@example.com", Some("fine".into()), now).unwrap();
    let passed = HistoryEntry::unchanged(now, "gatehouse", Status::Approved, "stage passed".into());
    let next_link = TokenRecord { stage: 1, ..token_for(&a).1 };
    let w = Write {
        use_token: Some(link.hash.clone()),
        new_tokens: vec![next_link],
        messages: vec![mail(&a, "ada@example.com")],
        ..write_of(approved, read_before.version, vec![h, passed])
    };
    let approved = sealed.apply(w).await.unwrap();
    let applies_lost = watch.calls()["apply"].failed;
    assert!(applies_lost >= 2, "the stale write and the approval's first attempt lost: {:?}", watch.calls());

    // Provisioning starts while another note is delivered: both land, in either order.
    let mut building = approved.clone();
    let now = Timestamp::now();
    let h = building.transition(Status::Provisioning, "worker-1", None, now).unwrap();
    building.lease = Some(Lease { owner: "worker-1".into(), until: now + SignedDuration::from_mins(2) });
    let racing_write = {
        let (sealed, w) = (sealed.clone(), write_of(building, approved.version, vec![h]));
        tokio::spawn(async move { sealed.apply(w).await })
    };
    let racing_note = {
        let (sealed, m, r) = (sealed.clone(), notes[1].clone(), a.clone());
        tokio::spawn(async move { deliver(&sealed, &m, Some(written(&r, "note 1"))).await })
    };
    let building = racing_write.await.unwrap().unwrap();
    racing_note.await.unwrap().unwrap();

    // The lease renewed: a write without history.
    let mut renewed = building.clone();
    renewed.touch(Timestamp::now());
    renewed.lease = Some(Lease { owner: "worker-1".into(), until: Timestamp::now() + SignedDuration::from_mins(4) });
    let renewed = sealed.apply(write_of(renewed, building.version, vec![])).await.unwrap();

    // A delivery whose claim ran out and was taken over loses; the taker's lands.
    let early = Timestamp::now();
    let first = claim_at(early);
    let taken = sealed.claim_message(&a.id, &notes[2].id, &first, early).await.unwrap().unwrap();
    let after = first.until + SignedDuration::from_secs(1);
    let takeover = claim_at(after);
    sealed.claim_message(&a.id, &notes[2].id, &takeover, after).await.unwrap().unwrap();
    assert!(stale(sealed.message_sent(&taken, &first, Some(written(&a, "note 2 late"))).await));
    let late = OutboxMessage { attempts: 1, last_error: Some("late".into()), ..taken.clone() };
    assert!(stale(sealed.message_failed(&late, &first).await), "a late report loses too");
    sealed.message_sent(&taken, &takeover, Some(written(&a, "note 2"))).await.unwrap();

    // A delivery chained on a head that is no longer the request's loses, though its claim holds.
    let now = Timestamp::now();
    let claim = claim_at(now);
    let held = sealed.claim_message(&a.id, &notes[3].id, &claim, now).await.unwrap().unwrap();
    assert!(stale(sealed.message_sent_chained(&held, &claim, written(&a, "note 3 stale"), &first_head).await));
    sealed.message_sent(&held, &claim, Some(written(&a, "note 3"))).await.unwrap();

    // Active with a lease on its servers, owing the requester a mail.
    let mut active = renewed.clone();
    let now = Timestamp::now();
    let h = active.transition(Status::Active, "worker-1", None, now).unwrap();
    active.retirement = Some(Retirement {
        retire_at: now + SignedDuration::from_hours(1),
        length_secs: 3600,
        extensions: 0,
        reminders_sent: 0,
    });
    active.due_at = Some(now + SignedDuration::from_mins(30));
    let done = mail(&a, "ada@example.com");
    let w = Write { messages: vec![done.clone()], ..write_of(active, renewed.version, vec![h]) };
    let active = sealed.apply(w).await.unwrap();

    // The approval link used again, at the right version: the whole write loses.
    let mut reused = active.clone();
    reused.touch(Timestamp::now());
    let again = HistoryEntry::unchanged(Timestamp::now(), "ops@example.com", Status::Active, "approved again".into());
    let w = Write { use_token: Some(link.hash.clone()), ..write_of(reused, active.version, vec![again]) };
    assert!(stale(sealed.apply(w).await));

    // Retired when the lease ran out; the mail goes out after.
    let mut retired = active.clone();
    let h = retired.transition(Status::Retired, "sweeper", Some("lease ended".into()), Timestamp::now()).unwrap();
    sealed.apply(write_of(retired, active.version, vec![h])).await.unwrap();
    deliver(&sealed, &done, None).await.unwrap();

    // A second request is denied; approving it afterwards with the same link loses.
    let b = sample_request(&sys_id());
    let (_, link_b) = token_for(&b);
    sealed.create(b.clone(), created(&b), vec![link_b.clone()], vec![]).await.unwrap();
    let mut denied = b.clone();
    let h = denied.transition(Status::Denied, "ops@example.com", Some("no budget".into()), Timestamp::now()).unwrap();
    let w = Write { use_token: Some(link_b.hash.clone()), ..write_of(denied, b.version, vec![h]) };
    let denied = sealed.apply(w).await.unwrap();
    let mut late = b.clone();
    let h = late.transition(Status::Approved, "ops@example.com", None, Timestamp::now()).unwrap();
    let w = Write { use_token: Some(link_b.hash), ..write_of(late, denied.version, vec![h]) };
    assert!(stale(sealed.apply(w).await));

    // A third is decided by approvers racing at one version: one wins.
    let c = sample_request(&sys_id());
    let (_, link_c) = token_for(&c);
    sealed.create(c.clone(), created(&c), vec![link_c.clone()], vec![]).await.unwrap();
    let deciders: Vec<_> = (0..6)
        .map(|i| {
            let (sealed, c, hash) = (sealed.clone(), c.clone(), link_c.hash.clone());
            tokio::spawn(async move {
                let mut next = c.clone();
                let to = if i % 2 == 0 { Status::Approved } else { Status::Denied };
                let h = next.transition(to, &format!("approver-{i}@example.com"), None, Timestamp::now()).unwrap();
                sealed.apply(Write { use_token: Some(hash), ..write_of(next, c.version, vec![h]) }).await
            })
        })
        .collect();
    let mut wins = 0;
    for t in deciders {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Stale) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1);

    // Sign-ins and sessions are written (and a sign-in taken twice) beside the requests.
    let (state, pending) = (sys_id().repeat(2), pending_sign_in(Timestamp::now() + SignedDuration::from_mins(10)));
    sealed.begin_sign_in(&state, &pending).await.unwrap();
    assert!(sealed.take_sign_in(&state).await.unwrap().is_some());
    assert!(sealed.take_sign_in(&state).await.unwrap().is_none());
    let session = approver_session("ops@example.com", Timestamp::now() + SignedDuration::from_mins(15));
    sealed.put_session(&sys_id().repeat(2), &session).await.unwrap();

    assert_eq!(watch.unseen(), Vec::<&str>::new(), "every writing method was called: {:?}", watch.calls());
    let calls = watch.calls();
    assert!(calls["message_sent_chained"].failed >= 2, "the late and the stale chained deliveries lost: {calls:?}");
    assert!(calls["apply"].failed >= applies_lost + 7, "the reused links and the racing deciders lost: {calls:?}");
    // Every entry each write brought is there once, and nothing of a losing write: the creation,
    // four notes, the approval (two entries), provisioning, active and retired; the creation and
    // the denial; the creation and the winning decision.
    for (id, count) in [(&a.id, 10), (&b.id, 2), (&c.id, 2)] {
        let request = sealed.get(id).await.unwrap().unwrap();
        let history = sealed.history(id).await.unwrap();
        assert_eq!(
            verify(&evidence_key(), id.as_str(), &history, &request.chain),
            Ok(Verified { chained: count, unchained: 0 }),
            "{history:#?}"
        );
    }
    let notes_written = sealed.history(&a.id).await.unwrap().into_iter().filter_map(|e| e.note).collect::<Vec<_>>();
    for text in ["note 0", "note 1", "note 2", "note 3"] {
        assert_eq!(notes_written.iter().filter(|n| n.ends_with(&format!(": {text}"))).count(), 1, "{notes_written:?}");
    }
    assert!(!notes_written.iter().any(|n| n.contains("late") || n.contains("stale")), "{notes_written:?}");
}

/// The watch is no test that cannot fail: after an entry of a sealed history is edited in the
/// store by `edit` (given the request's id and the stored entry, it changes that entry's note),
/// the next write through `AppendOnly`, even one that touches no request, names that entry.
pub async fn the_watch_names_an_entry_edited_between_writes<F, Fut>(store: Arc<dyn Store>, edit: F)
where
    F: FnOnce(RequestId, HistoryEntry) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let watch = Arc::new(AppendOnly::new(store.clone()));
    let sealed = SealingStore::wrap(watch.clone(), evidence_key());
    let r = sample_request(&sys_id());
    sealed.create(r.clone(), created(&r), vec![], vec![]).await.unwrap();
    let mut next = r.clone();
    let h = next.transition(Status::Approved, "ops@example.com", Some("fine".into()), Timestamp::now()).unwrap();
    sealed.apply(write_of(next, r.version, vec![h])).await.unwrap();

    let history = store.history(&r.id).await.unwrap();
    edit(r.id.clone(), history[1].clone()).await;
    let (state, pending) = (sys_id().repeat(2), pending_sign_in(Timestamp::now() + SignedDuration::from_mins(10)));
    let next_write = tokio::spawn(async move { watch.begin_sign_in(&state, &pending).await }).await;
    let panic = next_write.expect_err("the edit went unnoticed").into_panic();
    let message = panic.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
    assert!(message.contains("after begin_sign_in (ok)"), "{message}");
    assert!(message.contains(&format!("Request({:?})", r.id)), "{message}");
    assert!(message.contains("entry 1 was rewritten") && message.contains("edited by hand"), "{message}");
}

/// Expands to the history case, with a fresh store from `$make`.
#[macro_export]
macro_rules! history_contract {
    ($make:expr) => {
        $crate::store_contract!(@cases $make; history_is_only_ever_appended);
    };
}
