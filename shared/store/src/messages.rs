//! Owed messages in the SQLite store: one row per message in `messages`, the `OutboxMessage` as
//! JSON in `data`, and beside it the columns the conditions read: `next_attempt_at`,
//! `claimed_by` and `claimed_until` (epoch milliseconds) while a sender holds the row, `dead_at`
//! once the last attempt allowed failed. A claim is a conditional UPDATE on the row; removing or
//! updating the row is conditional on the claim, as on the DynamoDB item.
//!
//! A declared child of `sqlite` (it uses the store's connection and helpers).

use domain::evidence::ChainHead;
use domain::model::{HistoryEntry, MessageClaim, OutboxMessage, RequestId};
use domain::ports::MessageCounts;
use domain::{Error, Result};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, db, insert_history, json, ms, parse, request_by};

/// Brings a `messages` table from before claims and dead letters up to date: adds the columns
/// (left empty: every message is then pending and unclaimed) and the indexes. In one immediate
/// transaction, so two processes opening the same database do not both add a column.
pub(super) fn migrate_messages(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db("migrating the schema"))?;
    for (column, kind) in [("claimed_by", "TEXT"), ("claimed_until", "INTEGER"), ("dead_at", "INTEGER")] {
        let exists: bool = tx
            .query_row("SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = ?1", [column], |row| {
                row.get(0)
            })
            .map_err(db("migrating the schema"))?;
        if !exists {
            // Names from the list above, never from input.
            tx.execute(&format!("ALTER TABLE messages ADD COLUMN {column} {kind}"), [])
                .map_err(db("migrating the schema"))?;
        }
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS messages_of_request ON messages (request_id, id);
         CREATE INDEX IF NOT EXISTS messages_dead ON messages (dead_at) WHERE dead_at IS NOT NULL;",
    )
    .map_err(db("migrating the schema"))?;
    tx.commit().map_err(db("migrating the schema"))
}

fn rows(conn: &Connection, sql: &str, values: impl rusqlite::Params, what: &'static str) -> Result<Vec<OutboxMessage>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db(what))?;
    let rows = stmt.query_map(values, |row| row.get::<_, String>(0)).map_err(db(what))?;
    rows.map(|r| r.map_err(db(what)).and_then(|d| parse(&d))).collect()
}

/// The owed and dead messages of `request`, oldest first.
pub(super) fn of_request_in(conn: &Connection, request: &RequestId) -> Result<Vec<OutboxMessage>> {
    rows(
        conn,
        "SELECT data FROM messages WHERE request_id = ?1 ORDER BY id",
        [request.as_str()],
        "reading a request's messages",
    )
}

