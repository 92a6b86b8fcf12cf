//! History items (`REQ#{id}` / `EVT#{at}#{uuidv7}`) and their order: the chain's, for sealed entries
//! (DESIGN.md "Audit evidence"), and the conditions that keep one head from being extended twice.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::Result;
use domain::model::{HistoryEntry, RequestId};
use domain::ports::RequestRead;

use crate::{Item, decode_data, json, key, s, sortable};

/// A history entry; `chain_seq` is its place in its request's chain when it is sealed.
pub(crate) fn history_item(id: &RequestId, entry: &HistoryEntry, chain_seq: Option<u64>) -> Result<Item> {
    // The UUIDv7 keeps entries with the same time apart, in the order they were written.
    let sk = format!("EVT#{}#{}", sortable(entry.at), uuid::Uuid::now_v7());
    let mut item = key(format!("REQ#{id}"), sk);
    item.insert("type".into(), s("history"));
    item.insert("data".into(), s(json(entry)?));
    if let Some(seq) = chain_seq {
        item.insert("chain_seq".into(), AttributeValue::N(seq.to_string()));
    }
    Ok(item)
}

/// The items of `entries`, written onto a chain of `from` entries: each sealed one numbered next.
pub(crate) fn history_items(id: &RequestId, entries: &[HistoryEntry], from: u64) -> Result<Vec<Item>> {
    let mut seq = from;
    entries
        .iter()
        .map(|entry| {
            let place = entry.hash.is_some().then(|| {
                seq += 1;
                seq
            });
            history_item(id, entry, place)
        })
        .collect()
}

/// The condition that the stored chain still has `count` entries (a request written before
/// chaining has no `chain_count`: it counts 0).
pub(crate) fn chain_still(count: u64) -> &'static str {
    if count == 0 { "(attribute_not_exists(chain_count) OR chain_count = :chain)" } else { "chain_count = :chain" }
}

/// Where a history item sorts: entries written before chaining (no `chain_seq`) first, in key
/// order (time, then write order), then the sealed ones in chain order. Sealed entries are not
/// sorted by time: two writers' clocks, or one write's entries, need not agree with the chain.
pub(crate) fn chain_order(item: &Item) -> Option<u64> {
    match item.get("chain_seq") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

impl crate::DynamoStore {
    /// A request's whole partition in one strongly consistent Query: its `META`, its history
    /// (`EVT#…`, in chain order) and its messages (`MSG#…`, oldest first). A partition past one
    /// page (1 MB) comes in several, which a write could come between; the caller checks the
    /// chain against the head and reads again then (`Store::read_request`).
    pub(crate) async fn read_whole(&self, id: &RequestId) -> Result<Option<RequestRead>> {
        let items = self.query_all(None, "pk = :pk", vec![(":pk", format!("REQ#{id}"))], usize::MAX).await?;
        let sk = |item: &Item| item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let Some(meta) = items.iter().find(|item| sk(item) == "META") else { return Ok(None) };
        let mut history: Vec<&Item> = items.iter().filter(|item| sk(item).starts_with("EVT#")).collect();
        history.sort_by_key(|item| chain_order(item));
        Ok(Some(RequestRead {
            request: decode_data(meta, "request")?,
            messages: items
                .iter()
                .filter(|item| sk(item).starts_with("MSG#"))
                .map(|item| decode_data(item, "message"))
                .collect::<Result<_>>()?,
            history: history.into_iter().map(|item| decode_data(item, "history")).collect::<Result<_>>()?,
        }))
    }
}
