use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::evidence::ChainHead;
use domain::model::{HistoryEntry, MessageClaim, OutboxMessage, Request, RequestId, Status};
use domain::ports::{Created, MAX_WRITE_ITEMS, MessageCounts, RequestRead, Store, Write, chain_extended, create_items};
use domain::token::{TOKEN_RETENTION, TokenHash, TokenRecord};
use domain::{Error, Result};
use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, params};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    source_key TEXT NOT NULL UNIQUE,
    due_at INTEGER,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_due ON requests (status, due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS history (
    request_id TEXT NOT NULL REFERENCES requests (id),
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    used_at INTEGER,
    purge_after INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    next_attempt_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (next_attempt_at);
CREATE TABLE IF NOT EXISTS changes (
    key TEXT PRIMARY KEY,
    sys_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    check_at TEXT
);
CREATE INDEX IF NOT EXISTS changes_sys_id ON changes (sys_id) WHERE sys_id <> '';
CREATE TABLE IF NOT EXISTS sign_ins (
    state_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_ins_expiry ON sign_ins (expires_at);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
";

/// Approver sign-ins and sessions (`domain::signin::SignIns`), in the `sign_ins` and `sessions` tables.
#[path = "sign_ins.rs"]
mod sign_ins;

/// Owed messages: claims, delivery, dead letters (the `Store` methods on messages).
#[path = "messages.rs"]
mod messages;

/// The CI gate's change records (`domain::changes::ChangeRecords`), in the `changes` table.
#[path = "changes.rs"]
mod changes;

/// The requests touched in a period (the audit export): `updated_ns` and its index.
#[path = "touched.rs"]
mod touched;

/// One connection behind a mutex: SQLite serialises writers anyway, and every operation here is a
/// short transaction run off the async threads.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn db(context: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::internal(format!("SQLite store: {context}"), e)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal("SQLite store: encoding a record", e))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::internal("SQLite store: decoding a record", e))
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// SQLite's own files beside the database: WAL, shared memory, rollback journal.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

impl SqliteStore {
    /// Opens (or creates) the database at `path`. A missing folder is created 0700 and the
    /// database 0600 (on unix); SQLite creates its `-wal` and `-shm` files with the database's
    /// permissions (sqlite3.c, `findCreateFileMode` and `unixOpenSharedMemory`), and any that an
    /// older version left wider are narrowed to 0600 here.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Self::create_private_dir(dir)?;
        }
        private_file(path)?;
        Self::init(Connection::open(path).map_err(db("opening the database"))?)
    }

    /// Creates `dir` (and missing parents) readable by this user only (0700 on unix). A folder
    /// that already exists is left as it is, with a warning when others may read it: it may be
    /// one an operator manages.
    pub fn create_private_dir(dir: &Path) -> Result<()> {
        let fail = |e: std::io::Error| Error::internal(format!("cannot create {}", dir.display()), e);
        if dir.is_dir() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(dir).map_err(fail)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        dir = %dir.display(),
                        mode = format!("{:o}", mode & 0o777),
                        "the data folder is open to other users; `chmod 700` it (Gatehouse creates it 0700)"
                    );
                }
            }
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            // Every folder `recursive` creates gets this mode (std DirBuilderExt::mode).
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(fail)
    }

    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(db("opening the database"))?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db("setting the busy timeout"))?;
        conn.execute_batch(SCHEMA).map_err(db("creating the schema"))?;
        changes::migrate_changes(&mut conn)?;
        messages::migrate_messages(&mut conn)?;
        touched::migrate_touched(&mut conn)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// The most recent requests, newest first (for the demo portal; not part of the port).
    pub async fn recent(&self, limit: usize) -> Result<Vec<Request>> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT data FROM requests ORDER BY id DESC LIMIT ?1")
                .map_err(db("listing requests"))?;
            let rows = stmt.query_map([limit as i64], |row| row.get::<_, String>(0)).map_err(db("listing requests"))?;
            rows.map(|r| r.map_err(db("listing requests")).and_then(|d| parse(&d))).collect()
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::internal("SQLite store: worker thread failed", e))?
    }
}

