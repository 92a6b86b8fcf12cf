//! The store contract on owed messages: a claim on the record before a send, removal and updates
//! conditioned on that claim, claims that run out, dead letters and their revival, the size of the
//! largest write, and the outbox sender itself over a lagging index: each mail goes out once.
//!
//! A declared child of `contract` (its cases are listed in `store_contract!`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::Error;
use domain::config::MAX_APPROVERS;
use domain::mail::MailNotice;
use domain::model::{HistoryEntry, MessageClaim, OutboxMessage, Request, Status};
use domain::ports::{Mailer, MessageCounts, SentMail, Store};
use domain::usecases::outbox::{CLAIM_LEASE, MessageKey, OutboxSender};
use jiff::{SignedDuration, Timestamp};

use super::{created, mail, sample_request, sys_id, token_for};
use crate::stale_index::StaleIndex;

fn claim_at(now: Timestamp) -> MessageClaim {
    MessageClaim::new(now, CLAIM_LEASE)
}

async fn owed(store: &Arc<dyn Store>, r: &Request, messages: Vec<OutboxMessage>) {
    store.create(r.clone(), created(r), vec![], messages).await.unwrap();
}

fn only<'a>(list: Vec<OutboxMessage>, of: impl IntoIterator<Item = &'a OutboxMessage>) -> Vec<OutboxMessage> {
    let ids: Vec<&str> = of.into_iter().map(|m| m.id.as_str()).collect();
    list.into_iter().filter(|m| ids.contains(&m.id.as_str())).collect()
}

fn by_id(mut list: Vec<OutboxMessage>) -> Vec<OutboxMessage> {
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list
}

/// A message is due until a sender claims it; a failed attempt waits for its next attempt; a sent
/// message is gone, and its write-back's history entry is written with its removal.
pub async fn owed_messages_wait_until_sent(store: Arc<dyn Store>) {
    let r = sample_request(&sys_id());
    let m = mail(&r, "ada@example.com");
    owed(&store, &r, vec![m.clone()]).await;
    let now = Timestamp::now();
    assert_eq!(only(store.messages_due(now, 1000).await.unwrap(), [&m]), vec![m.clone()]);

    let claim = claim_at(now);
    let claimed = store.claim_message(&r.id, &m.id, &claim, now).await.unwrap();
    assert_eq!(claimed.as_ref(), Some(&m), "the claim answers the message as stored");
    assert!(only(store.messages_due(now, 1000).await.unwrap(), [&m]).is_empty(), "not due while held");

    let later = now + SignedDuration::from_mins(1);
    let failed =
        OutboxMessage { attempts: 1, last_error: Some("relay down".into()), next_attempt_at: later, ..m.clone() };
    store.message_failed(&failed, &claim).await.unwrap();
    assert!(only(store.messages_due(now, 1000).await.unwrap(), [&m]).is_empty());
    assert_eq!(store.claim_message(&r.id, &m.id, &claim_at(now), now).await.unwrap(), None, "not before its time");
    assert_eq!(only(store.messages_due(later, 1000).await.unwrap(), [&m]), vec![failed.clone()]);

    let claim = claim_at(later);
    let retried = store.claim_message(&r.id, &m.id, &claim, later).await.unwrap().unwrap();
    assert_eq!(retried, failed);
    let note = HistoryEntry {
        at: later,
        actor: "gatehouse".into(),
        from: None,
        to: Status::PendingApproval,
        note: Some("sent".into()),
        proof: None,
        hash: None,
    };
    store.message_sent(&retried, &claim, Some(note)).await.unwrap();
    assert!(only(store.messages_due(Timestamp::MAX, 1000).await.unwrap(), [&m]).is_empty());
    assert!(store.messages_of(&r.id).await.unwrap().is_empty());
    assert_eq!(store.history(&r.id).await.unwrap().len(), 2);
    assert_eq!(store.claim_message(&r.id, &m.id, &claim_at(later), later).await.unwrap(), None, "sent is gone");
}

