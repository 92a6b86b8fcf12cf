//! Requests, their source keys and approval tokens as items of the one table, and the `Store` port
//! over them; the port's owed messages are in `messages`, its audit export in `touched`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use domain::evidence::ChainHead;
use domain::model::{HistoryEntry, MessageClaim, OutboxMessage, Request, RequestId, Status};
use domain::ports::{Created, MAX_WRITE_ITEMS, MessageCounts, Store, Write, chain_extended, create_items};
use domain::token::{TOKEN_RETENTION, TokenHash, TokenRecord};
use domain::{Error, Result};
use jiff::Timestamp;

use crate::{
    CONDITION_FAILED, CONFLICT, DynamoStore, GSI1, Item, TTL_ATTRIBUTE, cancellation_codes, chain_still, decode_data,
    history_items, json, key, messages, s, sortable, string, timestamp, touched, up_to,
};

pub(crate) fn request_item(r: &Request) -> Result<Item> {
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
