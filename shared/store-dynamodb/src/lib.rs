//! The DynamoDB store: DESIGN.md's single-table model behind the domain's `Store` port, with the same
//! conditional semantics as the SQLite store (one contract suite runs against both).
//!
//! | item            | pk                     | sk                        | other attributes                                   |
//! |-----------------|------------------------|---------------------------|----------------------------------------------------|
//! | request         | `REQ#{id}`             | `META`                    | `status`, `version` (N), `chain_count` (N, the history chain's entry count), `source_key`, `data` (the `Request` as JSON); while `due_at` is set: `gsi1pk = DUE#{status}`, `gsi1sk = {due_at}#{id}`; always `gsi2pk = UPD#{yyyy-mm}` (the month of `updated_at`, UTC), `gsi2sk = {updated_at}#{id}` |
//! | history entry   | `REQ#{id}`             | `EVT#{at}#{uuidv7}`       | `data` (the `HistoryEntry` as JSON); a sealed entry also `chain_seq` (N, its place in the chain, from 1) |
//! | source key      | `SRC#{system}#{sys_id}`| `META`                    | `request_id`                                       |
//! | approval token  | `TOK#{sha256 hex}`     | `META`                    | `request_id`, `approver`, `expires_at`, `used_at` (absent until used), `stage` (N), `on_behalf_of` (a delegate's link), `ttl` (N, epoch seconds: expiry + 30 days) |
//! | owed message    | `REQ#{id}`             | `MSG#{message id}`        | `data` (the `OutboxMessage` as JSON), `next_attempt_at`; while a sender holds it `claimed_by`, `claimed_until`; `gsi1pk = MSG`, `gsi1sk = {next_attempt_at or claimed_until}#{id}`; once dead: `dead`, `gsi1pk = MSGDEAD`, `gsi1sk = {dead}#{id}` (see `messages`) |
//! | sign-in         | `AUTH#{sha256 of state}` | `META`                  | `data` (nonce, PKCE verifier, the link's token hash), `expires_at`, `ttl` (expiry + 1 day); taken once by the callback |
//! | session         | `SES#{sha256 of cookie}` | `META`                  | `data` (issuer, subject, verified e-mail, amr), `expires_at`, `ttl` (expiry + 1 day) |
//! | change          | `CHG#{project}#{sha}#{env}` | `META`               | `version` (N), `data` (the `ChangeRecord` as JSON, its sealed history included); once it has a sys_id: `gsi1pk = CHGSYS#{sys_id}`, `gsi1sk = {pk}`; always `gsi2pk = CHGUPD#{yyyy-mm}`, `gsi2sk = {updated_at}#{pk}` |
//! | change check    | `CHG#{project}#{sha}#{env}` | `DUE`                | written in the same transaction as the change (not at all for a new one without `check_at`); while `check_at` is set: `check_at`, `gsi1pk = CHGDUE`, `gsi1sk = {check_at}#{pk}`; without, no index attributes |
//!
//! Every item also carries `type` (`request`, `history`, `source`, `token`, `message`, `sign_in`,
//! `session`, `change`, `change_due`). Times in keys
//! are RFC 3339 UTC with nine fractional digits, so they sort as text. The first global secondary
//! index, `gsi1` (`gsi1pk` hash, `gsi1sk` range, projection ALL), is sparse: only open requests with
//! a due time, owed messages, changes with a sys_id and change checks with a `check_at` are in it;
//! `due`, `messages_due`, `message_counts`, `change_by_sys_id` and `changes_due` query it. The
//! second, `gsi2` (alike), holds every request and change record by the month of its last write,
//! for `touched` and `changes_touched`.
//! Index answers may lag behind the writes, so they only name candidates: every write is
//! conditioned on the item itself, and the export re-reads each request. An item has one place in
//! an index, which is why a change's `check_at` rides on its own `DUE` item rather than on `META`.
//!
//! Writes that must be atomic are one `TransactWriteItems` carrying a fresh `ClientRequestToken` per
//! call, so an SDK retry of a write that already committed is answered as committed, not as a lost
//! condition. A lost condition (or a conflicting concurrent transaction) is `Error::Stale`; every
//! other failure is `Error::Upstream` naming the table and the operation. No write carries more
//! than `domain::ports::MAX_WRITE_ITEMS` (100) items: a larger one is refused before it is sent.

mod backfill;
mod changes;
mod history;
mod messages;
mod sign_ins;
mod table;
mod touched;

