//! The store contract: what every `Store` must do, written once. Each adapter's tests run it with
//! `store_contract!(async { Arc::new(MyStore::new()) as Arc<dyn Store> })`.

use std::sync::Arc;

use domain::Error;
use domain::mail::{MailNotice, MailTemplate};
use domain::model::{Chosen, HistoryEntry, OutboxMessage, Request, RequestId, Requester, Source, Status};
use domain::ports::{Created, Store, Write};
use domain::signin::{ApproverSession, PendingSignIn, VerifiedIdentity};
use domain::token::{ApprovalToken, TokenRecord};
use jiff::{SignedDuration, Timestamp};

/// The cases on owed messages.
#[path = "contract_outbox.rs"]
mod outbox;
pub use outbox::*;

/// The cases on the history chain (audit evidence).
#[path = "contract_chain.rs"]
mod chain;
pub use chain::*;

/// The cases on approval stages.
#[path = "contract_stages.rs"]
mod stages;
pub use stages::*;

/// The cases on the requests touched in a period (the audit export).
#[path = "contract_export.rs"]
mod export;
pub use export::*;

/// The cases on change records' history and their walk over a period (audit evidence).
#[path = "contract_changes.rs"]
mod changes;
pub use changes::*;

/// The cases on change records: conditional writes and their due list.
#[path = "contract_change_records.rs"]
mod change_records;
pub use change_records::*;

/// The case on history only ever appended to, through every write (audit evidence).
#[path = "contract_history.rs"]
mod history;
pub use history::*;

pub fn sample_request(sys_id: &str) -> Request {
    let now = Timestamp::now();
    Request {
        id: RequestId::generate(),
        status: Status::PendingApproval,
        version: 1,
        source: Source { system: "servicenow".into(), number: "RITM0010001".into(), sys_id: sys_id.into() },
        requester: Requester {
            email: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            user_name: Some("ada".into()),
        },
        opened_by: None,
        cloud: "demo".into(),
        image: Chosen { id: "img-1".into(), name: "Ubuntu".into() },
        flavor: Chosen { id: "2".into(), name: "m1.small".into() },
        network: Chosen { id: "net-1".into(), name: "dev-net".into() },
        boot_volume_gb: None,
        server_name: "web-01".into(),
        count: 1,
        justification: Some("Load test".into()),
        metadata: Default::default(),
        approvers: vec!["ops@example.com".into()],
        created_at: now,
        updated_at: now,
        expires_at: now + SignedDuration::from_hours(48),
        due_at: Some(now + SignedDuration::from_hours(24)),
        reminded: false,
        deadline: None,
        lease: None,
        servers: vec![],
        error: None,
        decision_comment: None,
        decided_by: None,
        decision_proof: None,
        intake_digest: "digest".into(),
        retirement: None,
        approval: None,
        chain: Default::default(),
    }
}

/// The first history entry of a request, as intake writes it.
pub fn created(r: &Request) -> HistoryEntry {
    HistoryEntry {
        at: r.created_at,
        actor: "servicenow".into(),
        from: None,
        to: Status::PendingApproval,
        note: None,
        proof: None,
        hash: None,
    }
}

fn mail(r: &Request, to: &str) -> OutboxMessage {
    OutboxMessage::mail(&r.id, r.created_at, MailNotice { to: to.into(), template: MailTemplate::Received })
}

/// A new approval link for ops@example.com on `r` (stage 0): its token and what is stored of it.
pub fn token_for(r: &Request) -> (ApprovalToken, TokenRecord) {
    let t = ApprovalToken::generate();
    let rec = link_of(r, &t);
    (t, rec)
}

/// What is stored of ops@example.com's approval link `token` on `r` (stage 0).
pub fn link_of(r: &Request, token: &ApprovalToken) -> TokenRecord {
    TokenRecord {
        hash: token.hash(),
        request_id: r.id.clone(),
        approver: "ops@example.com".into(),
        expires_at: r.expires_at,
        used_at: None,
        stage: 0,
        on_behalf_of: None,
    }
}

fn sys_id() -> String {
    domain::token::hex(&uuid::Uuid::new_v4().into_bytes())
}

fn approve(mut r: Request) -> (Write, Request) {
    let expected = r.version;
    let h = r.transition(Status::Approved, "ops@example.com", Some("ok".into()), Timestamp::now()).unwrap();
    let w = Write {
        request: r.clone(),
        expected_version: expected,
        history: vec![h],
        use_token: None,
        new_tokens: vec![],
        messages: vec![],
    };
    (w, r)
}

