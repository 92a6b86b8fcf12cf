//! Owed messages as items of the one table (`REQ#{request}` / `MSG#{id}`):
//!
//! | state   | attributes besides `type = message` and `data` (the `OutboxMessage` as JSON)                      |
//! |---------|----------------------------------------------------------------------------------------------------|
//! | pending | `next_attempt_at`; `gsi1pk = MSG`, `gsi1sk = {next_attempt_at}#{id}`                               |
//! | held    | as pending, plus `claimed_by`, `claimed_until`, and `gsi1sk = {claimed_until}#{id}`               |
//! | dead    | `dead` (when), `next_attempt_at`; `gsi1pk = MSGDEAD`, `gsi1sk = {dead}#{id}`; no claim             |
//!
//! So the index's `MSG` partition sorts each message by when a sender may next take it: a held
//! message comes due again when its claim runs out. The index is only read to find candidates
//! (it is eventually consistent, and may name a message already sent or held); every claim,
//! removal and update is a conditional write on the item itself:
//!
//! - claim: `UpdateItem` setting `claimed_by` and `claimed_until`, if the item exists, is not
//!   dead, is due, and holds no claim that lasts past now; it answers the item as written
//!   (`ReturnValues = ALL_NEW`, which reads the item itself, never the index);
//! - sent: `DeleteItem` (with a write-back's history entry, `TransactWriteItems`) if the claim
//!   is the sender's own; with a sealed entry, the request item is written again in the same
//!   transaction with its chain moved, if its version and chain are still the ones read;
//! - failed or dead: `UpdateItem` if the claim is the sender's own, releasing it;
//! - revived: `UpdateItem` if the item is dead.
//!
//! Attribute names go through `ExpressionAttributeNames` (`data` is a DynamoDB reserved word).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValue, Select, TransactWriteItem};
use domain::evidence::ChainHead;
use domain::model::{HistoryEntry, MessageClaim, OutboxMessage, RequestId};
use domain::ports::MessageCounts;
use domain::{Error, Result};
use jiff::Timestamp;

use crate::{
    CONDITION_FAILED, CONFLICT, DynamoStore, GSI1, Item, cancellation_codes, chain_still, decode_data, history_item,
    json, key, request_item, s, sortable, up_to,
};

/// The placeholders the update and condition expressions use for attribute names.
const NAMES: [(&str, &str); 7] = [
    ("#data", "data"),
    ("#next", "next_attempt_at"),
    ("#by", "claimed_by"),
    ("#until", "claimed_until"),
    ("#dead", "dead"),
    ("#ipk", "gsi1pk"),
    ("#isk", "gsi1sk"),
];

/// The index partition of the messages a sender may take (pending, or held).
const PENDING: &str = "MSG";
/// The index partition of the dead messages.
const DEAD: &str = "MSGDEAD";

fn message_key(request: &RequestId, id: &str) -> Item {
    key(format!("REQ#{request}"), format!("MSG#{id}"))
}

/// Where `gsi1` sorts a message: by the time given, then its id.
fn index_key(at: Timestamp, id: &str) -> AttributeValue {
    s(format!("{}#{id}", sortable(at)))
}

/// A message's item as first written (in the transition's transaction) or revived.
pub(crate) fn message_item(m: &OutboxMessage) -> Result<Item> {
    let mut item = message_key(&m.request_id, &m.id);
    item.insert("type".into(), s("message"));
    item.insert("data".into(), s(json(m)?));
    item.insert("next_attempt_at".into(), s(sortable(m.next_attempt_at)));
    match m.dead_at {
        None => {
            item.insert("gsi1pk".into(), s(PENDING));
            item.insert("gsi1sk".into(), index_key(m.next_attempt_at, &m.id));
        }
        Some(dead) => {
            item.insert("dead".into(), s(sortable(dead)));
            item.insert("gsi1pk".into(), s(DEAD));
            item.insert("gsi1sk".into(), index_key(dead, &m.id));
        }
    }
    Ok(item)
}

pub(crate) fn condition_failed(e: &SdkError<UpdateItemError>) -> bool {
    e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
}