/// Racing claims have one winner; a claim that ran out may be taken over, and then its first
/// holder can neither remove nor update the message.
pub async fn one_sender_at_a_time_holds_a_message(store: Arc<dyn Store>) {
    let r = sample_request(&sys_id());
    let m = mail(&r, "ada@example.com");
    owed(&store, &r, vec![m.clone()]).await;
    let now = Timestamp::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, r, m) = (store.clone(), r.clone(), m.clone());
            tokio::spawn(async move {
                let claim = claim_at(now);
                store.claim_message(&r.id, &m.id, &claim, now).await.map(|won| won.map(|_| claim))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap().unwrap());
    }
    assert_eq!(winners.len(), 1, "one claim wins");
    let first = winners.pop().unwrap();
    let still_held = first.until - SignedDuration::from_secs(1);
    assert_eq!(store.claim_message(&r.id, &m.id, &claim_at(still_held), still_held).await.unwrap(), None);

    let after = first.until + SignedDuration::from_secs(1);
    let takeover = claim_at(after);
    assert_eq!(store.claim_message(&r.id, &m.id, &takeover, after).await.unwrap().as_ref(), Some(&m));
    assert!(matches!(store.message_sent(&m, &first, None).await, Err(Error::Stale)));
    let failed = OutboxMessage { attempts: 1, last_error: Some("late".into()), ..m.clone() };
    assert!(matches!(store.message_failed(&failed, &first).await, Err(Error::Stale)));
    assert_eq!(store.messages_of(&r.id).await.unwrap(), vec![m.clone()], "the lost claim changed nothing");
    store.message_sent(&m, &takeover, None).await.unwrap();
    assert!(store.messages_of(&r.id).await.unwrap().is_empty());
}

/// After its last attempt a message is dead: kept and listed, counted, never due nor claimed,
/// until it is revived (once).
pub async fn a_dead_message_is_kept_until_revived(store: Arc<dyn Store>) {
    let r = sample_request(&sys_id());
    let (doomed, other) = (mail(&r, "gone@example.com"), mail(&r, "ada@example.com"));
    owed(&store, &r, vec![doomed.clone(), other.clone()]).await;
    let now = Timestamp::now();
    let claim = claim_at(now);
    store.claim_message(&r.id, &doomed.id, &claim, now).await.unwrap().unwrap();
    let dead = OutboxMessage {
        attempts: 3,
        last_error: Some("mail outbox: cannot write".into()),
        dead_at: Some(now),
        ..doomed.clone()
    };
    store.message_failed(&dead, &claim).await.unwrap();
    assert_eq!(only(store.messages_due(Timestamp::MAX, 1000).await.unwrap(), [&doomed, &other]), vec![other.clone()]);
    let much_later = now + SignedDuration::from_hours(24);
    assert_eq!(store.claim_message(&r.id, &doomed.id, &claim_at(much_later), much_later).await.unwrap(), None);
    assert_eq!(by_id(store.messages_of(&r.id).await.unwrap()), by_id(vec![dead.clone(), other.clone()]));
    assert_eq!(store.message_counts().await.unwrap(), MessageCounts { pending: 1, dead: 1 });

    assert!(matches!(store.revive_message(&other).await, Err(Error::Stale)), "only a dead message is revived");
    let revived = OutboxMessage { dead_at: None, attempts: 0, next_attempt_at: much_later, ..dead.clone() };
    store.revive_message(&revived).await.unwrap();
    assert!(matches!(store.revive_message(&revived).await, Err(Error::Stale)), "revived once");
    assert_eq!(store.message_counts().await.unwrap(), MessageCounts { pending: 2, dead: 0 });
    assert!(only(store.messages_due(now, 1000).await.unwrap(), [&doomed]).is_empty(), "due at its new time");
    assert_eq!(only(store.messages_due(much_later, 1000).await.unwrap(), [&doomed]), vec![revived.clone()]);
    let claimed = store.claim_message(&r.id, &doomed.id, &claim_at(much_later), much_later).await.unwrap();
    assert_eq!(claimed, Some(revived));
}

