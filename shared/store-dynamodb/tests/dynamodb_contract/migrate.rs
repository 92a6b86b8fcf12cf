//! `gatehouse-migrate` on a table an earlier version wrote: its request and change items lack the
//! export index's keys, so the export does not see them; after the tool runs it does, and a second
//! run finds nothing left to do.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::changes::ChangeRecords;
use domain::ports::Store;
use jiff::{SignedDuration, Timestamp};
use store::contract::{change_record, created, sample_request};

/// `gatehouse-migrate ARGS` against moto: exit code, stdout and stderr.
async fn migrate(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse-migrate"))
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL", super::endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn records_from_before_the_export_index_are_put_into_it() {
    let store = super::fresh_store().await;
    let since = Timestamp::now() - SignedDuration::from_mins(1);
    let until = Timestamp::now() + SignedDuration::from_hours(1);
    let r = sample_request("00000000000000000000000000000a11");
    store.create(r.clone(), created(&r), vec![], vec![]).await.unwrap();
    let change = change_record("a11");
    store.put_change(&change, None).await.unwrap();
    // As an earlier version wrote them: without gsi2pk and gsi2sk.
    let items = store.client().scan().table_name(store.table()).send().await.unwrap().items.unwrap_or_default();
    let mut stripped = 0;
    for item in items.iter().filter(|item| item.contains_key("gsi2pk")) {
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("REMOVE gsi2pk, gsi2sk")
            .send()
            .await
            .unwrap();
        stripped += 1;
    }
    assert_eq!(stripped, 2, "the request's and the change's META items");
    assert_eq!(store.touched(since, until, None, 10).await.unwrap(), vec![]);
    assert_eq!(store.changes_touched(since, until, None, 10).await.unwrap(), vec![]);

    let table = store.table().to_string();
    let (code, stdout, stderr) = migrate(&["--dynamodb-table", &table]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1 requests and 1 change records added"), "{stdout}");
    let found = store.touched(since, until, None, 10).await.unwrap();
    assert_eq!(found.iter().map(|f| &f.id).collect::<Vec<_>>(), [&r.id]);
    let changes = store.changes_touched(since, until, None, 10).await.unwrap();
    assert_eq!(changes.iter().map(|c| &c.key).collect::<Vec<_>>(), [&change.key]);
    // The keys are the ones a write of the request gives.
    let meta = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(format!("REQ#{}", r.id)))
        .key("sk", AttributeValue::S("META".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let month = r.updated_at.strftime("%Y-%m").to_string();
    assert_eq!(meta["gsi2pk"], AttributeValue::S(format!("UPD#{month}")));
    assert!(meta["gsi2sk"].as_s().unwrap().ends_with(&format!("#{}", r.id)), "{meta:?}");

    let (code, stdout, _) = migrate(&[&format!("--dynamodb-table={table}")]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("0 requests and 0 change records added"), "a second run has nothing to do: {stdout}");
    let (code, _, stderr) = migrate(&["--table", &table]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--dynamodb-table NAME"), "{stderr}");
    let (code, _, stderr) = migrate(&["--dynamodb-table", "no-such-table"]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no-such-table"), "{stderr}");
}
