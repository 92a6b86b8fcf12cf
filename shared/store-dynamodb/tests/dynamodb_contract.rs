//! The store contract against moto (started single-threaded by ./tests/run.sh, or
//! `eval "$(tests/aws/start-moto.sh)"`), each test on a fresh table, plus what is particular to the
//! DynamoDB layout and its errors.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::Error;
use domain::model::{HistoryEntry, RequestId, Status};
use domain::ports::{Store, Write};
use domain::token::{ApprovalToken, TokenRecord};
use gatehouse_store_dynamodb::{DynamoStore, TTL_ATTRIBUTE, create_table, timeouts};
use jiff::Timestamp;
use store::contract::sample_request;
use store::store_contract;

fn endpoint() -> String {
    std::env::var("GATEHOUSE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_TEST_AWS_ENDPOINT is not set: the DynamoDB store tests need moto. Run ./tests/run.sh, \
             or eval \"$(tests/aws/start-moto.sh)\" before cargo test"
        )
    })
}

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "gatehouse-tests"))
        .endpoint_url(endpoint)
        .timeout_config(timeouts())
        .build();
    Client::from_conf(config)
}

async fn fresh_store() -> DynamoStore {
    let client = client(&endpoint());
    let table = format!("gatehouse-test-{}", uuid::Uuid::new_v4().simple());
    create_table(&client, &table).await.unwrap();
    DynamoStore::new(client, table)
}

store_contract!(async { Arc::new(fresh_store().await) as Arc<dyn Store> }.await);

// A test crate's root looks for its modules beside it, in tests/, where Cargo would build each file
// as a test crate of its own.
#[path = "dynamodb_contract/changes.rs"]
mod changes;
#[path = "dynamodb_contract/migrate.rs"]
mod migrate;
#[path = "dynamodb_contract/sign_ins.rs"]
mod sign_ins;

mod export {
    use std::sync::Arc;

    use domain::ports::Store;
    use store::export_contract;

    export_contract!(async { Arc::new(super::fresh_store().await) as Arc<dyn Store> }.await);
}

mod history {
    use std::sync::Arc;

    use domain::ports::Store;
    use store::history_contract;

    history_contract!(async { Arc::new(super::fresh_store().await) as Arc<dyn Store> }.await);

    /// One history item's `data` overwritten with PutItem: the next write through the watch
    /// names it.
    #[tokio::test]
    async fn the_watch_names_an_item_edited_between_writes() {
        let store = super::fresh_store().await;
        let raw = store.clone();
        store::contract::the_watch_names_an_entry_edited_between_writes(
            Arc::new(store) as Arc<dyn Store>,
            |id, entry| async move { super::edit_by_hand(&raw, &id, entry).await },
        )
        .await;
    }
}

/// Overwrites the `data` of request `id`'s history item holding `entry` with PutItem (its note
/// changed), as someone with write access to the table but not the evidence key could.
async fn edit_by_hand(raw: &DynamoStore, id: &domain::model::RequestId, entry: domain::model::HistoryEntry) {
    use aws_sdk_dynamodb::types::AttributeValue;
    use domain::model::HistoryEntry;

    let items = raw.history_items_of(id).await.unwrap();
    let mut item = items
        .into_iter()
        .find(|item| {
            let data = item.get("data").and_then(|d| d.as_s().ok()).unwrap();
            serde_json::from_str::<HistoryEntry>(data).unwrap().hash == entry.hash
        })
        .expect("the entry's item");
    let edited = HistoryEntry { note: Some("edited by hand".into()), ..entry };
    item.insert("data".into(), AttributeValue::S(serde_json::to_string(&edited).unwrap()));
    raw.client().put_item().table_name(raw.table()).set_item(Some(item)).send().await.unwrap();
}

mod chain {
    use std::sync::Arc;

    use domain::ports::Store;
    use store::chain_contract;

    chain_contract!(async { Arc::new(super::fresh_store().await) as Arc<dyn Store> }.await);

    /// One history item's `data` overwritten with PutItem, as someone with write access to the
    /// table but not the evidence key could: `verify` names that entry.
    #[tokio::test]
    async fn an_edited_history_item_is_named() {
        let store = super::fresh_store().await;
        let raw = store.clone();
        store::contract::an_edited_entry_is_named(Arc::new(store) as Arc<dyn Store>, |id, entry| async move {
            super::edit_by_hand(&raw, &id, entry).await
        })
        .await;
    }
}