/// Creates the database file 0600 when missing, and narrows it and its companions to 0600 (unix).
fn private_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let fail = |e: std::io::Error| Error::internal(format!("cannot create {}", path.display()), e);
        // `mode` applies only when the file is created (std OpenOptionsExt::mode).
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(fail)?;
        let mut companions = vec![path.to_path_buf()];
        companions.extend(COMPANIONS.iter().map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        }));
        for file in companions {
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| Error::internal(format!("cannot make {} private", file.display()), e))?;
                }
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, COMPANIONS);
    Ok(())
}

fn insert_history(tx: &Transaction, id: &RequestId, entries: &[HistoryEntry]) -> Result<()> {
    for entry in entries {
        tx.execute(
            "INSERT INTO history (request_id, seq, data)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM history WHERE request_id = ?1), ?2)",
            params![id.as_str(), json(entry)?],
        )
        .map_err(db("writing history"))?;
    }
    Ok(())
}

fn insert_tokens(tx: &Transaction, tokens: &[TokenRecord]) -> Result<()> {
    for t in tokens {
        let purge_after =
            t.expires_at.saturating_add(TOKEN_RETENTION).map_err(|e| Error::internal("token expiry", e))?;
        tx.execute(
            "INSERT INTO tokens (hash, request_id, used_at, purge_after, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.hash.as_str(), t.request_id.as_str(), t.used_at.map(ms), ms(purge_after), json(t)?],
        )
        .map_err(db("writing a token"))?;
    }
    Ok(())
}

fn insert_messages(tx: &Transaction, messages: &[OutboxMessage]) -> Result<()> {
    for m in messages {
        tx.execute(
            "INSERT INTO messages (id, request_id, next_attempt_at, dead_at, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![m.id, m.request_id.as_str(), ms(m.next_attempt_at), m.dead_at.map(ms), json(m)?],
        )
        .map_err(db("writing an owed message"))?;
    }
    Ok(())
}

/// Every store keeps to DynamoDB's limit of items per transaction, so a write too large for it
/// fails here too, in tests and on a single box alike.
fn within_write_limit(items: usize) -> Result<()> {
    if items > MAX_WRITE_ITEMS {
        return Err(Error::internal_msg(format!(
            "SQLite store: a write of {items} records is over the limit of {MAX_WRITE_ITEMS} per write"
        )));
    }
    Ok(())
}

/// Requests `ids`, each with its messages and history, in one read transaction: one snapshot.
fn read_whole(conn: &mut Connection, ids: &[RequestId]) -> Result<Vec<Option<RequestRead>>> {
    let tx = conn.transaction().map_err(db("reading a request"))?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let read = match request_by(&tx, "id", id.as_str())? {
            Some(request) => {
                let messages = messages::of_request_in(&tx, id)?;
                let history = history_of(&tx, id)?;
                Some(RequestRead { request, messages, history })
            }
            None => None,
        };
        found.push(read);
    }
    tx.finish().map_err(db("reading a request"))?;
    Ok(found)
}

fn history_of(conn: &Connection, id: &RequestId) -> Result<Vec<HistoryEntry>> {
    let mut stmt = conn
        .prepare_cached("SELECT data FROM history WHERE request_id = ?1 ORDER BY seq")
        .map_err(db("reading history"))?;
    let rows = stmt.query_map([id.as_str()], |row| row.get::<_, String>(0)).map_err(db("reading history"))?;
    rows.map(|r| r.map_err(db("reading history")).and_then(|d| parse(&d))).collect()
}

