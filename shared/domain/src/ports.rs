//! The ports: what the domain needs from the outside world. Adapters in shared/ implement them
//! (PCD, SQLite, DynamoDB, file outbox, SMTP, SES, ServiceNow); the domain never sees how.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::catalog::{CloudInfo, Flavor, Image, Network};
use crate::compute::{ComputeLimits, ServerSpec, ServerState};
use crate::error::Result;
use crate::mail::MailNotice;
use crate::model::{HistoryEntry, MessageClaim, OutboxMessage, Request, RequestId, WorkNote};
use crate::signin::SignIns;
use crate::token::{TokenHash, TokenRecord};

/// The clouds of clouds.yaml and what Gatehouse uses of each (Glance, Nova, Neutron). Every call
/// names the cloud; an unknown cloud is `Error::NotFound`, a failing one `Error::Upstream` naming the
/// cloud and the service.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// The configured clouds, without calling any of them.
    fn clouds(&self) -> Vec<CloudInfo>;
    /// Active images only.
    async fn images(&self, cloud: &str) -> Result<Vec<Image>>;
    async fn flavors(&self, cloud: &str) -> Result<Vec<Flavor>>;
    async fn networks(&self, cloud: &str) -> Result<Vec<Network>>;
    /// Sends the create and returns the new server's id. Quota refusals are `Error::Quota`.
    async fn create_server(&self, cloud: &str, spec: &ServerSpec) -> Result<String>;
    /// `None` when Nova says 404.
    async fn server(&self, cloud: &str, id: &str) -> Result<Option<ServerState>>;
    /// Servers whose name is exactly `name` (Nova's filter is a regex: the adapter anchors and
    /// escapes it, and checks the names it gets back).
    async fn servers_named(&self, cloud: &str, name: &str) -> Result<Vec<ServerState>>;
    async fn delete_server(&self, cloud: &str, id: &str) -> Result<()>;
    /// The project's compute quota and use (Nova's `GET /limits`), read now.
    async fn limits(&self, cloud: &str) -> Result<ComputeLimits>;
    /// Sets one metadata item of a server, leaving the others; a server gone is `Error::NotFound`.
    async fn set_server_metadata(&self, cloud: &str, id: &str, key: &str, value: &str) -> Result<()>;
}

/// What `Store::create` answers: the new request, or the one already recorded for the same source.
#[derive(Debug, Clone)]
pub enum Created {
    New(Request),
    Existing(Request),
}

/// One conditional write: the request's new state (its `version` one above `expected_version`), the
/// history entry, the token it uses up and the messages it owes, all or nothing.
#[derive(Debug, Clone)]
pub struct Write {
    pub request: Request,
    pub expected_version: u64,
    pub history: Vec<HistoryEntry>,
    pub use_token: Option<TokenHash>,
    pub new_tokens: Vec<TokenRecord>,
    pub messages: Vec<OutboxMessage>,
}

impl Write {
    /// A write of `request` at the version read, owing nothing yet.
    pub fn new(request: Request, expected_version: u64) -> Self {
        Write { request, expected_version, history: vec![], use_token: None, new_tokens: vec![], messages: vec![] }
    }

    /// How many records this write touches (see `MAX_WRITE_ITEMS`).
    pub fn items(&self) -> usize {
        1 + usize::from(self.use_token.is_some()) + self.history.len() + self.new_tokens.len() + self.messages.len()
    }
}

/// The most records one atomic write may touch, in every store: DynamoDB's limit, the smallest
/// ("TransactWriteItems is a synchronous write operation that groups up to 100 action requests",
/// Amazon DynamoDB API Reference, TransactWriteItems:
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
/// A write over it is refused before it is sent; what bounds a write's size (the approvers a
/// request can have) is checked when the configuration loads.
pub const MAX_WRITE_ITEMS: usize = 100;

/// How many reads are in flight at once where a store answers one record per call (the default
/// `Store::read_requests`, the audit walk's re-reads): the DynamoDB store answers each in a round
/// trip, and a page of them one after the other would take seconds.
pub const READS_AT_ONCE: usize = 16;