fn created(r: &domain::model::Request) -> HistoryEntry {
    HistoryEntry {
        at: r.created_at,
        actor: "servicenow".into(),
        from: None,
        to: r.status,
        note: None,
        proof: None,
        hash: None,
    }
}

async fn raw_item(store: &DynamoStore, pk: String) -> Option<std::collections::HashMap<String, AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S("META".into()))
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn the_items_follow_the_designed_layout() {
    let store = fresh_store().await;
    let r = sample_request(&uuid::Uuid::new_v4().simple().to_string());
    let token = ApprovalToken::generate();
    let record = TokenRecord {
        hash: token.hash(),
        request_id: r.id.clone(),
        approver: "ops@example.com".into(),
        expires_at: r.expires_at,
        used_at: None,
        stage: 0,
        on_behalf_of: None,
    };
    store.create(r.clone(), created(&r), vec![record.clone()], vec![]).await.unwrap();

    let source = raw_item(&store, format!("SRC#servicenow#{}", r.source.sys_id)).await.unwrap();
    assert_eq!(source.get("request_id"), Some(&AttributeValue::S(r.id.to_string())));
    let tok = raw_item(&store, format!("TOK#{}", token.hash().as_str())).await.unwrap();
    let ttl = r.expires_at.as_second() + 30 * 24 * 3600;
    assert_eq!(tok.get(TTL_ATTRIBUTE), Some(&AttributeValue::N(ttl.to_string())));
    let req = raw_item(&store, format!("REQ#{}", r.id)).await.unwrap();
    assert_eq!(req.get("status"), Some(&AttributeValue::S("pending_approval".into())));
    assert_eq!(req.get("version"), Some(&AttributeValue::N("1".into())));
    assert!(req.contains_key("gsi1pk") && req.contains_key("gsi1sk"), "an open request is in the index");

    // A final state leaves the sweeper's index; the token records when it was used.
    let mut denied = r.clone();
    let h = denied.transition(Status::Denied, "ops@example.com", None, Timestamp::now()).unwrap();
    let w = Write {
        request: denied.clone(),
        expected_version: r.version,
        history: vec![h],
        use_token: Some(token.hash()),
        new_tokens: vec![],
        messages: vec![],
    };
    store.apply(w).await.unwrap();
    let req = raw_item(&store, format!("REQ#{}", r.id)).await.unwrap();
    assert_eq!(req.get("status"), Some(&AttributeValue::S("denied".into())));
    assert!(!req.contains_key("gsi1pk") && !req.contains_key("gsi1sk"));
    assert!(store.due(Status::Denied, Timestamp::MAX, 10).await.unwrap().is_empty());
    assert_eq!(store.token(&token.hash()).await.unwrap().unwrap().used_at, Some(denied.updated_at));
}

#[tokio::test]
async fn history_comes_back_in_time_order() {
    let store = fresh_store().await;
    let mut r = sample_request(&uuid::Uuid::new_v4().simple().to_string());
    r.due_at = None;
    let first = created(&r);
    store.create(r.clone(), first.clone(), vec![], vec![]).await.unwrap();
    let expected = r.version;
    let at = Timestamp::now();
    let h1 = r.transition(Status::Approved, "ops@example.com", Some("first".into()), at).unwrap();
    // Two entries at the same instant keep the order they were written in.
    let h2 = r.transition(Status::Provisioning, "provision", Some("second".into()), at).unwrap();
    let w = Write {
        request: r.clone(),
        expected_version: expected,
        history: vec![h1.clone(), h2.clone()],
        use_token: None,
        new_tokens: vec![],
        messages: vec![],
    };
    store.apply(w).await.unwrap();
    assert_eq!(store.history(&r.id).await.unwrap(), vec![first, h1, h2]);
    assert_eq!(store.get(&r.id).await.unwrap().unwrap().version, expected + 2);
    assert!(store.history(&RequestId::generate()).await.unwrap().is_empty());
}

