//! Sealing in one place for every store: a `Store` that seals the history entries of each write
//! onto its request's chain before the store under it writes them.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

use super::{ChainHead, EvidenceKey, seal};
use crate::error::{Error, Result};
use crate::model::{HistoryEntry, MessageClaim, OutboxMessage, Request, RequestId, Status};
use crate::ports::{Created, MessageCounts, Store, Write};
use crate::signin::{ApproverSession, PendingSignIn, SignIns};
use crate::token::{TokenHash, TokenRecord};

/// How often a write is sealed again because only the chain moved under it (a work note
/// delivered meanwhile). Each retry means another entry joined the request's history: a handful is
/// already far more than a request sees at once.
const RESEALS: usize = 16;

/// Wraps a store: `create`, `apply` and `message_sent` seal the history entries they bring and
/// move the request's `chain`; everything else goes to the wrapped store unchanged. The stores keep
/// their conditional writes, so no two writers extend one head.
pub struct SealingStore {
    inner: Arc<dyn Store>,
    key: EvidenceKey,
}

impl SealingStore {
    pub fn new(inner: Arc<dyn Store>, key: EvidenceKey) -> Self {
        SealingStore { inner, key }
    }

    /// `inner` behind a sealing layer, as the services use it.
    pub fn wrap(inner: Arc<dyn Store>, key: EvidenceKey) -> Arc<dyn Store> {
        Arc::new(Self::new(inner, key))
    }

    /// The stored head of `id` when it is not `head` while the version is still `version`: the
    /// chain moved under a write without a new version (a delivered work note), so the write may
    /// be sealed again on it. `None`: the write lost for another reason.
    async fn moved_head(&self, id: &RequestId, version: Option<u64>, head: &ChainHead) -> Result<Option<ChainHead>> {
        let Some(stored) = self.inner.get(id).await? else { return Ok(None) };
        let same_version = version.is_none_or(|v| stored.version == v);
        Ok((same_version && stored.chain != *head).then_some(stored.chain))
    }
}

#[async_trait]
impl Store for SealingStore {
    async fn create(
        &self,
        mut request: Request,
        mut history: HistoryEntry,
        tokens: Vec<TokenRecord>,
        messages: Vec<OutboxMessage>,
    ) -> Result<Created> {
        let id = request.id.to_string();
        seal(&self.key, &id, &mut request.chain, std::slice::from_mut(&mut history));
        self.inner.create(request, history, tokens, messages).await
    }

    async fn apply(&self, write: Write) -> Result<Request> {
        let id = write.request.id.clone();
        let expected = write.expected_version;
        // The head as the caller read it; a write without history leaves the chain as it is.
        let mut head = write.request.chain.clone();
        for _ in 0..RESEALS {
            let mut attempt = write.clone();
            attempt.request.chain = head.clone();
            seal(&self.key, id.as_str(), &mut attempt.request.chain, &mut attempt.history);
            match self.inner.apply(attempt).await {
                Err(Error::Stale) => match self.moved_head(&id, Some(expected), &head).await? {
                    Some(moved) => head = moved,
                    None => return Err(Error::Stale),
                },
                other => return other,
            }
        }
        Err(Error::Stale)
    }

    async fn message_sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()> {
        let Some(entry) = history else { return self.inner.message_sent(message, claim, None).await };
        let id = &message.request_id;
        let Some(request) = self.inner.get(id).await? else {
            // No request, no chain: nothing to seal onto.
            return self.inner.message_sent(message, claim, Some(entry)).await;
        };
        let mut from = request.chain;
        for _ in 0..RESEALS {
            let mut sealed = entry.clone();
            let mut head = from.clone();
            seal(&self.key, id.as_str(), &mut head, std::slice::from_mut(&mut sealed));
            match self.inner.message_sent_chained(message, claim, sealed, &from).await {
                Err(Error::Stale) => match self.moved_head(id, None, &from).await? {
                    Some(moved) => from = moved,
                    None => return Err(Error::Stale),
                },
                other => return other,
            }
        }
        Err(Error::Stale)
    }

    async fn message_sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &ChainHead,
    ) -> Result<()> {
        self.inner.message_sent_chained(message, claim, entry, from).await
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
    async fn read_request(&self, id: &RequestId) -> Result<Option<crate::ports::RequestRead>> {
        self.inner.read_request(id).await
    }
    async fn read_requests(&self, ids: Vec<RequestId>) -> Result<Vec<Option<crate::ports::RequestRead>>> {
        self.inner.read_requests(ids).await
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
    async fn claim_message(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>> {
        self.inner.claim_message(request, id, claim, now).await
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
impl SignIns for SealingStore {
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
