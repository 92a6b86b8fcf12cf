//! Approver sign-ins and sessions in the SQLite store: one row per key in `sign_ins` (keyed by the
//! SHA-256 of the `state`) and `sessions` (keyed by the SHA-256 of the cookie), each with its
//! `expires_at` (epoch milliseconds) and the record as JSON in `data`.
//!
//! Rows are written once: a key that exists is `Error::Conflict`, never overwritten. Expiry is the
//! caller's to check. Like DynamoDB's TTL on the table's items, rows more than a day past their
//! expiry are removed, here whenever a new row of the same kind is written.
//!
//! A declared child of `sqlite` (it uses the store's connection and helpers).

use async_trait::async_trait;
use domain::signin::{ApproverSession, PendingSignIn, SignIns};
use domain::{Error, Result};
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, db, json, ms, parse};

/// How long past its expiry a row is kept (DynamoDB: `ttl` = expiry + 1 day).
const RETENTION: SignedDuration = SignedDuration::from_hours(24);

/// The two tables, named in code only (never from input).
#[derive(Clone, Copy)]
enum Kind {
    SignIn,
    Session,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::SignIn => "sign_ins",
            Kind::Session => "sessions",
        }
    }

    fn key_column(self) -> &'static str {
        match self {
            Kind::SignIn => "state_hash",
            Kind::Session => "id_hash",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::SignIn => "a sign-in",
            Kind::Session => "a session",
        }
    }
}

/// Inserts a row unless its key exists (then `Error::Conflict`), after removing rows of the same
/// kind more than `RETENTION` past their expiry; one transaction.
fn insert(conn: &mut Connection, kind: Kind, key: &str, expires_at: Timestamp, data: String) -> Result<()> {
    let (table, column) = (kind.table(), kind.key_column());
    let purge_before = Timestamp::now()
        .checked_sub(RETENTION)
        .map_err(|e| Error::internal("SQLite store: purge time out of range", e))?;
    let tx = conn.transaction().map_err(db("starting a transaction"))?;
    tx.execute(&format!("DELETE FROM {table} WHERE expires_at < ?1"), [ms(purge_before)])
        .map_err(db("purging expired sign-ins"))?;
    let inserted = tx
        .execute(
            &format!("INSERT INTO {table} ({column}, expires_at, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"),
            params![key, ms(expires_at), data],
        )
        .map_err(db("writing a sign-in"))?;
    if inserted == 0 {
        return Err(Error::Conflict(format!("{} with this key already exists", kind.what())));
    }
    tx.commit().map_err(db("committing a sign-in"))
}

#[async_trait]
impl SignIns for SqliteStore {
    async fn begin_sign_in(&self, state_hash: &str, pending: &PendingSignIn) -> Result<()> {
        let (key, expires_at, data) = (state_hash.to_string(), pending.expires_at, json(pending)?);
        self.run(move |conn| insert(conn, Kind::SignIn, &key, expires_at, data)).await
    }

    async fn take_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>> {
        let key = state_hash.to_string();
        // One statement reads and deletes (and the store's one connection runs one at a time), so
        // of two callbacks with the same state only one gets the row.
        self.run(move |conn| {
            let data: Option<String> = conn
                .query_row("DELETE FROM sign_ins WHERE state_hash = ?1 RETURNING data", [&key], |row| row.get(0))
                .optional()
                .map_err(db("taking a sign-in"))?;
            data.map(|d| parse(&d)).transpose()
        })
        .await
    }

    async fn put_session(&self, id_hash: &str, session: &ApproverSession) -> Result<()> {
        let (key, expires_at, data) = (id_hash.to_string(), session.expires_at, json(session)?);
        self.run(move |conn| insert(conn, Kind::Session, &key, expires_at, data)).await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<ApproverSession>> {
        let key = id_hash.to_string();
        self.run(move |conn| {
            let data: Option<String> = conn
                .query_row("SELECT data FROM sessions WHERE id_hash = ?1", [&key], |row| row.get(0))
                .optional()
                .map_err(db("reading a session"))?;
            data.map(|d| parse(&d)).transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use domain::signin::VerifiedIdentity;
    use domain::token::TokenHash;

    use super::*;

    fn pending(expires_at: Timestamp) -> PendingSignIn {
        PendingSignIn {
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            purpose: domain::signin::SignInPurpose::Approval { link: TokenHash::from_stored("ab".repeat(32)) },
            expires_at,
        }
    }

    fn session(expires_at: Timestamp) -> ApproverSession {
        ApproverSession {
            identity: VerifiedIdentity {
                issuer: "https://id.example.com".into(),
                subject: "s".into(),
                email: "ops@example.com".into(),
                amr: vec![],
            },
            expires_at,
        }
    }

    #[tokio::test]
    async fn rows_a_day_past_their_expiry_go_when_the_next_one_is_written() {
        let store = SqliteStore::in_memory().unwrap();
        let now = Timestamp::now();
        let long_gone = now - SignedDuration::from_hours(25);
        let recent = now - SignedDuration::from_hours(23);
        store.begin_sign_in("old", &pending(long_gone)).await.unwrap();
        store.begin_sign_in("recent", &pending(recent)).await.unwrap();
        store.put_session("old", &session(long_gone)).await.unwrap();
        store.put_session("recent", &session(recent)).await.unwrap();
        store.begin_sign_in("new", &pending(now)).await.unwrap();
        store.put_session("new", &session(now)).await.unwrap();
        assert!(store.take_sign_in("old").await.unwrap().is_none());
        assert!(store.take_sign_in("recent").await.unwrap().is_some(), "expiry is the caller's to check");
        assert_eq!(store.session("old").await.unwrap(), None);
        assert_eq!(store.session("recent").await.unwrap(), Some(session(recent)));
        // Each row carries its expiry.
        let expiry = store
            .run(|conn| {
                conn.query_row("SELECT expires_at FROM sessions WHERE id_hash = 'new'", [], |row| row.get::<_, i64>(0))
                    .map_err(db("reading"))
            })
            .await
            .unwrap();
        assert_eq!(expiry, now.as_millisecond());
    }
}