#[tokio::test]
async fn due_and_messages_due_honour_the_limit() {
    let store = fresh_store().await;
    let now = Timestamp::now();
    let mut ids = Vec::new();
    for minutes in [30, 20, 10] {
        let mut r = sample_request(&uuid::Uuid::new_v4().simple().to_string());
        r.due_at = Some(now - jiff::SignedDuration::from_mins(minutes));
        let m = domain::model::OutboxMessage::mail(
            &r.id,
            now - jiff::SignedDuration::from_mins(minutes),
            domain::mail::MailNotice { to: "a@example.com".into(), template: domain::mail::MailTemplate::Received },
        );
        store.create(r.clone(), created(&r), vec![], vec![m]).await.unwrap();
        ids.push(r.id);
    }
    let due: Vec<_> = store.due(Status::PendingApproval, now, 2).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(due, ids[..2].to_vec());
    let owed: Vec<_> = store.messages_due(now, 2).await.unwrap().into_iter().map(|m| m.request_id).collect();
    assert_eq!(owed, ids[..2].to_vec());
    assert!(store.due(Status::PendingApproval, now, 0).await.unwrap().is_empty());
}

/// An owed message's item through its life: pending, held, failed, dead, revived, sent; a failure
/// reported after the send brings nothing back.
#[tokio::test]
async fn a_messages_item_says_where_it_stands() {
    use domain::model::{MessageClaim, OutboxMessage};

    let store = fresh_store().await;
    let r = sample_request(&uuid::Uuid::new_v4().simple().to_string());
    let m = OutboxMessage::mail(
        &r.id,
        r.created_at,
        domain::mail::MailNotice { to: "a@example.com".into(), template: domain::mail::MailTemplate::Received },
    );
    store.create(r.clone(), created(&r), vec![], vec![m.clone()]).await.unwrap();
    let (pk, sk) = (format!("REQ#{}", r.id), format!("MSG#{}", m.id));
    let item = || raw_item_at(&store, &pk, &sk);
    let pending = item().await.unwrap();
    assert_eq!(text(&pending, "type"), Some("message"));
    assert_eq!(text(&pending, "next_attempt_at"), Some(sortable(m.next_attempt_at).as_str()));
    assert_eq!(text(&pending, "gsi1pk"), Some("MSG"));
    assert_eq!(text(&pending, "gsi1sk"), Some(format!("{}#{}", sortable(m.next_attempt_at), m.id).as_str()));
    assert!(!pending.contains_key("claimed_by") && !pending.contains_key("dead"));

    // Held: the claim on the item, and in the index at the time the claim runs out.
    let now = Timestamp::now();
    let claim = MessageClaim::new(now, jiff::SignedDuration::from_mins(5));
    store.claim_message(&r.id, &m.id, &claim, now).await.unwrap().unwrap();
    let held = item().await.unwrap();
    assert_eq!(text(&held, "claimed_by"), Some(claim.holder.as_str()));
    assert_eq!(text(&held, "claimed_until"), Some(sortable(claim.until).as_str()));
    assert_eq!(text(&held, "gsi1sk"), Some(format!("{}#{}", sortable(claim.until), m.id).as_str()));

    // Dead: out of the senders' partition, into the dead one; the claim released.
    let dead = OutboxMessage { attempts: 20, last_error: Some("gone".into()), dead_at: Some(now), ..m.clone() };
    store.message_failed(&dead, &claim).await.unwrap();
    let item_dead = item().await.unwrap();
    assert_eq!(text(&item_dead, "dead"), Some(sortable(now).as_str()));
    assert_eq!(text(&item_dead, "gsi1pk"), Some("MSGDEAD"));
    assert!(!item_dead.contains_key("claimed_by") && !item_dead.contains_key("claimed_until"));

    // Revived: pending again, due at its new time.
    let again = now + jiff::SignedDuration::from_secs(1);
    let revived = OutboxMessage { dead_at: None, attempts: 0, next_attempt_at: again, ..dead };
    store.revive_message(&revived).await.unwrap();
    let item_revived = item().await.unwrap();
    assert!(!item_revived.contains_key("dead"));
    assert_eq!(text(&item_revived, "gsi1pk"), Some("MSG"));
    assert_eq!(text(&item_revived, "gsi1sk"), Some(format!("{}#{}", sortable(again), m.id).as_str()));

    let claim = MessageClaim::new(again, jiff::SignedDuration::from_mins(5));
    let claimed = store.claim_message(&r.id, &m.id, &claim, again).await.unwrap().unwrap();
    store.message_sent(&claimed, &claim, None).await.unwrap();
    assert!(item().await.is_none(), "sent is removed");
    assert!(matches!(store.message_failed(&claimed, &claim).await, Err(Error::Stale)), "a late report loses");
    assert!(item().await.is_none(), "and brings nothing back");
    assert_eq!(store.history(&r.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_upstream_error_naming_table_and_operation() {
    // Nothing listens on port 1: connection refused, retried by the SDK, bounded by the timeouts.
    let store = DynamoStore::new(client("http://127.0.0.1:1"), "gatehouse-unreachable".into());
    let started = std::time::Instant::now();
    let r = sample_request("0123456789abcdef0123456789abcdef");
    for (operation, err) in [
        ("GetItem", store.get(&r.id).await.unwrap_err()),
        ("TransactWriteItems", store.create(r.clone(), created(&r), vec![], vec![]).await.unwrap_err()),
        ("Query", store.due(Status::PendingApproval, Timestamp::now(), 10).await.unwrap_err()),
    ] {
        match err {
            Error::Upstream { system, detail, source } => {
                assert_eq!(system, "DynamoDB table gatehouse-unreachable");
                assert_eq!(detail, format!("{operation} failed"));
                assert!(source.is_some());
            }
            other => panic!("{operation}: expected an upstream error, got {other:?}"),
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(40), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_missing_table_is_an_upstream_error_too() {
    let store = DynamoStore::new(client(&endpoint()), format!("gatehouse-missing-{}", uuid::Uuid::new_v4().simple()));
    let err = store.get(&RequestId::generate()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Upstream { system, detail, .. }
            if system == &format!("DynamoDB table {}", store.table()) && detail == "GetItem failed"),
        "{err:?}"
    );
}

async fn raw_item_at(
    store: &DynamoStore,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn sortable(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

/// A string attribute's value.
fn text<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

#[tokio::test]
async fn a_leased_request_is_due_as_active_until_it_is_retired() {
    let store = fresh_store().await;
    let now = Timestamp::now();
    let mut r = sample_request(&uuid::Uuid::new_v4().simple().to_string());
    r.status = Status::Active;
    r.due_at = Some(now - jiff::SignedDuration::from_mins(1));
    r.retirement = Some(domain::model::Retirement {
        retire_at: now + jiff::SignedDuration::from_hours(2),
        length_secs: 86_400,
        extensions: 0,
        reminders_sent: 0,
    });
    store.create(r.clone(), created(&r), vec![], vec![]).await.unwrap();
    let req = raw_item(&store, format!("REQ#{}", r.id)).await.unwrap();
    assert_eq!(req.get("gsi1pk"), Some(&AttributeValue::S("DUE#active".into())));
    assert_eq!(store.due(Status::Active, now, 10).await.unwrap(), vec![r.clone()], "lease and all");

    // Extended: due later, the lease's fields written with the version check.
    let mut extended = r.clone();
    let lease = extended.retirement.as_mut().unwrap();
    lease.retire_at += jiff::SignedDuration::from_hours(24);
    lease.extensions = 1;
    extended.due_at = Some(now + jiff::SignedDuration::from_hours(1));
    extended.version += 1;
    store.apply(Write::new(extended.clone(), r.version)).await.unwrap();
    assert!(store.due(Status::Active, now, 10).await.unwrap().is_empty());
    assert_eq!(store.get(&r.id).await.unwrap().unwrap().retirement, extended.retirement);
    assert!(matches!(store.apply(Write::new(r.clone(), r.version)).await, Err(Error::Stale)));

    // Retired: a final state, out of the sweeper's index, the lease kept for the record.
    let mut retired = extended.clone();
    let h = retired.transition(Status::Retired, "sweeper", Some("lease ended".into()), Timestamp::now()).unwrap();
    store.apply(Write { history: vec![h], ..Write::new(retired.clone(), extended.version) }).await.unwrap();
    let req = raw_item(&store, format!("REQ#{}", r.id)).await.unwrap();
    assert_eq!(req.get("status"), Some(&AttributeValue::S("retired".into())));
    assert!(!req.contains_key("gsi1pk") && !req.contains_key("gsi1sk"));
    assert!(store.due(Status::Active, Timestamp::MAX, 10).await.unwrap().is_empty());
    let stored = store.get(&r.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.retirement), (Status::Retired, extended.retirement));
}