/// The entry count of the chain `write` extends: the request's head less the sealed entries
/// (those with a `hash`) the write brings. A store applies the write only while the stored head
/// still has this count; a delivered work note moves the head without a new version
/// (`Store::message_sent_chained`), and this keeps two writers from extending one head twice.
pub fn chain_extended(write: &Write) -> u64 {
    let sealed = write.history.iter().filter(|e| e.hash.is_some()).count() as u64;
    write.request.chain.count.saturating_sub(sealed)
}

/// How many records `Store::create` touches: the source key, the request, its first history entry,
/// and its tokens and messages.
pub fn create_items(tokens: usize, messages: usize) -> usize {
    3 + tokens + messages
}

/// How many owed messages wait for delivery and how many are dead (for the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub pending: u64,
    pub dead: u64,
}

/// A request with the messages it owes and its history, read together (`Store::read_request`).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRead {
    pub request: Request,
    pub messages: Vec<OutboxMessage>,
    pub history: Vec<HistoryEntry>,
}

/// Durable state. Every write is atomic and conditional; losing a condition is `Error::Stale`. The
/// store keeps approver sign-ins and sessions too.
#[async_trait]
pub trait Store: SignIns + Send + Sync {
    /// Records a new request with its source key (unique per source system and sys_id), its first
    /// history entry, its approval tokens and the messages it owes. If the source key exists, nothing
    /// is written and the existing request is returned.
    async fn create(
        &self,
        request: Request,
        history: HistoryEntry,
        tokens: Vec<TokenRecord>,
        messages: Vec<OutboxMessage>,
    ) -> Result<Created>;
    async fn get(&self, id: &RequestId) -> Result<Option<Request>>;
    /// The request created for `source_key` (see `Request::source_key`), if any.
    async fn find_by_source(&self, source_key: &str) -> Result<Option<Request>>;
    async fn history(&self, id: &RequestId) -> Result<Vec<HistoryEntry>>;
    /// The request, its owed and dead messages and its history, in one read where the store can
    /// (one snapshot): what its view and its evidence show. Otherwise the request, then its
    /// messages, then its history: a mail delivered in between is then in the history, having
    /// left the messages in the write that added its entry; the caller checks the chain against
    /// the request's head and reads again when a write came between.
    async fn read_request(&self, id: &RequestId) -> Result<Option<RequestRead>> {
        let Some(request) = self.get(id).await? else { return Ok(None) };
        let messages = self.messages_of(id).await?;
        let history = self.history(id).await?;
        Ok(Some(RequestRead { request, messages, history }))
    }
    /// Several requests read whole, each as `read_request` reads it, answered in the order asked:
    /// the audit export reads a page of them. A store that can reads the page at once (SQLite:
    /// one read transaction); otherwise they are read a few at a time.
    async fn read_requests(&self, ids: Vec<RequestId>) -> Result<Vec<Option<RequestRead>>> {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(ids)
            .map(|id| async move { self.read_request(&id).await })
            .buffered(READS_AT_ONCE)
            .try_collect()
            .await
    }
    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>>;
    /// Applies `write` if the stored version is still `expected_version` (and the token, if any, is
    /// still unused) and the stored history chain is the one the write extends (see
    /// `chain_extended`); otherwise `Error::Stale` and nothing changes.
    async fn apply(&self, write: Write) -> Result<Request>;
    /// Requests in `status` whose `due_at` is at or before `now`, oldest due first.
    async fn due(&self, status: crate::model::Status, now: Timestamp, limit: usize) -> Result<Vec<Request>>;
    /// Owed messages (not dead) whose next attempt is at or before `now` and that no sender holds
    /// past `now`, oldest first. The answer may come from an index that lags behind the writes
    /// (DynamoDB's GSIs are eventually consistent): it can name a message already sent, held or
    /// dead, or show an older state of it. So a sender claims each message (`claim_message`)
    /// before it sends, and sends what the claim answers.
    async fn messages_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>>;
    /// Claims the message `id` of `request` for `claim` if it is still owed, not dead, due at
    /// `now` and held by nobody past `now` (a conditional write on the record itself, never on an
    /// index). Answers the message as stored now, or `None` when it was sent, is dead or not due,
    /// or another sender holds it.
    async fn claim_message(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>>;
    /// Removes a delivered message and appends `history` (if any) to its request, if `claim` still
    /// holds it; otherwise `Error::Stale` and nothing changes.
    async fn message_sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()>;
    /// `message_sent` for an entry sealed on the request's chain head `from` (see
    /// `evidence::SealingStore`): removes the message, appends `entry` and moves the request's
    /// `chain` to `from.count + 1` and the entry's hash, all in one write that keeps the request's
    /// version, so writers that read the request before are not turned away (their sealing layer
    /// re-seals on the new head). If `claim` no longer holds the message or the stored head is no
    /// longer `from`, `Error::Stale` and nothing changes.
    async fn message_sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &crate::evidence::ChainHead,
    ) -> Result<()>;
    /// Records a failed attempt and releases the claim: `message` as the sender updated it
    /// (attempts, last error, next attempt, and `dead_at` after the last attempt allowed). If
    /// `claim` no longer holds it, `Error::Stale` and nothing changes.
    async fn message_failed(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<()>;
    /// The owed and dead messages of `request`, oldest first, as stored now.
    async fn messages_of(&self, request: &RequestId) -> Result<Vec<OutboxMessage>>;
    /// Writes `message` (revived by the caller: not dead, due again) over the stored one if that
    /// is dead; otherwise `Error::Stale` and nothing changes.
    async fn revive_message(&self, message: &OutboxMessage) -> Result<()>;
    /// How many messages are pending and dead. May lag behind the writes like `messages_due`.
    async fn message_counts(&self) -> Result<MessageCounts>;
    /// Requests whose last write (`updated_at`; a creation sets it too) lies in [`since`, `until`),
    /// ordered by (`updated_at`, id), after the position `after` when given, at most `limit`: the
    /// audit export pages through a period with it. The answer may come from an index that lags
    /// behind the writes (DynamoDB's GSIs are eventually consistent): a request may show an older
    /// state, so the caller re-reads each by id (`usecases::audit`).
    async fn touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, RequestId)>,
        limit: usize,
    ) -> Result<Vec<Request>>;
}

