//! The requests touched in a period (`Store::touched`, for the audit export) in the SQLite store:
//! `requests.updated_ns` holds each request's `updated_at` in nanoseconds since the epoch,
//! written with every write of the request, and the index `requests_updated` on
//! (`updated_ns`, `id`) answers a page of a period with a range scan that starts after the
//! previous page's last row.
//!
//! A declared child of `sqlite` (it uses the store's connection and helpers).

use domain::Result;
use domain::model::Request;
use jiff::Timestamp;
use rusqlite::{Connection, TransactionBehavior, params};

use super::{SqliteStore, db, parse};

/// `t` as the `updated_ns` column holds it. An i64 of nanoseconds reaches from 1677 to 2262;
/// a time beyond is held at the end it passed (no request is written then).
pub(super) fn ns(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_nanosecond() < 0 { i64::MIN } else { i64::MAX })
}

/// Brings a `requests` table from before the export up to date: adds `updated_ns`, fills it from
/// each request's `updated_at`, and creates the index. In one immediate transaction, so two
/// processes opening the same database do not both add the column.
pub(super) fn migrate_touched(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db("migrating the schema"))?;
    let exists: bool = tx
        .query_row("SELECT COUNT(*) > 0 FROM pragma_table_info('requests') WHERE name = 'updated_ns'", [], |row| {
            row.get(0)
        })
        .map_err(db("migrating the schema"))?;
    if !exists {
        tx.execute("ALTER TABLE requests ADD COLUMN updated_ns INTEGER", []).map_err(db("migrating the schema"))?;
    }
    let unfilled: Vec<(String, String)> = {
        let mut stmt =
            tx.prepare("SELECT id, data FROM requests WHERE updated_ns IS NULL").map_err(db("migrating the schema"))?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(db("migrating the schema"))?;
        rows.collect::<std::result::Result<_, _>>().map_err(db("migrating the schema"))?
    };
    for (id, data) in unfilled {
        let request: Request = parse(&data)?;
        tx.execute("UPDATE requests SET updated_ns = ?1 WHERE id = ?2", params![ns(request.updated_at), id])
            .map_err(db("migrating the schema"))?;
    }
    tx.execute("CREATE INDEX IF NOT EXISTS requests_updated ON requests (updated_ns, id)", [])
        .map_err(db("migrating the schema"))?;
    tx.commit().map_err(db("migrating the schema"))
}

/// A table whose rows carry `updated_ns` and are paged by (`updated_ns`, key): `requests` by `id`,
/// `changes` by `key`.
pub(super) struct TouchedTable {
    pub table: &'static str,
    pub key: &'static str,
    /// What the error says was being done.
    pub what: &'static str,
}

pub(super) const REQUESTS: TouchedTable =
    TouchedTable { table: "requests", key: "id", what: "listing the requests of a period" };

impl SqliteStore {
    /// One page of `table`'s rows last written in [`since`, `until`), after `after` (a row's
    /// `updated_at` and key), in (`updated_ns`, key) order.
    pub(super) async fn touched_rows<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: TouchedTable,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<T>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Without `after`, the page starts at `since` itself: every key sorts after the empty one.
        let (from_ns, from_key) = match after {
            Some((at, key)) => (ns(at), key),
            None => (ns(since), String::new()),
        };
        let TouchedTable { table, key, what } = table;
        let sql = format!(
            "SELECT data FROM {table}
             WHERE updated_ns >= ?1 AND updated_ns < ?2 AND (updated_ns, {key}) > (?3, ?4)
             ORDER BY updated_ns, {key} LIMIT ?5"
        );
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
            let rows = stmt
                .query_map(params![ns(since), ns(until), from_ns, from_key, limit], |row| row.get::<_, String>(0))
                .map_err(db(what))?;
            rows.map(|r| r.map_err(db(what)).and_then(|d| parse(&d))).collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use domain::ports::Store;

    use super::*;

    /// A database from before the export gets `updated_ns` at open, filled from the requests it
    /// holds, which the period then finds.
    #[tokio::test]
    async fn a_requests_table_from_before_the_export_is_brought_up_to_date() {
        let dir = std::env::temp_dir().join(format!("gatehouse-sqlite-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("gatehouse.db");
        let r = crate::contract::sample_request("0123456789abcdef0123456789abcdef");
        {
            let store = SqliteStore::open(&path).unwrap();
            let history = crate::contract::created(&r);
            store.create(r.clone(), history, vec![], vec![]).await.unwrap();
        }
        {
            // As the table was: no column, no index.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("DROP INDEX requests_updated; ALTER TABLE requests DROP COLUMN updated_ns;").unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let (since, until) = (r.updated_at, r.updated_at + jiff::SignedDuration::from_secs(1));
        assert_eq!(store.touched(since, until, None, 10).await.unwrap(), vec![r.clone()]);
        drop(store);
        // Opening again finds the column filled and changes nothing.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.touched(since, until, None, 10).await.unwrap(), vec![r]);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