impl SqliteStore {
    pub(super) async fn due_messages(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            rows(
                conn,
                "SELECT data FROM messages
                 WHERE next_attempt_at <= ?1 AND dead_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ?1)
                 ORDER BY next_attempt_at, id LIMIT ?2",
                params![ms(now), limit],
                "querying owed messages",
            )
        })
        .await
    }

    pub(super) async fn claim(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>> {
        let (request, id, claim) = (request.clone(), id.to_string(), claim.clone());
        self.run(move |conn| {
            let data: Option<String> = conn
                .query_row(
                    "UPDATE messages SET claimed_by = ?1, claimed_until = ?2
                     WHERE id = ?3 AND request_id = ?4 AND dead_at IS NULL AND next_attempt_at <= ?5
                       AND (claimed_until IS NULL OR claimed_until <= ?5)
                     RETURNING data",
                    params![claim.holder, ms(claim.until), id, request.as_str(), ms(now)],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db("claiming a message"))?;
            data.map(|d| parse(&d)).transpose()
        })
        .await
    }

    pub(super) async fn sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()> {
        let (message, claim) = (message.clone(), claim.clone());
        self.run(move |conn| {
            let tx = conn.transaction().map_err(db("starting a transaction"))?;
            let removed = remove_claimed(&tx, &message, &claim)?;
            if removed == 0 {
                return Err(Error::Stale);
            }
            if let Some(entry) = history {
                insert_history(&tx, &message.request_id, &[entry])?;
            }
            tx.commit().map_err(db("committing a sent message"))
        })
        .await
    }

    /// `sent` with an entry sealed on `from`: the request's chain moves to it, its version stays.
    pub(super) async fn sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &ChainHead,
    ) -> Result<()> {
        let (message, claim, from) = (message.clone(), claim.clone(), from.clone());
        self.run(move |conn| {
            let tx = conn.transaction().map_err(db("starting a transaction"))?;
            let removed = remove_claimed(&tx, &message, &claim)?;
            let Some(mut request) = request_by(&tx, "id", message.request_id.as_str())? else {
                return Err(Error::Stale);
            };
            if removed == 0 || request.chain != from {
                return Err(Error::Stale);
            }
            request.chain = ChainHead { count: from.count + 1, hash: entry.hash.clone().unwrap_or_default() };
            tx.execute("UPDATE requests SET data = ?1 WHERE id = ?2", params![json(&request)?, request.id.as_str()])
                .map_err(db("moving a request's chain"))?;
            insert_history(&tx, &message.request_id, &[entry])?;
            tx.commit().map_err(db("committing a sent message"))
        })
        .await
    }

    pub(super) async fn failed(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<()> {
        let (message, claim) = (message.clone(), claim.clone());
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE messages SET next_attempt_at = ?1, dead_at = ?2, data = ?3, claimed_by = NULL, claimed_until = NULL
                     WHERE id = ?4 AND claimed_by = ?5 AND claimed_until = ?6",
                    params![
                        ms(message.next_attempt_at),
                        message.dead_at.map(ms),
                        json(&message)?,
                        message.id,
                        claim.holder,
                        ms(claim.until)
                    ],
                )
                .map_err(db("recording a failed attempt"))?;
            if changed == 0 { Err(Error::Stale) } else { Ok(()) }
        })
        .await
    }

    pub(super) async fn of_request(&self, request: &RequestId) -> Result<Vec<OutboxMessage>> {
        let request = request.clone();
        self.run(move |conn| of_request_in(conn, &request)).await
    }

    pub(super) async fn revive(&self, message: &OutboxMessage) -> Result<()> {
        let message = message.clone();
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE messages SET next_attempt_at = ?1, dead_at = ?2, data = ?3, claimed_by = NULL, claimed_until = NULL
                     WHERE id = ?4 AND request_id = ?5 AND dead_at IS NOT NULL",
                    params![
                        ms(message.next_attempt_at),
                        message.dead_at.map(ms),
                        json(&message)?,
                        message.id,
                        message.request_id.as_str()
                    ],
                )
                .map_err(db("reviving a message"))?;
            if changed == 0 { Err(Error::Stale) } else { Ok(()) }
        })
        .await
    }

    pub(super) async fn counts(&self) -> Result<MessageCounts> {
        self.run(move |conn| {
            let (pending, dead): (i64, i64) = conn
                .query_row(
                    "SELECT COALESCE(SUM(dead_at IS NULL), 0), COALESCE(SUM(dead_at IS NOT NULL), 0) FROM messages",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(db("counting messages"))?;
            Ok(MessageCounts { pending: pending.unsigned_abs(), dead: dead.unsigned_abs() })
        })
        .await
    }
}

/// Deletes a sent message while `claim` still holds it; how many rows went (0: the claim was lost).
fn remove_claimed(tx: &rusqlite::Transaction<'_>, message: &OutboxMessage, claim: &MessageClaim) -> Result<usize> {
    tx.execute(
        "DELETE FROM messages WHERE id = ?1 AND claimed_by = ?2 AND claimed_until = ?3",
        params![message.id, claim.holder, ms(claim.until)],
    )
    .map_err(db("removing a sent message"))
}

#[cfg(test)]
mod tests {
    use domain::ports::Store;

    use super::*;

    /// A database from before claims and dead letters gets the columns at open; its owed
    /// messages stay due and can be claimed, failed and revived.
    #[tokio::test]
    async fn a_messages_table_from_before_claims_is_brought_up_to_date() {
        let dir = std::env::temp_dir().join(format!("gatehouse-sqlite-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("gatehouse.db");
        let r = crate::contract::sample_request("0123456789abcdef0123456789abcdef");
        let notice =
            domain::mail::MailNotice { to: "ada@example.com".into(), template: domain::mail::MailTemplate::Received };
        let m = OutboxMessage::mail(&r.id, r.created_at, notice);
        {
            let store = SqliteStore::open(&path).unwrap();
            let history = crate::contract::created(&r);
            store.create(r.clone(), history, vec![], vec![m.clone()]).await.unwrap();
        }
        {
            // As the table was: no claim or dead columns, no index on them.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP INDEX messages_dead; DROP INDEX messages_of_request;
                 ALTER TABLE messages DROP COLUMN dead_at; ALTER TABLE messages DROP COLUMN claimed_by;
                 ALTER TABLE messages DROP COLUMN claimed_until;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let now = Timestamp::now();
        assert_eq!(store.messages_due(now, 10).await.unwrap(), vec![m.clone()]);
        let claim = MessageClaim::new(now, jiff::SignedDuration::from_mins(5));
        assert_eq!(store.claim_message(&r.id, &m.id, &claim, now).await.unwrap(), Some(m.clone()));
        let dead = OutboxMessage { attempts: 1, dead_at: Some(now), ..m.clone() };
        store.message_failed(&dead, &claim).await.unwrap();
        assert_eq!(store.message_counts().await.unwrap(), MessageCounts { pending: 0, dead: 1 });
        drop(store);
        // Opening again finds the columns and changes nothing.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.messages_of(&r.id).await.unwrap(), vec![dead]);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