pub use backfill::Backfilled;
pub use table::create_table;

use history::{chain_order, chain_still, history_item, history_items};

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{BoxError, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use domain::evidence::ChainHead;
use domain::model::{HistoryEntry, MessageClaim, OutboxMessage, Request, RequestId, Status};
use domain::ports::{Created, MAX_WRITE_ITEMS, MessageCounts, Store, Write, chain_extended, create_items};
use domain::token::{TOKEN_RETENTION, TokenHash, TokenRecord};
use domain::{Error, Result};
use jiff::Timestamp;

/// The name of the sparse global secondary index.
pub const GSI1: &str = "gsi1";
/// The name of the index of requests by the month and time of their last write (the audit export).
pub const GSI2: &str = "gsi2";
/// The attribute DynamoDB's TTL deletes token items by.
pub const TTL_ATTRIBUTE: &str = "ttl";

type Item = HashMap<String, AttributeValue>;

/// The timeouts the store's clients use: 2 s to connect, 5 s per attempt, 10 s for an operation with
/// its retries (the SDK's standard retries stay on for throttling and transient errors).
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on `table` through `client`. Give the client `timeouts()` (as `from_env` does).
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// A store on `table` with the SDK's default configuration chain (region, credentials and
    /// `AWS_ENDPOINT_URL` from the environment or the Lambda role) and `timeouts()`.
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts()).load().await;
        Self::new(Client::new(&config), table.into())
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A request's history items as the table holds them, in chain order: what `history` decodes,
    /// for tools and tests that look beneath the store.
    pub async fn history_items_of(&self, id: &RequestId) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let mut items = self
            .query_all(
                None,
                "pk = :pk AND begins_with(sk, :evt)",
                vec![(":pk", format!("REQ#{id}")), (":evt", "EVT#".into())],
                usize::MAX,
            )
            .await?;
        items.sort_by_key(chain_order);
        Ok(items)
    }

    fn upstream(&self, operation: &str, source: impl Into<BoxError>) -> Error {
        upstream(&self.table, operation, source)
    }

    async fn get_item(&self, pk: String) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, "META".into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.upstream("GetItem", e))?;
        Ok(out.item)
    }

    async fn request_by_id(&self, id: &str) -> Result<Option<Request>> {
        self.get_item(format!("REQ#{id}")).await?.map(|item| decode_data(&item, "request")).transpose()
    }

    /// All items of one query, page after page, up to `limit`.
    async fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Vec<(&str, String)>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            let page = i32::try_from(limit - items.len()).unwrap_or(i32::MAX).min(1000);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(condition)
                .set_exclusive_start_key(start.take())
                .scan_index_forward(true)
                .limit(page);
            if index.is_none() {
                query = query.consistent_read(true);
            }
            for (name, value) in &values {
                query = query.expression_attribute_values(*name, s(value.clone()));
            }
            let out = query.send().await.map_err(|e| self.upstream("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), SdkError<TransactWriteItemsError>> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            // One token per call: the SDK resends the same token on its retries, so a retry of a
            // write that already committed succeeds instead of failing its own condition.
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .map(|_| ())
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(|e| Error::internal("DynamoDB store: building a Put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem> {
        self.put(item, Some("attribute_not_exists(pk)"))
    }
}

fn upstream(table: &str, operation: &str, source: impl Into<BoxError>) -> Error {
    Error::Upstream {
        system: format!("DynamoDB table {table}"),
        detail: format!("{operation} failed"),
        source: Some(source.into()),
    }
}

/// What a cancelled transaction says about each of its items (`None`, `ConditionalCheckFailed`,
/// `TransactionConflict`, …), or `None` when the failure was not a cancellation.
fn cancellation_codes(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect())
        }
        _ => None,
    }
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const CONFLICT: &str = "TransactionConflict";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// RFC 3339 in UTC with nine fractional digits: fixed width, so it sorts as text.
fn sortable(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal("DynamoDB store: encoding a record", e))
}

fn string<'a>(item: &'a Item, name: &str, what: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Error::internal_msg(format!("DynamoDB store: a {what} item has no string attribute {name}"))),
    }
}

fn decode_data<T: serde::de::DeserializeOwned>(item: &Item, what: &str) -> Result<T> {
    serde_json::from_str(string(item, "data", what)?)
        .map_err(|e| Error::internal(format!("DynamoDB store: decoding a {what} item"), e))
}