/// Intake's write for a request with the most approvers a configuration allows (a token and a
/// mail each, the requester's mail and a work note) fits one write; one approver more is refused
/// before anything is written.
pub async fn the_largest_write_fits_and_a_larger_one_is_refused(store: Arc<dyn Store>) {
    for (approvers, fits) in [(MAX_APPROVERS, true), (MAX_APPROVERS + 1, false)] {
        let r = sample_request(&sys_id());
        let tokens = (0..approvers).map(|_| token_for(&r).1).collect();
        let messages = (0..approvers + 2).map(|i| mail(&r, &format!("approver-{i}@example.com"))).collect();
        let result = store.create(r.clone(), created(&r), tokens, messages).await;
        assert_eq!(result.is_ok(), fits, "{approvers} approvers: {:?}", result.err());
        let written = store.get(&r.id).await.unwrap().is_some();
        assert_eq!(written, fits);
        assert_eq!(store.messages_of(&r.id).await.unwrap().len(), if fits { approvers + 2 } else { 0 });
    }
}

/// Counts each mail it is given, by recipient.
#[derive(Default)]
struct CountingMailer {
    sent: Mutex<BTreeMap<String, usize>>,
}

impl CountingMailer {
    fn counts(&self) -> BTreeMap<String, usize> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Mailer for CountingMailer {
    async fn send(&self, notice: &MailNotice, _request: &Request) -> domain::Result<SentMail> {
        *self.sent.lock().unwrap().entry(notice.to.clone()).or_default() += 1;
        // Let the other sender run between a claim and its removal.
        tokio::task::yield_now().await;
        Ok(SentMail { subject: format!("a mail to {}", notice.to) })
    }
}

/// Owes `count` mails, each to its own address, over requests of `per_request` mails.
async fn owe_mails(store: &Arc<dyn Store>, count: usize, per_request: usize) -> Vec<OutboxMessage> {
    let mut all = Vec::new();
    for chunk in 0..count.div_ceil(per_request) {
        let r = sample_request(&sys_id());
        let n = per_request.min(count - chunk * per_request);
        let messages: Vec<_> = (0..n).map(|i| mail(&r, &format!("owed-{chunk}-{i}@example.com"))).collect();
        owed(store, &r, messages.clone()).await;
        all.extend(messages);
    }
    all
}

/// DESIGN.md's exactly-once delivery: two senders at once over 200 owed mails, reading a message
/// index that answers stale (messages already sent or claimed by the other): each mail goes out
/// exactly once.
pub async fn two_senders_over_a_stale_index_send_each_mail_once(store: Arc<dyn Store>) {
    const MAILS: usize = 200;
    owe_mails(&store, MAILS, 50).await;
    let stale = Arc::new(StaleIndex::new(store.clone()));
    let mailer = Arc::new(CountingMailer::default());
    let sender = OutboxSender { store: stale.clone(), max_attempts: 20 };
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (sender, mailer) = (sender.clone(), mailer.clone());
            tokio::spawn(async move {
                // A sweep stops at a round that claims nothing; the schedule runs the next.
                for _ in 0..50 {
                    sender.deliver_owed(mailer.as_ref(), None).await.unwrap();
                    if mailer.counts().len() == MAILS {
                        break;
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let counts = mailer.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "{} mails sent more than once, such as {:?}", twice.len(), &twice[..twice.len().min(3)]);
    assert_eq!(counts.len(), MAILS, "every mail was sent");
    assert!(stale.stale_answers() > 0, "the index never answered stale, so this proved nothing");
    assert!(store.messages_due(Timestamp::MAX, 1000).await.unwrap().is_empty());
    assert_eq!(store.message_counts().await.unwrap(), MessageCounts::default());
}

/// A sweep whose time is up claims nothing new: what it leaves stays owed and unclaimed, so the
/// next sweep sends it at once, once.
pub async fn a_sweep_past_its_deadline_claims_nothing_new(store: Arc<dyn Store>) {
    owe_mails(&store, 3, 3).await;
    let mailer = CountingMailer::default();
    let sender = OutboxSender { store: store.clone(), max_attempts: 20 };
    let late = sender.deliver_owed_before(&mailer, None, Some(std::time::Instant::now())).await.unwrap();
    assert_eq!((late.sent, mailer.counts().len()), (0, 0));
    assert_eq!(store.message_counts().await.unwrap(), MessageCounts { pending: 3, dead: 0 });
    let next = sender.deliver_owed(&mailer, None).await.unwrap();
    assert_eq!(next.sent, 3, "nothing was left claimed");
    assert!(mailer.counts().values().all(|n| *n == 1));
}

/// A stream-triggered sender delivers the messages of its batch and no other; two overlapping
/// batches at once send their common message once; a key of a message already gone is skipped.
pub async fn a_stream_batch_delivers_only_its_messages(store: Arc<dyn Store>) {
    let messages = owe_mails(&store, 6, 6).await;
    let key = |i: usize| MessageKey::of(&messages[i]);
    let gone = MessageKey { id: uuid::Uuid::now_v7().to_string(), ..key(0) };
    let batches = [vec![key(0), key(1), key(2), gone], vec![key(2), key(3), key(4)]];
    let mailer = Arc::new(CountingMailer::default());
    let sender = OutboxSender { store: store.clone(), max_attempts: 20 };
    let runs: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let (sender, mailer) = (sender.clone(), mailer.clone());
            tokio::spawn(async move { sender.deliver_messages(&batch, mailer.as_ref(), None).await.unwrap() })
        })
        .collect();
    let mut sent = 0;
    for run in runs {
        sent += run.await.unwrap().sent;
    }
    let expected: BTreeMap<String, usize> = (0..5).map(|i| (format!("owed-0-{i}@example.com"), 1)).collect();
    assert_eq!(mailer.counts(), expected);
    assert_eq!(sent, 5);
    assert_eq!(store.messages_of(&messages[0].request_id).await.unwrap(), vec![messages[5].clone()]);
}

/// A failed attempt is retried after its backoff; the last attempt allowed leaves the message
/// dead, with the error in our own words, and a sender does not try it again.
pub async fn a_sender_gives_up_after_the_last_attempt_allowed(store: Arc<dyn Store>) {
    struct Refusing;
    #[async_trait]
    impl Mailer for Refusing {
        async fn send(&self, _: &MailNotice, _: &Request) -> domain::Result<SentMail> {
            Err(Error::upstream("mail relay", "refused the recipient"))
        }
    }
    let messages = owe_mails(&store, 2, 2).await;
    let (retried, doomed) = (&messages[0], &messages[1]);
    let before = Timestamp::now();
    let patient = OutboxSender { store: store.clone(), max_attempts: 2 };
    let first = patient.deliver_messages(&[MessageKey::of(retried)], &Refusing, None).await.unwrap();
    assert_eq!((first.failed, first.dead), (1, 0));
    let last_chance = OutboxSender { store: store.clone(), max_attempts: 1 };
    let second = last_chance.deliver_messages(&[MessageKey::of(doomed)], &Refusing, None).await.unwrap();
    assert_eq!((second.failed, second.dead), (0, 1));

    let listed = by_id(store.messages_of(&retried.request_id).await.unwrap());
    assert_eq!(listed.len(), 2);
    for m in &listed {
        assert_eq!(m.attempts, 1);
        assert_eq!(m.last_error.as_deref(), Some("mail relay: refused the recipient"));
    }
    assert!(listed[0].dead_at.is_none() && listed[0].next_attempt_at > before, "retried after its backoff");
    assert!(listed[1].dead_at.is_some(), "dead after its last attempt");
    let again = last_chance.deliver_owed(&Refusing, None).await.unwrap();
    assert_eq!(again.sent + again.failed + again.dead, 0, "nothing is due: one waits, one is dead");
    assert_eq!(store.message_counts().await.unwrap(), MessageCounts { pending: 1, dead: 1 });
}
