//! The CI gate's change records in the SQLite store: one row per (project, sha, environment) in
//! `changes`, the `ChangeRecord` as JSON in `data`, its `sys_id` and `version` beside it for the
//! lookups and conditions, `check_at` (fixed-width RFC 3339) for the sweeper's due list, and
//! `updated_ns` (`updated_at` in nanoseconds, indexed with the key) for the audit export's walk.
//!
//! A declared child of `sqlite` (it uses the store's connection and helpers).

use async_trait::async_trait;
use domain::changes::{ChangeKey, ChangeRecord, ChangeRecords};
use domain::{Error, Result};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::touched::{TouchedTable, ns};
use super::{SqliteStore, db, json, parse};

fn change_key(key: &ChangeKey) -> String {
    key.storage_key()
}

/// `check_at` as the `changes.check_at` column holds it: RFC 3339 in UTC with nine fractional
/// digits, fixed width, so it compares as text exactly as the times do (the DynamoDB store's key
/// format, too).
fn sortable(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

/// Brings a `changes` table from before `check_at` up to date: adds the column, fills it from the
/// records (whose JSON may already carry the field), and makes the sweeper's index. In one
/// immediate transaction, so two processes opening the same database do not both add the column.
pub(super) fn migrate_changes(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db("migrating the schema"))?;
    let has_check_at: bool = tx
        .query_row("SELECT COUNT(*) > 0 FROM pragma_table_info('changes') WHERE name = 'check_at'", [], |row| {
            row.get(0)
        })
        .map_err(db("migrating the schema"))?;
    if !has_check_at {
        tx.execute("ALTER TABLE changes ADD COLUMN check_at TEXT", []).map_err(db("migrating the schema"))?;
        let rows: Vec<(String, String)> = {
            let mut stmt = tx.prepare("SELECT key, data FROM changes").map_err(db("migrating the schema"))?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(db("migrating the schema"))?
                .collect::<rusqlite::Result<_>>()
                .map_err(db("migrating the schema"))?
        };
        for (key, data) in rows {
            let record: ChangeRecord = parse(&data)?;
            if let Some(at) = record.check_at {
                tx.execute("UPDATE changes SET check_at = ?1 WHERE key = ?2", params![sortable(at), key])
                    .map_err(db("migrating the schema"))?;
            }
        }
    }
    tx.execute("CREATE INDEX IF NOT EXISTS changes_due ON changes (check_at, key) WHERE check_at IS NOT NULL", [])
        .map_err(db("migrating the schema"))?;
    migrate_touched_changes(&tx)?;
    tx.commit().map_err(db("migrating the schema"))
}

/// Adds `updated_ns` to a `changes` table from before the audit export, fills it from the records,
/// and makes its index (within the caller's transaction).
fn migrate_touched_changes(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let what = "migrating the schema";
    let exists: bool = tx
        .query_row("SELECT COUNT(*) > 0 FROM pragma_table_info('changes') WHERE name = 'updated_ns'", [], |row| {
            row.get(0)
        })
        .map_err(db(what))?;
    if !exists {
        tx.execute("ALTER TABLE changes ADD COLUMN updated_ns INTEGER", []).map_err(db(what))?;
    }
    let unfilled: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT key, data FROM changes WHERE updated_ns IS NULL").map_err(db(what))?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(db(what))?;
        rows.collect::<rusqlite::Result<_>>().map_err(db(what))?
    };
    for (key, data) in unfilled {
        let record: ChangeRecord = parse(&data)?;
        tx.execute("UPDATE changes SET updated_ns = ?1 WHERE key = ?2", params![ns(record.updated_at), key])
            .map_err(db(what))?;
    }
    tx.execute("CREATE INDEX IF NOT EXISTS changes_updated ON changes (updated_ns, key)", []).map_err(db(what))?;
    Ok(())
}