pub async fn create_and_read_back(store: Arc<dyn Store>) {
    let r = sample_request(&sys_id());
    let (_, tok) = token_for(&r);
    let out = store.create(r.clone(), created(&r), vec![tok.clone()], vec![mail(&r, "ada@example.com")]).await.unwrap();
    assert!(matches!(out, Created::New(_)));
    assert_eq!(store.get(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.find_by_source(&r.source_key()).await.unwrap().map(|x| x.id), Some(r.id.clone()));
    assert_eq!(store.history(&r.id).await.unwrap(), vec![created(&r)]);
    assert_eq!(store.token(&tok.hash).await.unwrap(), Some(tok));
    assert_eq!(store.get(&RequestId::generate()).await.unwrap(), None);
    assert_eq!(store.find_by_source("servicenow#nope").await.unwrap(), None);

    // Read whole after a write of two entries and another message: what the three reads give.
    let mut next = r.clone();
    let step = next.transition(Status::Approved, "ops@example.com", None, Timestamp::now()).unwrap();
    let note = HistoryEntry::unchanged(Timestamp::now(), "servicenow", Status::Approved, "work note written".into());
    let write =
        Write { history: vec![step, note], messages: vec![mail(&r, "ops@example.com")], ..Write::new(next, r.version) };
    let written = store.apply(write).await.unwrap();
    let whole = store.read_request(&r.id).await.unwrap().expect("the request");
    assert_eq!(whole.request, written);
    assert_eq!(whole.messages, store.messages_of(&r.id).await.unwrap());
    assert_eq!(whole.messages.len(), 2);
    assert_eq!(whole.history, store.history(&r.id).await.unwrap());
    assert_eq!(
        whole.history.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(),
        ["servicenow", "ops@example.com", "servicenow"]
    );
    assert!(store.read_request(&RequestId::generate()).await.unwrap().is_none());

    // A page read at once: one answer per id asked, in the order asked, a missing one as None.
    let other = sample_request(&sys_id());
    store.create(other.clone(), created(&other), vec![], vec![]).await.unwrap();
    let page = store.read_requests(vec![other.id.clone(), RequestId::generate(), r.id.clone()]).await.unwrap();
    let found: Vec<_> = page.iter().map(|read| read.as_ref().map(|read| read.request.id.clone())).collect();
    assert_eq!(found, [Some(other.id.clone()), None, Some(r.id.clone())]);
    let last = page[2].as_ref().unwrap();
    assert_eq!((&last.request, &last.messages, &last.history), (&whole.request, &whole.messages, &whole.history));
    assert!(store.read_requests(vec![]).await.unwrap().is_empty());
}

pub async fn the_source_key_is_unique(store: Arc<dyn Store>) {
    let key = sys_id();
    let first = sample_request(&key);
    store.create(first.clone(), created(&first), vec![], vec![mail(&first, "a@example.com")]).await.unwrap();
    let second = sample_request(&key);
    let (_, tok) = token_for(&second);
    match store
        .create(second.clone(), created(&second), vec![tok.clone()], vec![mail(&second, "b@example.com")])
        .await
        .unwrap()
    {
        Created::Existing(existing) => assert_eq!(existing.id, first.id),
        Created::New(_) => panic!("a second request was created for the same source"),
    }
    assert_eq!(store.get(&second.id).await.unwrap(), None, "nothing of the second request is written");
    assert_eq!(store.token(&tok.hash).await.unwrap(), None);
    let owed: Vec<_> = store
        .messages_due(Timestamp::now(), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.request_id == second.id)
        .collect();
    assert!(owed.is_empty());
}

pub async fn a_write_needs_the_version_it_read(store: Arc<dyn Store>) {
    let r = sample_request(&sys_id());
    store.create(r.clone(), created(&r), vec![], vec![]).await.unwrap();
    let (mut w, approved) = approve(r.clone());
    w.messages = vec![mail(&r, "ada@example.com")];
    store.apply(w.clone()).await.unwrap();
    assert_eq!(store.get(&r.id).await.unwrap().unwrap(), approved);
    assert_eq!(store.history(&r.id).await.unwrap().len(), 2);
    // The same write again: its expected version is gone, nothing changes, nothing more is owed.
    let before = store.messages_due(Timestamp::now(), 1000).await.unwrap().len();
    assert!(matches!(store.apply(w).await, Err(Error::Stale)));
    assert_eq!(store.history(&r.id).await.unwrap().len(), 2);
    assert_eq!(store.messages_due(Timestamp::now(), 1000).await.unwrap().len(), before);
}

pub async fn a_token_is_used_once(store: Arc<dyn Store>) {
    let r = sample_request(&sys_id());
    let (_, tok) = token_for(&r);
    store.create(r.clone(), created(&r), vec![tok.clone()], vec![]).await.unwrap();
    let (mut w, approved) = approve(r.clone());
    w.use_token = Some(tok.hash.clone());
    store.apply(w).await.unwrap();
    assert!(store.token(&tok.hash).await.unwrap().unwrap().used_at.is_some());
    // A later write at the right version that tries to use the token again loses, as a whole.
    let mut again = approved.clone();
    again.touch(Timestamp::now());
    let w2 = Write {
        request: again,
        expected_version: approved.version,
        history: vec![],
        use_token: Some(tok.hash),
        new_tokens: vec![],
        messages: vec![],
    };
    assert!(matches!(store.apply(w2).await, Err(Error::Stale)));
    assert_eq!(store.get(&r.id).await.unwrap().unwrap().version, approved.version);
}

pub async fn racing_writes_have_one_winner(store: Arc<dyn Store>) {
    let r = sample_request(&sys_id());
    let (_, tok) = token_for(&r);
    store.create(r.clone(), created(&r), vec![tok.clone()], vec![]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let r = r.clone();
        let hash = tok.hash.clone();
        tasks.push(tokio::spawn(async move {
            let mut next = r.clone();
            let to = if i % 2 == 0 { Status::Approved } else { Status::Denied };
            let h = next.transition(to, &format!("approver-{i}"), None, Timestamp::now()).unwrap();
            let w = Write {
                request: next,
                expected_version: r.version,
                history: vec![h],
                use_token: Some(hash),
                new_tokens: vec![],
                messages: vec![],
            };
            store.apply(w).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Stale) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.history(&r.id).await.unwrap().len(), 2, "one creation and one decision");
}

pub async fn due_requests_come_by_status_and_time(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let mut early = sample_request(&sys_id());
    early.due_at = Some(now - SignedDuration::from_mins(10));
    let mut later = sample_request(&sys_id());
    later.due_at = Some(now - SignedDuration::from_mins(5));
    let mut future = sample_request(&sys_id());
    future.due_at = Some(now + SignedDuration::from_mins(5));
    for r in [&later, &early, &future] {
        store.create(r.clone(), created(r), vec![], vec![]).await.unwrap();
    }
    let due: Vec<_> = store.due(Status::PendingApproval, now, 1000).await.unwrap().into_iter().map(|r| r.id).collect();
    let pos = |id: &RequestId| due.iter().position(|d| d == id);
    assert!(pos(&early.id).unwrap() < pos(&later.id).unwrap());
    assert_eq!(pos(&future.id), None);
    assert!(store.due(Status::Provisioning, now, 1000).await.unwrap().iter().all(|r| r.id != early.id));

    // An active request with a lease comes due for its reminder or its end, lease and all.
    let mut leased = sample_request(&sys_id());
    leased.status = Status::Active;
    leased.due_at = Some(now - SignedDuration::from_mins(1));
    leased.retirement = Some(domain::model::Retirement {
        retire_at: now + SignedDuration::from_hours(1),
        length_secs: 7200,
        extensions: 1,
        reminders_sent: 1,
    });
    store.create(leased.clone(), created(&leased), vec![], vec![]).await.unwrap();
    let active = store.due(Status::Active, now, 1000).await.unwrap();
    let found = active.iter().find(|r| r.id == leased.id).expect("the due active request is found");
    assert_eq!(found.retirement, leased.retirement);
    assert!(store.due(Status::PendingApproval, now, 1000).await.unwrap().iter().all(|r| r.id != leased.id));
}

/// A SHA-256-sized hex key, fresh per call.
fn key() -> String {
    sys_id().repeat(2)
}

fn pending_sign_in(expires_at: Timestamp) -> PendingSignIn {
    PendingSignIn {
        nonce: sys_id(),
        pkce_verifier: key(),
        purpose: domain::signin::SignInPurpose::Approval { link: ApprovalToken::generate().hash() },
        expires_at,
    }
}

fn approver_session(email: &str, expires_at: Timestamp) -> ApproverSession {
    ApproverSession {
        identity: VerifiedIdentity {
            issuer: "https://id.example.com/realms/staff".into(),
            subject: sys_id(),
            email: email.into(),
            amr: vec!["pwd".into(), "otp".into()],
        },
        expires_at,
    }
}

fn in_minutes(minutes: i64) -> Timestamp {
    Timestamp::now() + SignedDuration::from_mins(minutes)
}

/// A sign-in comes back once, whole; then (and for a key never begun) there is nothing.
pub async fn a_sign_in_is_taken_once(store: Arc<dyn Store>) {
    let (state, pending) = (key(), pending_sign_in(in_minutes(10)));
    store.begin_sign_in(&state, &pending).await.unwrap();
    assert!(store.take_sign_in(&state).await.unwrap() == Some(pending), "taken whole");
    assert!(store.take_sign_in(&state).await.unwrap().is_none(), "a replayed callback finds nothing");
    assert!(store.take_sign_in(&key()).await.unwrap().is_none());
}

/// Callbacks racing with the same state: exactly one gets the sign-in.
pub async fn racing_callbacks_take_a_sign_in_once(store: Arc<dyn Store>) {
    let (state, pending) = (key(), pending_sign_in(in_minutes(10)));
    store.begin_sign_in(&state, &pending).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, state) = (store.clone(), state.clone());
            tokio::spawn(async move { store.take_sign_in(&state).await })
        })
        .collect();
    let mut taken = Vec::new();
    for t in tasks {
        if let Some(p) = t.await.unwrap().unwrap() {
            taken.push(p);
        }
    }
    assert_eq!(taken.len(), 1, "taken by exactly one callback");
    assert!(taken[0] == pending);
}

