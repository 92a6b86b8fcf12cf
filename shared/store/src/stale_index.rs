//! A store whose message index lags, for the contract: `messages_due` answers, besides what the
//! store answers now, messages it answered before that have since been sent or claimed (or show
//! them as they were). DynamoDB's global secondary indexes are eventually consistent ("All reads
//! from GSIs and streams are eventually consistent", Amazon DynamoDB Developer Guide, "DynamoDB
//! read consistency": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html),
//! and moto updates its indexes at once, so without this nothing would show what a sender does
//! with such an answer. Everything else goes to the wrapped store unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use domain::Result;
use domain::model::{HistoryEntry, MessageClaim, OutboxMessage, Request, RequestId, Status};
use domain::ports::{Created, MessageCounts, Store, Write};
use domain::signin::{ApproverSession, PendingSignIn, SignIns};
use domain::token::{TokenHash, TokenRecord};
use jiff::Timestamp;

pub struct StaleIndex {
    inner: Arc<dyn Store>,
    /// Every message an answer named, by id, as it was named: the index's lagging picture.
    seen: Mutex<BTreeMap<String, OutboxMessage>>,
    stale_answers: AtomicUsize,
}

impl StaleIndex {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        StaleIndex { inner, seen: Mutex::new(BTreeMap::new()), stale_answers: AtomicUsize::new(0) }
    }

    /// How many entries of its answers named a message the store no longer had as due.
    pub fn stale_answers(&self) -> usize {
        self.stale_answers.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Store for StaleIndex {
    /// Up to half of `limit` entries the store no longer answers (each once more after it left
    /// the store's answer, first, as they are the oldest), then the store's own answer.
    async fn messages_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
        let fresh = self.inner.messages_due(now, limit).await?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> =
            seen.keys().filter(|id| !fresh.iter().any(|m| &m.id == *id)).take(limit / 2).cloned().collect();
        let mut answer: Vec<OutboxMessage> = gone.iter().filter_map(|id| seen.remove(id)).collect();
        self.stale_answers.fetch_add(answer.len(), Ordering::Relaxed);
        for m in &fresh {
            seen.entry(m.id.clone()).or_insert_with(|| m.clone());
        }
        answer.extend(fresh);
        answer.truncate(limit);
        Ok(answer)
    }

    async fn create(
        &self,
        request: Request,
        history: HistoryEntry,
        tokens: Vec<TokenRecord>,
        messages: Vec<OutboxMessage>,
    ) -> Result<Created> {
        self.inner.create(request, history, tokens, messages).await
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
    async fn apply(&self, write: Write) -> Result<Request> {
        self.inner.apply(write).await
    }
    async fn due(&self, status: Status, now: Timestamp, limit: usize) -> Result<Vec<Request>> {
        self.inner.due(status, now, limit).await
    }
    async fn claim_message(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>> {
        self.inner.claim_message(request, id, claim, now).await
    }
    async fn message_sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()> {
        self.inner.message_sent(message, claim, history).await
    }
    async fn message_sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &domain::evidence::ChainHead,
    ) -> Result<()> {
        self.inner.message_sent_chained(message, claim, entry, from).await
    }
    async fn message_failed(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<()> {
        self.inner.message_failed(message, claim).await
    }
    async fn messages_of(&self, request: &RequestId) -> Result<Vec<OutboxMessage>> {
        self.inner.messages_of(request).await
    }
    async fn revive_message(&self, message: &OutboxMessage) -> Result<()> {
        self.inner.revive_message(message).await
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
impl SignIns for StaleIndex {
    async fn begin_sign_in(&self, state_hash: &str, pending: &PendingSignIn) -> Result<()> {
        self.inner.begin_sign_in(state_hash, pending).await
    }
    async fn take_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>> {
        self.inner.take_sign_in(state_hash).await
    }
    async fn put_session(&self, id_hash: &str, session: &ApproverSession) -> Result<()> {
        self.inner.put_session(id_hash, session).await
    }
    async fn session(&self, id_hash: &str) -> Result<Option<ApproverSession>> {
        self.inner.session(id_hash).await
    }
}