/// Delivers one mail. The adapter renders the notice's template for the request and sends it.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends the mail; answers what it said, for the request's history.
    async fn send(&self, notice: &MailNotice, request: &Request) -> Result<SentMail>;
}

/// A mail that went out, as the request's history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub subject: String,
}

/// The IT service management system (ServiceNow): write-backs onto the request item. `marker` is
/// unique per owed message: a retried write-back first checks whether the note carrying it is
/// already there, so a lost answer never doubles a note.
#[async_trait]
pub trait Itsm: Send + Sync {
    async fn write_back(&self, marker: &str, note: &WorkNote, request: &Request) -> Result<()>;
}

/// A person as the system of record names them (ServiceNow's `sys_user`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcePerson {
    pub email: String,
    pub name: String,
    pub user_name: String,
}

/// A request item as the system of record holds it (ServiceNow's `sc_req_item`): what intake
/// compares the posted body with, and what provisioning re-reads before it creates anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceItem {
    /// Lower-case.
    pub sys_id: String,
    pub number: String,
    /// `approved`, `requested`, `rejected`, `not requested`, … (the raw choice value).
    pub approval: String,
    /// False once the item is closed or cancelled.
    pub active: bool,
    /// The raw `state` choice value (1 open, 2 work in progress, 3 closed complete, 4 closed
    /// incomplete, 7 closed skipped).
    pub state: String,
    /// The catalog item's sys_id (lower-case).
    pub cat_item: String,
    pub requested_for: Option<SourcePerson>,
    pub opened_by: Option<SourcePerson>,
    /// The Gatehouse variable set's values by their short names (`cloud`, `image`, `flavor`,
    /// `network`, `server_name`, `count`); a name is absent when the item lacks that variable.
    pub variables: std::collections::BTreeMap<String, String>,
}

/// Reads request items from the system of record (ServiceNow). `None` when there is no such item
/// (404, or the integration user may not see it).
#[async_trait]
pub trait SourceItems: Send + Sync {
    async fn request_item(&self, sys_id: &str) -> Result<Option<SourceItem>>;
}
