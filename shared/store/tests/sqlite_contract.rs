use std::sync::Arc;

use domain::ports::Store;
use gatehouse_store::{SqliteStore, store_contract};

store_contract!(async { Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn Store> }.await);

#[tokio::test]
async fn a_file_store_keeps_its_records_across_reopening() {
    let dir = std::env::temp_dir().join(format!("gatehouse-store-{}", uuid::Uuid::new_v4()));
    let path = dir.join("gatehouse.db");
    let r = gatehouse_store::contract::sample_request("0123456789abcdef0123456789abcdef");
    {
        let store = SqliteStore::open(&path).unwrap();
        let h = domain::model::HistoryEntry {
            at: r.created_at,
            actor: "t".into(),
            from: None,
            to: r.status,
            note: None,
            proof: None,
            hash: None,
        };
        store.create(r.clone(), h, vec![], vec![]).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get(&r.id).await.unwrap(), Some(r));
    std::fs::remove_dir_all(dir).unwrap();
}

mod changes {
    use std::sync::Arc;

    use domain::changes::ChangeRecords;
    use gatehouse_store::{SqliteStore, change_records_contract};

    change_records_contract!(async { Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn ChangeRecords> }.await);
}