fn timestamp(text: &str, what: &str) -> Result<Timestamp> {
    text.parse().map_err(|e| Error::internal(format!("DynamoDB store: a {what} item has a bad time"), e))
}

fn request_item(r: &Request) -> Result<Item> {
    let mut item = key(format!("REQ#{}", r.id), "META".into());
    item.insert("type".into(), s("request"));
    item.insert("status".into(), s(r.status.as_str()));
    item.insert("version".into(), AttributeValue::N(r.version.to_string()));
    item.insert("chain_count".into(), AttributeValue::N(r.chain.count.to_string()));
    item.insert("source_key".into(), s(r.source_key()));
    item.insert("data".into(), s(json(r)?));
    if let Some(due) = r.due_at {
        item.insert("gsi1pk".into(), s(due_partition(r.status)));
        item.insert("gsi1sk".into(), s(format!("{}#{}", sortable(due), r.id)));
    }
    item.insert("gsi2pk".into(), s(touched::month_partition(r.updated_at)));
    item.insert("gsi2sk".into(), s(format!("{}#{}", sortable(r.updated_at), r.id)));
    Ok(item)
}

fn due_partition(status: Status) -> String {
    format!("DUE#{status}")
}

fn source_item(r: &Request) -> Item {
    let mut item = key(format!("SRC#{}", r.source_key()), "META".into());
    item.insert("type".into(), s("source"));
    item.insert("request_id".into(), s(r.id.as_str()));
    item
}

fn token_item(t: &TokenRecord) -> Result<Item> {
    let purge_after = t
        .expires_at
        .checked_add(TOKEN_RETENTION)
        .map_err(|e| Error::internal("DynamoDB store: token expiry out of range", e))?;
    let mut item = key(format!("TOK#{}", t.hash.as_str()), "META".into());
    item.insert("type".into(), s("token"));
    item.insert("request_id".into(), s(t.request_id.as_str()));
    item.insert("approver".into(), s(&t.approver));
    item.insert("expires_at".into(), s(sortable(t.expires_at)));
    if let Some(used) = t.used_at {
        item.insert("used_at".into(), s(sortable(used)));
    }
    item.insert("stage".into(), AttributeValue::N(t.stage.to_string()));
    if let Some(member) = &t.on_behalf_of {
        item.insert("on_behalf_of".into(), s(member));
    }
    item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N(purge_after.as_second().to_string()));
    Ok(item)
}

fn token_record(hash: &TokenHash, item: &Item) -> Result<TokenRecord> {
    let request_id = string(item, "request_id", "token")?;
    Ok(TokenRecord {
        hash: hash.clone(),
        request_id: RequestId::parse(request_id)
            .ok_or_else(|| Error::internal_msg("DynamoDB store: a token item has a bad request_id"))?,
        approver: string(item, "approver", "token")?.to_string(),
        expires_at: timestamp(string(item, "expires_at", "token")?, "token")?,
        used_at: match item.get("used_at") {
            Some(AttributeValue::S(v)) => Some(timestamp(v, "token")?),
            _ => None,
        },
        stage: match item.get("stage") {
            Some(AttributeValue::N(n)) => {
                n.parse().map_err(|_| Error::internal_msg("DynamoDB store: a token item has a bad stage"))?
            }
            _ => 0,
        },
        on_behalf_of: match item.get("on_behalf_of") {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        },
    })
}

/// Everything sorting at or before `now` in a `{time}#{id}` range key.
fn up_to(now: Timestamp) -> String {
    format!("{}#~", sortable(now))
}

