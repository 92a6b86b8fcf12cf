use std::sync::Arc;

use domain::ports::Store;
use gatehouse_store::{SqliteStore, store_contract};

store_contract!(async { Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn Store> }.await);

/// A store in a file of its own (in a fresh folder, which the caller removes).
fn file_store(what: &str) -> (std::path::PathBuf, Arc<dyn Store>) {
    let dir = std::env::temp_dir().join(format!("gatehouse-{what}-{}", uuid::Uuid::new_v4()));
    let store = Arc::new(SqliteStore::open(&dir.join("gatehouse.db")).unwrap()) as Arc<dyn Store>;
    (dir, store)
}

/// Changes the note of request `id`'s history row holding `entry` with an UPDATE through a second
/// connection, as someone with the database file but not the evidence key could.
fn edit_by_hand(db: &std::path::Path, id: &domain::model::RequestId, entry: domain::model::HistoryEntry) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let changed = conn
        .execute(
            "UPDATE history SET data = json_set(data, '$.note', 'edited by hand')
             WHERE request_id = ?1 AND json_extract(data, '$.hash') = ?2",
            rusqlite::params![id.as_str(), entry.hash.unwrap()],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

mod chain {
    use std::sync::Arc;

    use domain::ports::Store;
    use gatehouse_store::{SqliteStore, chain_contract};

    chain_contract!(async { Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn Store> }.await);

    /// One history row's JSON changed with an UPDATE through a second connection, as someone
    /// with the database file but not the evidence key could: `verify` names that entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edited_history_row_is_named() {
        let (dir, store) = super::file_store("chain");
        let db = dir.join("gatehouse.db");
        gatehouse_store::contract::an_edited_entry_is_named(store, |id, entry| async move {
            super::edit_by_hand(&db, &id, entry)
        })
        .await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn a_file_store_keeps_its_records_across_reopening() {
    let dir = std::env::temp_dir().join(format!("gatehouse-store-{}", uuid::Uuid::new_v4()));
    let path = dir.join("gatehouse.db");
    let r = gatehouse_store::contract::sample_request("0123456789abcdef0123456789abcdef");
    {
        let store = SqliteStore::open(&path).unwrap();
        let h = gatehouse_store::contract::created(&r);
        store.create(r.clone(), h, vec![], vec![]).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get(&r.id).await.unwrap(), Some(r));
    std::fs::remove_dir_all(dir).unwrap();
}

mod history {
    use std::sync::Arc;

    use domain::ports::Store;
    use gatehouse_store::{SqliteStore, history_contract};

    history_contract!(async { Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn Store> }.await);

    /// One history row's note changed with an UPDATE through a second connection: the next write
    /// through the watch names it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_watch_names_a_row_edited_between_writes() {
        let (dir, store) = super::file_store("history");
        let db = dir.join("gatehouse.db");
        gatehouse_store::contract::the_watch_names_an_entry_edited_between_writes(store, |id, entry| async move {
            super::edit_by_hand(&db, &id, entry)
        })
        .await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}

mod export {
    use std::sync::Arc;

    use domain::ports::Store;
    use gatehouse_store::{SqliteStore, export_contract};

    export_contract!(async { Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn Store> }.await);
}

mod changes {
    use std::sync::Arc;

    use domain::changes::ChangeRecords;
    use gatehouse_store::{SqliteStore, change_records_contract};

    change_records_contract!(async { Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn ChangeRecords> }.await);
}
