//! Change records: the contract, and how a change and its check time sit in the table and its index.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::Error;
use domain::changes::ChangeRecords;
use gatehouse_store_dynamodb::DynamoStore;
use jiff::Timestamp;
use store::change_records_contract;

use super::{client, endpoint, fresh_store, raw_item_at, sortable, text};

change_records_contract!(async { Arc::new(super::fresh_store().await) as Arc<dyn ChangeRecords> }.await);

fn change_pk(key: &domain::changes::ChangeKey) -> String {
    format!("CHG#{}#{}#{}", key.project_id, key.sha, key.environment)
}

#[tokio::test]
async fn a_changes_check_at_rides_on_its_own_item_beside_the_sys_id_index() {
    use domain::changes::ChangeRecords;

    let store = fresh_store().await;
    let now = Timestamp::now();
    let mut rec = store::contract::change_record(&uuid::Uuid::new_v4().simple().to_string());
    let pk = change_pk(&rec.key);
    store.put_change(&rec, None).await.unwrap();
    assert!(raw_item_at(&store, &pk, "DUE").await.is_none(), "a new change without check_at has no DUE item");

    rec.version = 2;
    rec.sys_id = uuid::Uuid::new_v4().simple().to_string();
    rec.check_at = Some(now - jiff::SignedDuration::from_mins(1));
    store.put_change(&rec, Some(1)).await.unwrap();
    let meta = raw_item_at(&store, &pk, "META").await.unwrap();
    assert_eq!(text(&meta, "type"), Some("change"));
    assert_eq!(
        text(&meta, "gsi1pk"),
        Some(format!("CHGSYS#{}", rec.sys_id).as_str()),
        "the sys_id keeps its index entry"
    );
    assert_eq!(text(&meta, "gsi1sk"), Some(pk.as_str()));
    let due = raw_item_at(&store, &pk, "DUE").await.unwrap();
    let at = sortable(rec.check_at.unwrap());
    assert_eq!(text(&due, "type"), Some("change_due"));
    assert_eq!(text(&due, "check_at"), Some(at.as_str()));
    assert_eq!(text(&due, "gsi1pk"), Some("CHGDUE"));
    assert_eq!(text(&due, "gsi1sk"), Some(format!("{at}#{pk}").as_str()));
    assert_eq!(store.changes_due(now, 10).await.unwrap(), vec![rec.clone()]);
    assert_eq!(store.change_by_sys_id(&rec.sys_id).await.unwrap(), Some(rec.clone()));

    // check_at cleared: the DUE item stays, out of the index; META keeps its sys_id entry.
    rec.version = 3;
    rec.check_at = None;
    store.put_change(&rec, Some(2)).await.unwrap();
    let due = raw_item_at(&store, &pk, "DUE").await.unwrap();
    assert!(!due.contains_key("gsi1pk") && !due.contains_key("gsi1sk") && !due.contains_key("check_at"));
    assert_eq!(raw_item_at(&store, &pk, "META").await.unwrap().get("gsi1pk"), meta.get("gsi1pk"));
    assert!(store.changes_due(Timestamp::MAX, 10).await.unwrap().is_empty());
}

/// What a lagging index shows (GSIs are eventually consistent) is checked against the table.
#[tokio::test]
async fn a_stale_index_entry_is_read_again_and_dropped() {
    use domain::changes::ChangeRecords;

    let store = fresh_store().await;
    let now = Timestamp::now();
    let mins = jiff::SignedDuration::from_mins;
    let record = |check_at| domain::changes::ChangeRecord {
        check_at,
        ..store::contract::change_record(&uuid::Uuid::new_v4().simple().to_string())
    };
    // In the table: one moved to the future, one with nothing left to do, one due.
    let moved = record(Some(now + mins(30)));
    let done = record(None);
    let due = record(Some(now - mins(1)));
    // And an index entry whose record is gone altogether.
    let gone = record(Some(now - mins(20)));
    for r in [&moved, &done, &due] {
        store.put_change(r, None).await.unwrap();
    }
    // The index still shows each of the first three earlier than `due`, as before their last write.
    for (r, minutes) in [(&moved, 10), (&done, 5), (&gone, 20)] {
        let pk = change_pk(&r.key);
        let at = sortable(now - mins(minutes));
        store
            .client()
            .put_item()
            .table_name(store.table())
            .item("pk", AttributeValue::S(pk.clone()))
            .item("sk", AttributeValue::S("DUE".into()))
            .item("type", AttributeValue::S("change_due".into()))
            .item("check_at", AttributeValue::S(at.clone()))
            .item("gsi1pk", AttributeValue::S("CHGDUE".into()))
            .item("gsi1sk", AttributeValue::S(format!("{at}#{pk}")))
            .send()
            .await
            .unwrap();
    }
    // The stale entries come first in the index and do not use up the limit.
    assert_eq!(store.changes_due(now, 1).await.unwrap(), vec![due.clone()]);
    assert_eq!(store.changes_due(now, 10).await.unwrap(), vec![due]);
}

#[tokio::test]
async fn change_write_failures_are_upstream_errors_naming_the_operation() {
    use domain::changes::ChangeRecords;

    let store = DynamoStore::new(client(&endpoint()), format!("gatehouse-missing-{}", uuid::Uuid::new_v4().simple()));
    let rec = store::contract::change_record("abc");
    for (operation, err) in [
        ("TransactWriteItems", store.put_change(&rec, None).await.unwrap_err()),
        ("Query", store.changes_due(Timestamp::now(), 10).await.unwrap_err()),
    ] {
        assert!(matches!(&err, Error::Upstream { detail, .. } if detail == &format!("{operation} failed")), "{err:?}");
    }
}
