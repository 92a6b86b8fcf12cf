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
mod requests;
mod sign_ins;
mod table;
mod touched;

pub use backfill::Backfilled;
pub use table::create_table;

use history::{chain_order, chain_still, history_item, history_items};
use requests::request_item;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{BoxError, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use domain::model::{Request, RequestId};
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

/// Everything sorting at or before `now` in a `{time}#{id}` range key.
fn up_to(now: Timestamp) -> String {
    format!("{}#~", sortable(now))
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
}
