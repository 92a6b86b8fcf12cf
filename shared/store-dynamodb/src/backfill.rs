//! Brings a table written before the audit export's index up to date (`gatehouse migrate`): request
//! and change items written by an earlier version lack `gsi2pk` / `gsi2sk`, so the export (which
//! walks `gsi2`) would not find them until their next write. The SQLite store does the same at open
//! (shared/store/src/touched.rs); a DynamoDB table is shared by every function, so here it is a
//! step an operator runs once after the upgrade.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::Result;
use domain::changes::ChangeRecord;
use domain::model::Request;

use crate::messages::condition_failed;
use crate::{DynamoStore, Item, decode_data, s, sortable, string, touched};

/// What a backfill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backfilled {
    /// Request and change items found without the index's keys.
    pub found: usize,
    pub requests: usize,
    pub changes: usize,
    /// Items written by Gatehouse between the scan and the update: their write gave them the keys.
    pub written_meanwhile: usize,
}

/// Items scanned per call.
const SCAN_PAGE: i32 = 500;

impl DynamoStore {
    /// Gives every request and change record item that lacks them its `gsi2pk` and `gsi2sk`, from
    /// the record's `updated_at`, as its next write would. One strongly consistent scan of the
    /// table, a page at a time, keeping only such items; each update is conditioned on the item
    /// still lacking the key and still having the version read, so a record written meanwhile
    /// (whose write set the keys) is left alone. Safe to run again, and while Gatehouse runs.
    pub async fn backfill_export_index(&self) -> Result<Backfilled> {
        let mut done = Backfilled::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "sk = :meta AND attribute_not_exists(gsi2pk) AND (begins_with(pk, :req) OR begins_with(pk, :chg))",
                )
                .expression_attribute_values(":meta", s("META"))
                .expression_attribute_values(":req", s("REQ#"))
                .expression_attribute_values(":chg", s("CHG#"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .limit(SCAN_PAGE)
                .send()
                .await
                .map_err(|e| self.upstream("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                done.found += 1;
                let (gsi2pk, gsi2sk, is_request) = export_keys(&item)?;
                let version = item.get("version").cloned().unwrap_or_else(|| AttributeValue::N("0".into()));
                let update = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", item["pk"].clone())
                    .key("sk", item["sk"].clone())
                    .update_expression("SET gsi2pk = :gsi2pk, gsi2sk = :gsi2sk")
                    .condition_expression("attribute_not_exists(gsi2pk) AND version = :version")
                    .expression_attribute_values(":gsi2pk", s(gsi2pk))
                    .expression_attribute_values(":gsi2sk", s(gsi2sk))
                    .expression_attribute_values(":version", version)
                    .send()
                    .await;
                match update {
                    Ok(_) if is_request => done.requests += 1,
                    Ok(_) => done.changes += 1,
                    Err(e) if condition_failed(&e) => done.written_meanwhile += 1,
                    Err(e) => return Err(self.upstream("UpdateItem", e)),
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(done),
            }
        }
    }
}

/// The `gsi2pk` and `gsi2sk` a write of this request or change item gives it, and whether it is a
/// request.
fn export_keys(item: &Item) -> Result<(String, String, bool)> {
    let pk = string(item, "pk", "backfilled")?;
    if pk.starts_with("REQ#") {
        let r: Request = decode_data(item, "request")?;
        Ok((touched::month_partition(r.updated_at), format!("{}#{}", sortable(r.updated_at), r.id), true))
    } else {
        let c: ChangeRecord = decode_data(item, "change")?;
        Ok((touched::change_month_partition(c.updated_at), format!("{}#{pk}", sortable(c.updated_at)), false))
    }
}