#[async_trait]
impl ChangeRecords for SqliteStore {
    async fn get_change(&self, key: &ChangeKey) -> Result<Option<ChangeRecord>> {
        let key = change_key(key);
        self.run(move |conn| {
            let data: Option<String> = conn
                .query_row("SELECT data FROM changes WHERE key = ?1", [&key], |row| row.get(0))
                .optional()
                .map_err(db("reading a change"))?;
            data.map(|d| parse(&d)).transpose()
        })
        .await
    }

    async fn change_by_sys_id(&self, sys_id: &str) -> Result<Option<ChangeRecord>> {
        let sys_id = sys_id.to_string();
        self.run(move |conn| {
            let data: Option<String> = conn
                .query_row("SELECT data FROM changes WHERE sys_id = ?1 AND sys_id <> ''", [&sys_id], |row| row.get(0))
                .optional()
                .map_err(db("reading a change"))?;
            data.map(|d| parse(&d)).transpose()
        })
        .await
    }

    async fn put_change(&self, record: &ChangeRecord, expected_version: Option<u64>) -> Result<()> {
        let record = record.clone();
        self.run(move |conn| {
            let key = change_key(&record.key);
            let data = json(&record)?;
            let check_at = record.check_at.map(sortable);
            let updated = ns(record.updated_at);
            let changed = match expected_version {
                None => conn
                    .execute(
                        "INSERT INTO changes (key, sys_id, version, data, check_at, updated_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (key) DO NOTHING",
                        params![key, record.sys_id, record.version as i64, data, check_at, updated],
                    )
                    .map_err(db("writing a change"))?,
                Some(v) => conn
                    .execute(
                        "UPDATE changes SET sys_id = ?2, version = ?3, data = ?4, check_at = ?5, updated_ns = ?6
                         WHERE key = ?1 AND version = ?7",
                        params![key, record.sys_id, record.version as i64, data, check_at, updated, v as i64],
                    )
                    .map_err(db("writing a change"))?,
            };
            if changed == 0 { Err(Error::Stale) } else { Ok(()) }
        })
        .await
    }

    async fn changes_due(&self, now: Timestamp, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT data FROM changes WHERE check_at IS NOT NULL AND check_at <= ?1 ORDER BY check_at, key LIMIT ?2",
                )
                .map_err(db("querying due changes"))?;
            let rows = stmt
                .query_map(params![sortable(now), i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(db("querying due changes"))?;
            rows.map(|r| r.map_err(db("querying due changes")).and_then(|d| parse(&d))).collect()
        })
        .await
    }

    async fn changes_touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, ChangeKey)>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>> {
        let after = after.map(|(at, key)| (at, change_key(&key)));
        self.touched_rows(CHANGES, since, until, after, limit).await
    }
}

const CHANGES: TouchedTable = TouchedTable { table: "changes", key: "key", what: "listing the changes of a period" };

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A database from before `check_at` gets the column, filled from the records, at open.
    #[tokio::test]
    async fn a_changes_table_from_before_check_at_is_brought_up_to_date() {
        let dir = std::env::temp_dir().join(format!("gatehouse-sqlite-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gatehouse.db");
        let now = Timestamp::now();
        // Written before the field existed, and one written with it in the JSON but no column.
        let old = crate::contract::change_record("01d");
        let mut old_json = serde_json::to_value(&old).unwrap();
        old_json.as_object_mut().unwrap().remove("check_at");
        let mut due = crate::contract::change_record("02d");
        due.check_at = Some(now - jiff::SignedDuration::from_mins(1));
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE changes (key TEXT PRIMARY KEY, sys_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL);",
            )
            .unwrap();
            for (rec, data) in [(&old, old_json.to_string()), (&due, serde_json::to_string(&due).unwrap())] {
                conn.execute(
                    "INSERT INTO changes (key, sys_id, version, data) VALUES (?1, '', 1, ?2)",
                    params![change_key(&rec.key), data],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get_change(&old.key).await.unwrap(), Some(old.clone()));
        assert_eq!(store.changes_due(now, 10).await.unwrap(), vec![due.clone()]);
        drop(store);
        // Opening again finds the column and changes nothing.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.changes_due(now, 10).await.unwrap(), vec![due]);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
