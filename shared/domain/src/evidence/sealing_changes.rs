//! Sealing for change records, the one place their history is chained: a `ChangeRecords` that
//! seals the entries a write appends and refuses a write that would drop or edit one.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

use super::{ChainHead, EvidenceKey, seal};
use crate::changes::{ChangeEntry, ChangeKey, ChangeRecord, ChangeRecords};
use crate::error::{Error, Result};

/// Wraps change records: `put_change` reads the record at the expected version, checks that its
/// history is an unchanged beginning of the one written (taking the stored hashes and head), and
/// seals the entries after it onto the chain. A new entry that already carries a hash is refused,
/// so nothing sealed elsewhere can be slipped in (and the store is wrapped once, in `runtime`).
pub struct SealingChanges {
    inner: Arc<dyn ChangeRecords>,
    key: EvidenceKey,
}

impl SealingChanges {
    pub fn wrap(inner: Arc<dyn ChangeRecords>, key: EvidenceKey) -> Arc<dyn ChangeRecords> {
        Arc::new(SealingChanges { inner, key })
    }

    /// Takes the stored entries' hashes and head into `record`, refusing it when it does not keep
    /// every entry of `stored` as it was (its own copies may lack their hashes: a caller need not
    /// read the record back after writing it). Answers how many entries were stored.
    fn keep_history(stored: &ChangeRecord, record: &mut ChangeRecord) -> Result<usize> {
        let kept = record.history.len() >= stored.history.len()
            && record.history.iter().zip(&stored.history).all(|(mine, theirs)| {
                mine.hash.as_ref().is_none_or(|h| Some(h) == theirs.hash.as_ref())
                    && ChangeEntry { hash: theirs.hash.clone(), ..mine.clone() } == *theirs
            });
        if !kept {
            return Err(Error::internal_msg(format!(
                "refusing a write of change {} that drops or edits its history (it is only ever appended to)",
                record.key.record_id()
            )));
        }
        for (mine, theirs) in record.history.iter_mut().zip(&stored.history) {
            mine.hash.clone_from(&theirs.hash);
        }
        record.chain = stored.chain.clone();
        Ok(stored.history.len())
    }
}

#[async_trait]
impl ChangeRecords for SealingChanges {
    async fn put_change(&self, record: &ChangeRecord, expected_version: Option<u64>) -> Result<()> {
        let mut record = record.clone();
        let stored_entries = match expected_version {
            Some(version) => match self.inner.get_change(&record.key).await? {
                Some(stored) if stored.version == version => Self::keep_history(&stored, &mut record)?,
                // The write would lose its condition anyway.
                _ => return Err(Error::Stale),
            },
            None => {
                record.chain = ChainHead::default();
                0
            }
        };
        if record.history[stored_entries..].iter().any(|e| e.hash.is_some()) {
            return Err(Error::internal_msg(format!(
                "refusing a write of change {}: a new entry already carries a hash",
                record.key.record_id()
            )));
        }
        let id = record.key.record_id();
        seal(&self.key, &id, &mut record.chain, &mut record.history[stored_entries..]);
        self.inner.put_change(&record, expected_version).await
    }

    async fn get_change(&self, key: &ChangeKey) -> Result<Option<ChangeRecord>> {
        self.inner.get_change(key).await
    }
    async fn change_by_sys_id(&self, sys_id: &str) -> Result<Option<ChangeRecord>> {
        self.inner.change_by_sys_id(sys_id).await
    }
    async fn changes_due(&self, now: Timestamp, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.inner.changes_due(now, limit).await
    }
    async fn changes_touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, ChangeKey)>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>> {
        self.inner.changes_touched(since, until, after, limit).await
    }
}
