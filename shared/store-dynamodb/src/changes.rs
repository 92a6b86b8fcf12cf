//! The CI gate's change records (`domain::changes::ChangeRecords`) as items of the one table.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use domain::changes::{ChangeKey, ChangeRecord, ChangeRecords};
use domain::{Error, Result};
use jiff::Timestamp;

use crate::{
    CONDITION_FAILED, CONFLICT, DynamoStore, GSI1, Item, cancellation_codes, decode_data, json, key, s, sortable,
    string, up_to,
};

fn change_pk(key: &ChangeKey) -> String {
    key.storage_key()
}

/// The partition of `gsi1` that holds the changes with a `check_at`.
const CHANGE_DUE: &str = "CHGDUE";
/// The sort key of a change's companion item that carries its `check_at` into `gsi1`.
const CHANGE_DUE_SK: &str = "DUE";

/// A change record's item (`CHG#…` / `META`), in `gsi1` by sys_id once the change exists.
fn change_item(record: &ChangeRecord) -> Result<Item> {
    let pk = change_pk(&record.key);
    let mut item = key(pk.clone(), "META".into());
    item.insert("type".into(), s("change"));
    item.insert("version".into(), AttributeValue::N(record.version.to_string()));
    item.insert("data".into(), s(json(record)?));
    // The audit export's walk (`changes_touched`).
    item.insert("gsi2pk".into(), s(crate::touched::change_month_partition(record.updated_at)));
    item.insert("gsi2sk".into(), s(format!("{}#{pk}", sortable(record.updated_at))));
    if !record.sys_id.is_empty() {
        item.insert("gsi1pk".into(), s(format!("CHGSYS#{}", record.sys_id)));
        item.insert("gsi1sk".into(), s(pk));
    }
    Ok(item)
}

/// The companion item (`CHG#…` / `DUE`) that puts a change in `gsi1` under `CHGDUE` while its
/// `check_at` is set. Without one it has no index attributes, so it leaves the index (it is
/// overwritten rather than deleted, so writing a change needs only `dynamodb:PutItem`).
fn change_due_item(record: &ChangeRecord) -> Item {
    let pk = change_pk(&record.key);
    let mut item = key(pk.clone(), CHANGE_DUE_SK.into());
    item.insert("type".into(), s("change_due"));
    if let Some(at) = record.check_at {
        item.insert("check_at".into(), s(sortable(at)));
        item.insert("gsi1pk".into(), s(CHANGE_DUE));
        item.insert("gsi1sk".into(), s(format!("{}#{pk}", sortable(at))));
    }
    item
}

/// Change records: `CHG#{project}#{sha}#{env}` / `META`, indexed by ServiceNow sys_id in `gsi1`
/// (`CHGSYS#{sys_id}`) once the change exists, for the webhook's lookup. An item has one place in
/// `gsi1`, so the sweeper's `check_at` index lives on a companion item, `CHG#…` / `DUE`
/// (`CHGDUE`, `{check_at}#{pk}`), written in the same transaction as the record.
#[async_trait]
impl ChangeRecords for DynamoStore {
    async fn get_change(&self, key: &ChangeKey) -> Result<Option<ChangeRecord>> {
        self.get_item(change_pk(key)).await?.map(|item| decode_data(&item, "change")).transpose()
    }

    async fn change_by_sys_id(&self, sys_id: &str) -> Result<Option<ChangeRecord>> {
        let items = self.query_all(Some(GSI1), "gsi1pk = :p", vec![(":p", format!("CHGSYS#{sys_id}"))], 1).await?;
        items.first().map(|item| decode_data(item, "change")).transpose()
    }

    async fn put_change(&self, record: &ChangeRecord, expected_version: Option<u64>) -> Result<()> {
        let condition = match expected_version {
            None => Put::builder().condition_expression("attribute_not_exists(pk)"),
            Some(v) => Put::builder()
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
        };
        let put = condition
            .table_name(&self.table)
            .set_item(Some(change_item(record)?))
            .build()
            .map_err(|e| Error::internal("DynamoDB store: building a Put", e))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        // A new record without check_at has no index entry to write or clear.
        if record.check_at.is_some() || expected_version.is_some() {
            items.push(self.put(change_due_item(record), None)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if codes.iter().any(|c| c == CONDITION_FAILED || c == CONFLICT) => Err(Error::Stale),
                _ => Err(self.upstream("TransactWriteItems", err)),
            },
        }
    }

    async fn changes_due(&self, now: Timestamp, limit: usize) -> Result<Vec<ChangeRecord>> {
        // Reads from a global secondary index are only eventually consistent ("All reads from GSIs
        // and streams are eventually consistent", Amazon DynamoDB Developer Guide, "DynamoDB read
        // consistency": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html),
        // so a hit may describe a write that has since been replaced (DESIGN.md: a stale index read).
        // Each hit is read again from the table with a strongly consistent GetItem, and kept only
        // if its `check_at` is still at or before `now`. A record that became due an instant ago
        // and is not in the index yet comes in a later run.
        let mut due = Vec::new();
        let mut start: Option<Item> = None;
        while due.len() < limit {
            let page = i32::try_from(limit - due.len()).unwrap_or(i32::MAX).min(1000);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :pk AND gsi1sk <= :upto")
                .expression_attribute_values(":pk", s(CHANGE_DUE))
                .expression_attribute_values(":upto", s(up_to(now)))
                .set_exclusive_start_key(start.take())
                .scan_index_forward(true)
                .limit(page)
                .send()
                .await
                .map_err(|e| self.upstream("Query", e))?;
            for hit in out.items.unwrap_or_default() {
                let Some(item) = self.get_item(string(&hit, "pk", "change_due")?.to_string()).await? else { continue };
                let record: ChangeRecord = decode_data(&item, "change")?;
                if record.check_at.is_some_and(|at| at <= now) && due.len() < limit {
                    due.push(record);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        // The index orders by the time it was written with; the table's may differ if it moved.
        due.sort_by_cached_key(|r| (r.check_at, change_pk(&r.key)));
        Ok(due)
    }

    async fn changes_touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, ChangeKey)>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>> {
        self.changes_touched_between(since, until, after, limit).await
    }
}