/// Another transaction is writing the item right now (it is being removed or revived).
fn in_transaction(e: &SdkError<UpdateItemError>) -> bool {
    e.as_service_error().is_some_and(|e| e.is_transaction_conflict_exception())
}

impl DynamoStore {
    /// An `UpdateItem` of the message's item with the names of `NAMES` that `expressions` use
    /// (DynamoDB refuses a name no expression uses).
    fn update_message(&self, request: &RequestId, id: &str, expressions: &[&str]) -> UpdateItemFluentBuilder {
        let mut update = self.client.update_item().table_name(&self.table).set_key(Some(message_key(request, id)));
        for (placeholder, name) in NAMES {
            if expressions.iter().any(|e| e.split(|c: char| !c.is_alphanumeric() && c != '#').any(|w| w == placeholder))
            {
                update = update.expression_attribute_names(placeholder, name);
            }
        }
        update
            .set_update_expression(expressions.first().map(|e| e.to_string()))
            .set_condition_expression(expressions.get(1).map(|e| e.to_string()))
    }

    pub(crate) async fn due_messages(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
        let items = self
            .query_all(
                Some(GSI1),
                "gsi1pk = :pk AND gsi1sk <= :upto",
                vec![(":pk", PENDING.into()), (":upto", up_to(now))],
                limit,
            )
            .await?;
        items.iter().map(|item| decode_data(item, "message")).collect()
    }

    pub(crate) async fn claim(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>> {
        // Items written before `next_attempt_at` was an attribute are due.
        let expressions = [
            "SET #by = :holder, #until = :until, #isk = :isk",
            "attribute_exists(pk) AND attribute_not_exists(#dead) AND (attribute_not_exists(#next) OR #next <= :now) \
             AND (attribute_not_exists(#until) OR #until <= :now)",
        ];
        let result = self
            .update_message(request, id, &expressions)
            .expression_attribute_values(":holder", s(&claim.holder))
            .expression_attribute_values(":until", s(sortable(claim.until)))
            .expression_attribute_values(":isk", index_key(claim.until, id))
            .expression_attribute_values(":now", s(sortable(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes.map(|item| decode_data(&item, "message")).transpose(),
            Err(e) if condition_failed(&e) || in_transaction(&e) => Ok(None),
            Err(e) => Err(self.upstream("UpdateItem", e)),
        }
    }

    pub(crate) async fn sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()> {
        let held = "claimed_by = :holder AND claimed_until = :until";
        let Some(entry) = history else {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(message_key(&message.request_id, &message.id)))
                .condition_expression(held)
                .expression_attribute_values(":holder", s(&claim.holder))
                .expression_attribute_values(":until", s(sortable(claim.until)))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    Err(Error::Stale)
                }
                Err(e) => Err(self.upstream("DeleteItem", e)),
            };
        };
        let items =
            vec![self.delete_held(message, claim)?, self.put(history_item(&message.request_id, &entry, None)?, None)?];
        self.settle(items).await
    }