/// A second sign-in under a key that exists is a conflict and leaves the first as it was.
pub async fn a_sign_in_is_begun_once(store: Arc<dyn Store>) {
    let state = key();
    let first = pending_sign_in(in_minutes(10));
    store.begin_sign_in(&state, &first).await.unwrap();
    let second = pending_sign_in(in_minutes(20));
    assert!(matches!(store.begin_sign_in(&state, &second).await, Err(Error::Conflict(_))));
    assert!(matches!(store.begin_sign_in(&state, &first).await, Err(Error::Conflict(_))), "even the same one");
    assert!(store.take_sign_in(&state).await.unwrap() == Some(first), "the first is kept");
}

/// A session reads back as often as asked, is written once, and lives apart from sign-ins.
pub async fn sessions_are_kept_and_written_once(store: Arc<dyn Store>) {
    let id = key();
    let session = approver_session("ops@example.com", in_minutes(15));
    assert_eq!(store.session(&id).await.unwrap(), None);
    store.put_session(&id, &session).await.unwrap();
    assert_eq!(store.session(&id).await.unwrap(), Some(session.clone()));
    assert_eq!(store.session(&id).await.unwrap(), Some(session.clone()), "reading does not consume it");
    let other = approver_session("mallory@example.com", in_minutes(60));
    assert!(matches!(store.put_session(&id, &other).await, Err(Error::Conflict(_))));
    assert_eq!(store.session(&id).await.unwrap(), Some(session.clone()), "the first is kept");
    assert_eq!(store.session(&key()).await.unwrap(), None);
    // Sign-ins and sessions do not share keys: the same key is free in the other kind.
    assert!(store.take_sign_in(&id).await.unwrap().is_none());
    let pending = pending_sign_in(in_minutes(10));
    store.begin_sign_in(&id, &pending).await.unwrap();
    assert_eq!(store.session(&id).await.unwrap(), Some(session));
    assert!(store.take_sign_in(&id).await.unwrap() == Some(pending));
}