fn request_by(conn: &Connection, column: &str, key: &str) -> Result<Option<Request>> {
    let sql = format!("SELECT data FROM requests WHERE {column} = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(db("reading a request"))?;
    let data: Option<String> = stmt.query_row([key], |row| row.get(0)).optional().map_err(db("reading a request"))?;
    data.map(|d| parse(&d)).transpose()
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(
        &self,
        request: Request,
        history: HistoryEntry,
        tokens: Vec<TokenRecord>,
        messages: Vec<OutboxMessage>,
    ) -> Result<Created> {
        within_write_limit(create_items(tokens.len(), messages.len()))?;
        self.run(move |conn| {
            let key = request.source_key();
            let tx = conn.transaction().map_err(db("starting a transaction"))?;
            let inserted = tx.execute(
                "INSERT INTO requests (id, status, version, source_key, due_at, data, updated_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    request.id.as_str(),
                    request.status.as_str(),
                    request.version as i64,
                    key,
                    request.due_at.map(ms),
                    json(&request)?,
                    touched::ns(request.updated_at)
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::ConstraintViolation => {
                    drop(tx);
                    return match request_by(conn, "source_key", &key)? {
                        Some(existing) => Ok(Created::Existing(existing)),
                        None => Err(Error::Conflict(format!("request id {} already exists", request.id))),
                    };
                }
                Err(e) => return Err(db("creating a request")(e)),
            }
            insert_history(&tx, &request.id, std::slice::from_ref(&history))?;
            insert_tokens(&tx, &tokens)?;
            insert_messages(&tx, &messages)?;
            tx.commit().map_err(db("committing a new request"))?;
            Ok(Created::New(request))
        })
        .await
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>> {
        let id = id.clone();
        self.run(move |conn| request_by(conn, "id", id.as_str())).await
    }

    async fn find_by_source(&self, source_key: &str) -> Result<Option<Request>> {
        let key = source_key.to_string();
        self.run(move |conn| request_by(conn, "source_key", &key)).await
    }

    async fn history(&self, id: &RequestId) -> Result<Vec<HistoryEntry>> {
        let id = id.clone();
        self.run(move |conn| history_of(conn, &id)).await
    }

    /// One read transaction: one snapshot of the file, even with another process writing it.
    async fn read_request(&self, id: &RequestId) -> Result<Option<RequestRead>> {
        let id = id.clone();
        self.run(move |conn| Ok(read_whole(conn, std::slice::from_ref(&id))?.pop().flatten())).await
    }

    /// The whole page in one read transaction and one trip to the worker thread.
    async fn read_requests(&self, ids: Vec<RequestId>) -> Result<Vec<Option<RequestRead>>> {
        self.run(move |conn| read_whole(conn, &ids)).await
    }

    async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>> {
        let hash = hash.clone();
        self.run(move |conn| {
            let data: Option<String> = conn
                .query_row("SELECT data FROM tokens WHERE hash = ?1", [hash.as_str()], |row| row.get(0))
                .optional()
                .map_err(db("reading a token"))?;
            data.map(|d| parse(&d)).transpose()
        })
        .await
    }

    async fn apply(&self, write: Write) -> Result<Request> {
        within_write_limit(write.items())?;
        let chain_from = chain_extended(&write);
        self.run(move |conn| {
            let Write { request, expected_version, history, use_token, new_tokens, messages } = write;
            let tx = conn.transaction().map_err(db("starting a transaction"))?;
            let changed = tx
                .execute(
                    "UPDATE requests SET status = ?1, version = ?2, due_at = ?3, data = ?4, updated_ns = ?8
                     WHERE id = ?5 AND version = ?6 AND COALESCE(json_extract(data, '$.chain.count'), 0) = ?7",
                    params![
                        request.status.as_str(),
                        request.version as i64,
                        request.due_at.map(ms),
                        json(&request)?,
                        request.id.as_str(),
                        expected_version as i64,
                        chain_from as i64,
                        touched::ns(request.updated_at)
                    ],
                )
                .map_err(db("updating a request"))?;
            if changed == 0 {
                return Err(Error::Stale);
            }
            if let Some(hash) = use_token {
                let data: Option<String> = tx
                    .query_row(
                        "SELECT data FROM tokens WHERE hash = ?1 AND request_id = ?2 AND used_at IS NULL",
                        params![hash.as_str(), request.id.as_str()],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(db("reading a token"))?;
                let Some(data) = data else { return Err(Error::Stale) };
                let mut record: TokenRecord = parse(&data)?;
                record.used_at = Some(request.updated_at);
                tx.execute(
                    "UPDATE tokens SET used_at = ?1, data = ?2 WHERE hash = ?3",
                    params![ms(request.updated_at), json(&record)?, hash.as_str()],
                )
                .map_err(db("using a token"))?;
            }
            insert_history(&tx, &request.id, &history)?;
            insert_tokens(&tx, &new_tokens)?;
            insert_messages(&tx, &messages)?;
            tx.commit().map_err(db("committing a transition"))?;
            Ok(request)
        })
        .await
    }

    async fn due(&self, status: Status, now: Timestamp, limit: usize) -> Result<Vec<Request>> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT data FROM requests WHERE status = ?1 AND due_at IS NOT NULL AND due_at <= ?2 ORDER BY due_at LIMIT ?3",
                )
                .map_err(db("querying due requests"))?;
            let rows = stmt
                .query_map(params![status.as_str(), ms(now), limit as i64], |row| row.get::<_, String>(0))
                .map_err(db("querying due requests"))?;
            rows.map(|r| r.map_err(db("querying due requests")).and_then(|d| parse(&d))).collect()
        })
        .await
    }

    async fn messages_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.due_messages(now, limit).await
    }

    async fn claim_message(
        &self,
        request: &RequestId,
        id: &str,
        claim: &MessageClaim,
        now: Timestamp,
    ) -> Result<Option<OutboxMessage>> {
        self.claim(request, id, claim, now).await
    }

    async fn message_sent(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        history: Option<HistoryEntry>,
    ) -> Result<()> {
        self.sent(message, claim, history).await
    }

    async fn message_sent_chained(
        &self,
        message: &OutboxMessage,
        claim: &MessageClaim,
        entry: HistoryEntry,
        from: &ChainHead,
    ) -> Result<()> {
        self.sent_chained(message, claim, entry, from).await
    }

    async fn message_failed(&self, message: &OutboxMessage, claim: &MessageClaim) -> Result<()> {
        self.failed(message, claim).await
    }

    async fn messages_of(&self, request: &RequestId) -> Result<Vec<OutboxMessage>> {
        self.of_request(request).await
    }

    async fn revive_message(&self, message: &OutboxMessage) -> Result<()> {
        self.revive(message).await
    }

    async fn message_counts(&self) -> Result<MessageCounts> {
        self.counts().await
    }

    async fn touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, RequestId)>,
        limit: usize,
    ) -> Result<Vec<Request>> {
        let after = after.map(|(at, id)| (at, id.as_str().to_string()));
        self.touched_rows(touched::REQUESTS, since, until, after, limit).await
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!("gatehouse-sqlite-{}", uuid::Uuid::new_v4().simple()))
    }

    fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    }

    #[test]
    fn a_new_data_folder_is_0700_and_the_database_files_0600() {
        let root = temp();
        let dir = root.join("nested").join("data");
        let path = dir.join("gatehouse.db");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        // The schema was written in WAL mode: SQLite made its -wal and -shm files like the database.
        for suffix in ["-wal", "-shm"] {
            let companion = with_suffix(&path, suffix);
            assert!(companion.exists(), "{}", companion.display());
            assert_eq!(mode(&companion), 0o600, "{}", companion.display());
        }
        drop(store);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn files_an_older_version_left_open_are_narrowed() {
        let dir = temp();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gatehouse.db");
        drop(SqliteStore::open(&path).unwrap());
        let wal = with_suffix(&path, "-wal");
        std::fs::write(&wal, b"").unwrap();
        for file in [&path, &wal] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&wal), 0o600);
        // An existing folder is the operator's: left as it is (with a warning when it is open).
        assert_eq!(mode(&dir) & 0o700, 0o700);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