    /// `sent` with an entry sealed on `from`: the request is written again with its chain moved
    /// to the entry (same version), if its version and chain are still the ones read here.
    pub(crate) async fn sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &ChainHead,
    ) -> Result<()> {
        let Some(mut request) = self.request_by_id(message.request_id.as_str()).await? else {
            return Err(Error::Stale);
        };
        if request.chain != *from {
            return Err(Error::Stale);
        }
        let version = request.version;
        request.chain = ChainHead { count: from.count + 1, hash: entry.hash.clone().unwrap_or_default() };
        let put_request = Put::builder()
            .table_name(&self.table)
            .set_item(Some(request_item(&request)?))
            .condition_expression(format!("version = :expected AND {}", chain_still(from.count)))
            .expression_attribute_values(":expected", AttributeValue::N(version.to_string()))
            .expression_attribute_values(":chain", AttributeValue::N(from.count.to_string()))
            .build()
            .map_err(|e| Error::internal("DynamoDB store: building a Put", e))?;
        let items = vec![
            self.delete_held(message, claim)?,
            TransactWriteItem::builder().put(put_request).build(),
            self.put(history_item(&message.request_id, &entry, Some(from.count + 1))?, None)?,
        ];
        self.settle(items).await
    }

    /// Removing `message` if `claim` still holds it, as part of a transaction.
    fn delete_held(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(message_key(&message.request_id, &message.id)))
            .condition_expression("claimed_by = :holder AND claimed_until = :until")
            .expression_attribute_values(":holder", s(&claim.holder))
            .expression_attribute_values(":until", s(sortable(claim.until)))
            .build()
            .map_err(|e| Error::internal("DynamoDB store: building a Delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Writes a sent message's removal and history: a lost condition is `Stale`.
    async fn settle(&self, items: Vec<TransactWriteItem>) -> Result<()> {
        // A conflict with another transaction is not a lost claim: the message went out, so its
        // removal is tried again rather than left for a second sender after the claim runs out.
        let mut tries = 0;
        loop {
            tries += 1;
            let err = match self.transact(items.clone()).await {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            match cancellation_codes(&err) {
                Some(codes) if codes.iter().any(|c| c == CONDITION_FAILED) => return Err(Error::Stale),
                Some(codes) if tries < 3 && codes.iter().any(|c| c == CONFLICT) => continue,
                _ => return Err(self.upstream("TransactWriteItems", err)),
            }
        }
    }

    pub(crate) async fn failed(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<()> {
        let held = "#by = :holder AND #until = :until";
        let update = match message.dead_at {
            None => self
                .update_message(
                    &message.request_id,
                    &message.id,
                    &["SET #data = :data, #next = :next, #isk = :isk REMOVE #by, #until", held],
                )
                .expression_attribute_values(":isk", index_key(message.next_attempt_at, &message.id)),
            Some(dead) => self
                .update_message(
                    &message.request_id,
                    &message.id,
                    &[
                        "SET #data = :data, #next = :next, #dead = :dead, #ipk = :ipk, #isk = :isk REMOVE #by, #until",
                        held,
                    ],
                )
                .expression_attribute_values(":dead", s(sortable(dead)))
                .expression_attribute_values(":ipk", s(DEAD))
                .expression_attribute_values(":isk", index_key(dead, &message.id)),
        };
        let result = update
            .expression_attribute_values(":data", s(json(message)?))
            .expression_attribute_values(":next", s(sortable(message.next_attempt_at)))
            .expression_attribute_values(":holder", s(&claim.holder))
            .expression_attribute_values(":until", s(sortable(claim.until)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(Error::Stale),
            Err(e) => Err(self.upstream("UpdateItem", e)),
        }
    }

    pub(crate) async fn of_request(&self, request: &RequestId) -> Result<Vec<OutboxMessage>> {
        let items = self
            .query_all(
                None,
                "pk = :pk AND begins_with(sk, :msg)",
                vec![(":pk", format!("REQ#{request}")), (":msg", "MSG#".into())],
                usize::MAX,
            )
            .await?;
        items.iter().map(|item| decode_data(item, "message")).collect()
    }

    pub(crate) async fn revive(&self, message: &OutboxMessage) -> Result<()> {
        let result = self
            .update_message(
                &message.request_id,
                &message.id,
                &[
                    "SET #data = :data, #next = :next, #ipk = :ipk, #isk = :isk REMOVE #dead, #by, #until",
                    "attribute_exists(#dead)",
                ],
            )
            .expression_attribute_values(":data", s(json(message)?))
            .expression_attribute_values(":next", s(sortable(message.next_attempt_at)))
            .expression_attribute_values(":ipk", s(PENDING))
            .expression_attribute_values(":isk", index_key(message.next_attempt_at, &message.id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) || in_transaction(&e) => Err(Error::Stale),
            Err(e) => Err(self.upstream("UpdateItem", e)),
        }
    }

    /// Counted from the index (`Select = COUNT`, page after page).
    pub(crate) async fn counts(&self) -> Result<MessageCounts> {
        let mut counts = MessageCounts::default();
        for (partition, total) in [(PENDING, &mut counts.pending), (DEAD, &mut counts.dead)] {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI1)
                    .key_condition_expression("gsi1pk = :pk")
                    .expression_attribute_values(":pk", s(partition))
                    .select(Select::Count)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| self.upstream("Query", e))?;
                *total += u64::try_from(out.count).unwrap_or(0);
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(counts)
    }
}