/// The store hands back expired records as they are; the caller checks `expires_at`.
pub async fn expiry_is_the_callers_to_check(store: Arc<dyn Store>) {
    let (state, pending) = (key(), pending_sign_in(in_minutes(-5)));
    store.begin_sign_in(&state, &pending).await.unwrap();
    assert!(store.take_sign_in(&state).await.unwrap() == Some(pending));
    let (id, session) = (key(), approver_session("ops@example.com", in_minutes(-5)));
    store.put_session(&id, &session).await.unwrap();
    assert_eq!(store.session(&id).await.unwrap(), Some(session));
}

/// Expands to one `#[tokio::test]` per contract case, each with a fresh store from `$make`.
#[macro_export]
macro_rules! store_contract {
    ($make:expr) => {
        $crate::store_contract!(@cases $make;
            create_and_read_back, the_source_key_is_unique, a_write_needs_the_version_it_read,
            a_token_is_used_once, racing_writes_have_one_winner, due_requests_come_by_status_and_time,
            owed_messages_wait_until_sent, a_sign_in_is_taken_once, racing_callbacks_take_a_sign_in_once,
            a_sign_in_is_begun_once, sessions_are_kept_and_written_once, expiry_is_the_callers_to_check,
            one_sender_at_a_time_holds_a_message, a_dead_message_is_kept_until_revived,
            the_largest_write_fits_and_a_larger_one_is_refused, two_senders_over_a_stale_index_send_each_mail_once,
            a_stream_batch_delivers_only_its_messages, a_sender_gives_up_after_the_last_attempt_allowed,
            a_sweep_past_its_deadline_claims_nothing_new, stage_progress_and_stage_links_read_back,
            racing_approvers_pass_a_stage_once);
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