#[async_trait]
impl Store for DynamoStore {
    async fn create(
        &self,
        request: Request,
        history: HistoryEntry,
        tokens: Vec<TokenRecord>,
        messages: Vec<OutboxMessage>,
    ) -> Result<Created> {
        within_write_limit(create_items(tokens.len(), messages.len()))?;
        // Order matters: the cancellation reasons come back in this order.
        let mut items = vec![self.put_new(source_item(&request))?, self.put_new(request_item(&request)?)?];
        let chain_from = request.chain.count.saturating_sub(u64::from(history.hash.is_some()));
        for item in history_items(&request.id, std::slice::from_ref(&history), chain_from)? {
            items.push(self.put(item, None)?);
        }
        for t in &tokens {
            items.push(self.put_new(token_item(t)?)?);
        }
        for m in &messages {
            items.push(self.put_new(messages::message_item(m)?)?);
        }
        let err = match self.transact(items).await {
            Ok(()) => return Ok(Created::New(request)),
            Err(err) => err,
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(self.upstream("TransactWriteItems", err));
        };
        let code = |i: usize| codes.get(i).map(String::as_str);
        let key = request.source_key();
        if code(0) == Some(CONDITION_FAILED) || codes.iter().any(|c| c == CONFLICT) {
            // The source key exists, or another transaction is writing it right now.
            return match self.find_by_source(&key).await? {
                Some(existing) => Ok(Created::Existing(existing)),
                None if code(0) == Some(CONDITION_FAILED) => {
                    Err(Error::Conflict(format!("source {key} is recorded without its request")))
                }
                None => Err(Error::Stale),
            };
        }
        if code(1) == Some(CONDITION_FAILED) {
            return Err(Error::Conflict(format!("request id {} already exists", request.id)));
        }
        if codes.iter().any(|c| c == CONDITION_FAILED) {
            return Err(Error::Conflict("an approval token or message of this request already exists".into()));
        }
        Err(self.upstream("TransactWriteItems", err))
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>> {
        self.request_by_id(id.as_str()).await
    }

    async fn find_by_source(&self, source_key: &str) -> Result<Option<Request>> {
        let Some(item) = self.get_item(format!("SRC#{source_key}")).await? else { return Ok(None) };
        self.request_by_id(string(&item, "request_id", "source")?).await
    }

    async fn history(&self, id: &RequestId) -> Result<Vec<HistoryEntry>> {
        self.history_items_of(id).await?.iter().map(|item| decode_data(item, "history")).collect()
    }

    async fn read_request(&self, id: &RequestId) -> Result<Option<domain::ports::RequestRead>> {
        self.read_whole(id).await
    }

    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        self.get_item(format!("TOK#{}", hash.as_str())).await?.map(|item| token_record(hash, &item)).transpose()
    }

    async fn apply(&self, write: Write) -> Result<Request> {
        within_write_limit(write.items())?;
        let chain_from = chain_extended(&write);
        let Write { request, expected_version, history, use_token, new_tokens, messages } = write;
        let put_request = Put::builder()
            .table_name(&self.table)
            .set_item(Some(request_item(&request)?))
            .condition_expression(format!("version = :expected AND {}", chain_still(chain_from)))
            .expression_attribute_values(":expected", AttributeValue::N(expected_version.to_string()))
            .expression_attribute_values(":chain", AttributeValue::N(chain_from.to_string()))
            .build()
            .map_err(|e| Error::internal("DynamoDB store: building a Put", e))?;
        let mut items = vec![TransactWriteItem::builder().put(put_request).build()];
        if let Some(hash) = &use_token {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("TOK#{}", hash.as_str()), "META".into())))
                .update_expression("SET used_at = :used")
                .condition_expression(
                    "attribute_exists(pk) AND attribute_not_exists(used_at) AND request_id = :request",
                )
                .expression_attribute_values(":used", s(sortable(request.updated_at)))
                .expression_attribute_values(":request", s(request.id.as_str()))
                .build()
                .map_err(|e| Error::internal("DynamoDB store: building an Update", e))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        for item in history_items(&request.id, &history, chain_from)? {
            items.push(self.put(item, None)?);
        }
        for t in &new_tokens {
            items.push(self.put_new(token_item(t)?)?);
        }
        for m in &messages {
            items.push(self.put_new(messages::message_item(m)?)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(request),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if codes.iter().any(|c| c == CONDITION_FAILED || c == CONFLICT) => Err(Error::Stale),
                _ => Err(self.upstream("TransactWriteItems", err)),
            },
        }
    }

    async fn due(&self, status: Status, now: Timestamp, limit: usize) -> Result<Vec<Request>> {
        let items = self
            .query_all(
                Some(GSI1),
                "gsi1pk = :pk AND gsi1sk <= :upto",
                vec![(":pk", due_partition(status)), (":upto", up_to(now))],
                limit,
            )
            .await?;
        items.iter().map(|item| decode_data(item, "request")).collect()
    }

    async fn messages_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.due_messages(now, limit).await
    }

    async fn claim_message(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>> {
        self.claim(request, id, claim, now).await
    }

    async fn message_sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()> {
        self.sent(message, claim, history).await
    }

    async fn message_sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &ChainHead,
    ) -> Result<()> {
        self.sent_chained(message, claim, entry, from).await
    }

    async fn message_failed(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<()> {
        self.failed(message, claim).await
    }

    async fn messages_of(&self, request: &RequestId) -> Result<Vec<OutboxMessage>> {
        self.of_request(request).await
    }

    async fn revive_message(&self, message: &OutboxMessage) -> Result<()> {
        self.revive(message).await
    }

    async fn message_counts(&self) -> Result<MessageCounts> {
        self.counts().await
    }

    async fn touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, RequestId)>,
        limit: usize,
    ) -> Result<Vec<Request>> {
        self.touched_between(since, until, after, limit).await
    }
}

/// DynamoDB refuses a transaction of more than 100 items as a whole; this says why before it is sent.
fn within_write_limit(items: usize) -> Result<()> {
    if items > MAX_WRITE_ITEMS {
        return Err(Error::internal_msg(format!(
            "DynamoDB store: a write of {items} items is over TransactWriteItems' limit of {MAX_WRITE_ITEMS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_times_have_one_width_and_sort_as_text() {
        let a: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        let c: Timestamp = "2026-01-01T00:00:01Z".parse().unwrap();
        let (sa, sb, sc) = (sortable(a), sortable(b), sortable(c));
        assert_eq!(sa, "2026-01-01T00:00:00.000000000Z");
        assert!(sa < sb && sb < sc);
        assert_eq!(sa.len(), sb.len());
        assert_eq!(timestamp(&sb, "t").unwrap(), b);
        // The upper bound of a range includes every id at exactly that time.
        assert!(format!("{sa}#0190e8d4-0000-7000-8000-000000000000") <= up_to(a));
        assert!(format!("{sb}#0190e8d4-0000-7000-8000-000000000000") > up_to(a));
    }

    #[test]
    fn a_token_item_keeps_it_thirty_days_past_expiry_and_reads_back() {
        let t = TokenRecord {
            hash: TokenHash::from_stored("ab".repeat(32)),
            request_id: RequestId::generate(),
            approver: "ops@example.com".into(),
            expires_at: "2026-03-01T12:00:00.25Z".parse().unwrap(),
            used_at: None,
            stage: 0,
            on_behalf_of: None,
        };
        let item = token_item(&t).unwrap();
        let expected_ttl = t.expires_at.as_second() + 30 * 24 * 3600;
        assert_eq!(item.get(TTL_ATTRIBUTE), Some(&AttributeValue::N(expected_ttl.to_string())));
        assert!(!item.contains_key("used_at"));
        assert_eq!(token_record(&t.hash, &item).unwrap(), t);
        let used = TokenRecord { used_at: Some("2026-03-01T13:00:00Z".parse().unwrap()), ..t };
        assert_eq!(token_record(&used.hash, &token_item(&used).unwrap()).unwrap(), used);
    }

    #[test]
    fn only_requests_with_a_due_time_are_in_the_index() {
        let mut r = store_sample();
        let item = request_item(&r).unwrap();
        assert_eq!(item.get("gsi1pk"), Some(&s("DUE#pending_approval")));
        assert!(string(&item, "gsi1sk", "request").unwrap().ends_with(&format!("#{}", r.id)));
        assert_eq!(item.get("status"), Some(&s("pending_approval")));
        r.due_at = None;
        let item = request_item(&r).unwrap();
        assert!(!item.contains_key("gsi1pk") && !item.contains_key("gsi1sk"));
        assert_eq!(decode_data::<Request>(&item, "request").unwrap(), r);
    }

    fn store_sample() -> Request {
        let now = Timestamp::now();
        serde_json::from_value(serde_json::json!({
            "id": RequestId::generate(), "status": "pending_approval", "version": 1,
            "source": {"system": "servicenow", "number": "RITM1", "sys_id": "abc"},
            "requester": {"email": "ada@example.com", "name": "Ada"},
            "cloud": "demo", "image": {"id": "i", "name": "I"}, "flavor": {"id": "f", "name": "F"},
            "network": {"id": "n", "name": "N"}, "boot_volume_gb": null, "server_name": "web-01", "count": 1,
            "justification": null, "metadata": {}, "approvers": ["ops@example.com"],
            "created_at": now, "updated_at": now, "expires_at": now, "due_at": now, "reminded": false,
            "deadline": null, "lease": null, "servers": [], "error": null, "decision_comment": null,
            "decided_by": null, "intake_digest": "d"
        }))
        .unwrap()
    }
}
