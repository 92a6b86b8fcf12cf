//! Audit evidence (DESIGN.md "Audit evidence"): the keyed hash chain over a record's history.
//!
//! Each entry's `hash` is hex HMAC-SHA256(evidence key, previous hash ‖ the entry's canonical JSON),
//! the first entry's "previous hash" being the record's id; the record keeps the head (entry count
//! and last hash). Whoever can write the store but does not hold the key cannot edit, remove,
//! insert or reorder an entry, nor rewrite the head, without `verify` naming where.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::keys::KeyBytes;
use crate::model::HistoryEntry;
use crate::token::hex;

mod anchors;
mod sealing;
mod sealing_changes;
pub use anchors::{ANCHOR_PREFIX, anchor_line, anchored, check_anchor, parse_anchors};
pub use sealing::SealingStore;
pub use sealing_changes::SealingChanges;

/// Where a record's history chain ends: how many entries it has and the last entry's hash (hex).
/// Empty for a record written before chaining.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub count: u64,
    pub hash: String,
}

/// The key history chains are sealed with (`GATEHOUSE_EVIDENCE_KEY`): 32 bytes, kept apart from the
/// store like the link key; and the keys it replaced (`GATEHOUSE_EVIDENCE_KEYS_RETIRED`), which
/// seal nothing new but still verify the entries they sealed, so the key can be rotated. Its Debug
/// output is redacted.
#[derive(Clone)]
pub struct EvidenceKey {
    current: KeyBytes,
    retired: Vec<KeyBytes>,
}

impl EvidenceKey {
    /// A fresh random key (the demo makes one and keeps it beside its data folder).
    pub fn generate() -> Self {
        Self { current: KeyBytes::generate(), retired: Vec::new() }
    }

    /// Standard base64 (or base64url) of exactly 32 bytes, as `openssl rand -base64 32` prints it.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        KeyBytes::from_base64(text).map(|current| Self { current, retired: Vec::new() })
    }

    /// This key, still verifying what the `retired` keys sealed.
    pub fn with_retired(self, retired: impl IntoIterator<Item = EvidenceKey>) -> Self {
        let retired = retired.into_iter().flat_map(|k| std::iter::once(k.current).chain(k.retired)).collect();
        Self { retired, ..self }
    }

    /// How many retired keys it still verifies with.
    pub fn retired_count(&self) -> usize {
        self.retired.len()
    }

    /// Standard base64 of the key, for the demo to keep it in a file.
    pub fn to_base64(&self) -> String {
        self.current.to_base64()
    }

    /// hex HMAC-SHA256(key, previous ‖ canonical JSON of `entry` without its hash), with the
    /// current key.
    fn link<E: Chained>(&self, previous: &str, entry: &E) -> String {
        link_with(&self.current, previous, &canonical_entry(entry))
    }

    /// Whether `hash` links `entry` to `previous` under the current key or a retired one.
    fn links<E: Chained>(&self, previous: &str, entry: &E, hash: &str) -> bool {
        let canonical = canonical_entry(entry);
        std::iter::once(&self.current)
            .chain(&self.retired)
            .any(|key| bool::from(link_with(key, previous, &canonical).as_bytes().ct_eq(hash.as_bytes())))
    }
}

fn link_with(key: &KeyBytes, previous: &str, canonical: &str) -> String {
    hex(&key.hmac(&[previous.as_bytes(), canonical.as_bytes()]))
}

impl std::fmt::Debug for EvidenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvidenceKey(<redacted>)")
    }
}

/// An entry of a record's history that the chain covers: a request's `HistoryEntry` or a change's
/// `ChangeEntry`.
pub trait Chained: Serialize + Clone {
    fn hash(&self) -> Option<&str>;
    fn set_hash(&mut self, hash: Option<String>);
    /// Whether this entry is the one that creates its record (a record created since chaining
    /// has no unsealed entries before it).
    fn opens_record(&self) -> bool;
}

impl Chained for HistoryEntry {
    fn hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }
    fn set_hash(&mut self, hash: Option<String>) {
        self.hash = hash;
    }
    fn opens_record(&self) -> bool {
        self.from.is_none()
    }
}

/// What is hashed of an entry: its JSON without `hash`, keys sorted. Fields absent when empty
/// (`proof`) stay absent, so a field added later the same way leaves earlier hashes valid.
pub fn canonical_entry<E: Chained>(entry: &E) -> String {
    let mut unsealed = entry.clone();
    unsealed.set_hash(None);
    // An entry is plain data: serialising it cannot fail.
    let value = serde_json::to_value(&unsealed).unwrap_or_default();
    crate::usecases::intake::canonical_json(&value)
}

/// Seals `entries` onto the chain ending at `head` of the record `record_id`: sets each entry's
/// `hash` and moves `head` past them. The first entry of a record chains to the record's id.
pub fn seal<E: Chained>(key: &EvidenceKey, record_id: &str, head: &mut ChainHead, entries: &mut [E]) {
    for entry in entries {
        let previous = if head.count == 0 { record_id } else { head.hash.as_str() };
        let hash = key.link(previous, entry);
        head.count += 1;
        head.hash.clone_from(&hash);
        entry.set_hash(Some(hash));
    }
}

/// Where a chain is broken: the entry (0-based index into the history as stored), or, when the
/// entries verify but the record's head does not match them, the index just past the last entry
/// that agrees with the head (the history's length when entries are missing at its end).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history entry {entry}: {reason}")]
pub struct ChainBreak {
    pub entry: usize,
    pub reason: String,
}

/// What `verify` found on a history that is not broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Entries covered by the chain (the head's count).
    pub chained: u64,
    /// Entries before them written before chaining (no `hash`): not covered, so unverified. A
    /// record written wholly before chaining has only these and an empty head.
    pub unchained: usize,
}

/// Checks `entries` (as stored, oldest first) against the chain of `record_id` and its `head`.
/// An entry verifies under the current key or any retired one: a rotation leaves the chains whole.
///
/// Entries without a hash are accepted only as the record's first entries, before its first
/// sealed one, and only when that sealed entry is not a creation (`opens_record`): a record created
/// since chaining has no unsealed entries at all. They are counted as `unchained`, not as broken.
pub fn verify<E: Chained>(
    key: &EvidenceKey,
    record_id: &str,
    entries: &[E],
    head: &ChainHead,
) -> Result<Verified, ChainBreak> {
    let broken = |entry: usize, reason: String| Err(ChainBreak { entry, reason });
    let first_sealed = entries.iter().position(|e| e.hash().is_some()).unwrap_or(entries.len());
    if first_sealed > 0 && entries.get(first_sealed).is_some_and(Chained::opens_record) {
        return broken(0, format!("has no hash, yet comes before the record's sealed creation (entry {first_sealed})"));
    }
    let mut previous = record_id.to_string();
    for (i, entry) in entries.iter().enumerate().skip(first_sealed) {
        let Some(hash) = entry.hash() else {
            return broken(i, "has no hash, after the chain began: it was added outside Gatehouse".into());
        };
        if !key.links(&previous, entry, hash) {
            return broken(
                i,
                "its hash does not match: it was edited, or an entry before it was removed, inserted or moved".into(),
            );
        }
        previous = hash.to_string();
    }
    let chained = (entries.len() - first_sealed) as u64;
    if head.count != chained {
        let (at, what) = if head.count > chained {
            (entries.len(), "entries were removed from its end")
        } else {
            (first_sealed + head.count as usize, "the record's head was set back")
        };
        return broken(
            at,
            format!("the record's head counts {} entries, the history has {chained}: {what}", head.count),
        );
    }
    if chained > 0 && !bool::from(head.hash.as_bytes().ct_eq(previous.as_bytes())) {
        return broken(entries.len(), "the record's head hash is not its last entry's: the head was rewritten".into());
    }
    if chained == 0 && !head.hash.is_empty() {
        return broken(0, "the record's head has a hash but no entry is chained".into());
    }
    Ok(Verified { chained, unchained: first_sealed })
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::model::Status;

    const ID: &str = "0190e8d4-0000-7000-8000-000000000001";

    fn key() -> EvidenceKey {
        EvidenceKey::from_base64("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=").unwrap()
    }

    fn entry(from: Option<Status>, to: Status, actor: &str) -> HistoryEntry {
        HistoryEntry {
            at: Timestamp::from_second(1_800_000_000).unwrap(),
            actor: actor.into(),
            from,
            to,
            note: None,
            proof: None,
            hash: None,
        }
    }

    fn history() -> Vec<HistoryEntry> {
        vec![
            entry(None, Status::PendingApproval, "servicenow"),
            entry(Some(Status::PendingApproval), Status::Approved, "ops@example.com"),
            entry(Some(Status::Approved), Status::Provisioning, "worker"),
            entry(Some(Status::Provisioning), Status::Active, "worker"),
        ]
    }

    fn sealed() -> (Vec<HistoryEntry>, ChainHead) {
        let mut entries = history();
        let mut head = ChainHead::default();
        // Sealed in two writes, as a store would.
        let (first, rest) = entries.split_at_mut(1);
        seal(&key(), ID, &mut head, first);
        seal(&key(), ID, &mut head, rest);
        (entries, head)
    }

    fn break_at(entries: &[HistoryEntry], head: &ChainHead) -> usize {
        verify(&key(), ID, entries, head).unwrap_err().entry
    }

    #[test]
    fn a_sealed_history_verifies_and_its_head_is_the_last_hash() {
        let (entries, head) = sealed();
        assert_eq!(head.count, 4);
        assert_eq!(Some(&head.hash), entries[3].hash.as_ref());
        assert!(entries.iter().all(|e| e.hash.as_ref().is_some_and(|h| h.len() == 64)));
        assert_eq!(verify(&key(), ID, &entries, &head), Ok(Verified { chained: 4, unchained: 0 }));
        // Sealing in one write gives the same chain.
        let mut at_once = history();
        let mut head2 = ChainHead::default();
        seal(&key(), ID, &mut head2, &mut at_once);
        assert_eq!((at_once, head2), (entries, head));
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (mut entries, head) = sealed();
        entries[1].actor = "mallory@example.com".into();
        assert_eq!(break_at(&entries, &head), 1);
        let (mut entries, head) = sealed();
        entries[2].note = Some("added later".into());
        assert_eq!(break_at(&entries, &head), 2);
    }

    #[test]
    fn removed_inserted_and_moved_entries_break_the_chain() {
        let (mut entries, head) = sealed();
        entries.remove(1);
        assert_eq!(break_at(&entries, &head), 1, "removed");
        let (mut entries, head) = sealed();
        let copy = entries[1].clone();
        entries.insert(2, copy);
        assert_eq!(break_at(&entries, &head), 2, "a sealed entry copied in");
        let (mut entries, head) = sealed();
        entries.insert(3, entry(Some(Status::Provisioning), Status::Provisioning, "mallory"));
        assert_eq!(break_at(&entries, &head), 3, "an unsealed entry inserted");
        let (mut entries, head) = sealed();
        entries.swap(1, 2);
        assert_eq!(break_at(&entries, &head), 1, "reordered");
        let (mut entries, head) = sealed();
        entries.insert(0, entry(None, Status::PendingApproval, "mallory"));
        assert_eq!(break_at(&entries, &head), 0, "an unsealed entry before the sealed creation");
    }

    #[test]
    fn a_head_that_does_not_match_is_named() {
        let (mut entries, head) = sealed();
        entries.truncate(2);
        let err = verify(&key(), ID, &entries, &head).unwrap_err();
        assert_eq!(err.entry, 2, "{err}");
        assert!(err.reason.contains("removed"), "{err}");
        let (entries, mut head) = sealed();
        head.count = 3;
        assert_eq!(break_at(&entries, &head), 3, "head set back");
        let (entries, mut head) = sealed();
        head.hash = entries[2].hash.clone().unwrap();
        assert_eq!(break_at(&entries, &head), 4, "head hash rewritten");
        // Truncated and the head rewritten to match: the chain verifies (anchors outside catch it).
        let (mut entries, _) = sealed();
        entries.truncate(2);
        let head = ChainHead { count: 2, hash: entries[1].hash.clone().unwrap() };
        assert!(verify(&key(), ID, &entries, &head).is_ok());
    }

    #[test]
    fn another_key_or_record_does_not_verify() {
        let (entries, head) = sealed();
        assert_eq!(verify(&EvidenceKey::generate(), ID, &entries, &head).unwrap_err().entry, 0);
        assert_eq!(verify(&key(), "0190e8d4-0000-7000-8000-000000000002", &entries, &head).unwrap_err().entry, 0);
    }

    #[test]
    fn history_from_before_chaining_is_unchained_not_broken() {
        let entries = history();
        assert_eq!(verify(&key(), ID, &entries, &ChainHead::default()), Ok(Verified { chained: 0, unchained: 4 }));
        assert_eq!(
            verify::<HistoryEntry>(&key(), ID, &[], &ChainHead::default()),
            Ok(Verified { chained: 0, unchained: 0 })
        );
        // A head that claims entries the history lacks is broken.
        assert_eq!(break_at(&entries, &ChainHead { count: 1, hash: "ab".into() }), 4);
        // An old record written on after chaining began: the old entries stay unchained.
        let mut entries = history();
        let mut head = ChainHead::default();
        seal(&key(), ID, &mut head, &mut entries[2..]);
        assert_eq!(verify(&key(), ID, &entries, &head), Ok(Verified { chained: 2, unchained: 2 }));
    }

    /// After a rotation the chains sealed with the old key verify while it is kept as retired, and
    /// new entries are sealed with the new key only; without the old key they are broken.
    #[test]
    fn a_rotated_key_verifies_old_and_new_entries_while_the_old_one_is_retired() {
        let old = key();
        let new = EvidenceKey::generate();
        let rotated = new.clone().with_retired([old.clone()]);
        assert_eq!(rotated.retired_count(), 1);
        let mut entries = history();
        let mut head = ChainHead::default();
        seal(&old, ID, &mut head, &mut entries[..2]);
        seal(&rotated, ID, &mut head, &mut entries[2..]);
        assert_eq!(verify(&rotated, ID, &entries, &head), Ok(Verified { chained: 4, unchained: 0 }));
        assert_eq!(verify(&new, ID, &entries, &head).unwrap_err().entry, 0, "the old entries need the old key");
        assert_eq!(
            verify(&old, ID, &entries, &head).unwrap_err().entry,
            2,
            "the new ones were sealed with the new key"
        );
        // Retired keys of a retired key are kept; an edit is still named.
        let again = EvidenceKey::generate().with_retired([rotated]);
        assert_eq!(again.retired_count(), 2);
        assert!(verify(&again, ID, &entries, &head).is_ok());
        entries[1].actor = "mallory@example.com".into();
        assert_eq!(verify(&again, ID, &entries, &head).unwrap_err().entry, 1);
    }

    #[test]
    fn the_key_is_32_bytes_of_base64_and_never_printed() {
        let k = key();
        assert!(!format!("{k:?}").contains("q83v"));
        assert_eq!(EvidenceKey::from_base64(&k.to_base64()).unwrap().to_base64(), k.to_base64());
        assert!(EvidenceKey::from_base64("c2hvcnQ=").unwrap_err().contains("32 bytes"));
        assert!(EvidenceKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn the_canonical_form_leaves_out_the_hash_and_sorts_keys() {
        let (entries, _) = sealed();
        let text = canonical_entry(&entries[1]);
        assert!(!text.contains("hash"), "{text}");
        assert!(text.starts_with("{\"actor\":\"ops@example.com\",\"at\":"), "{text}");
    }
}
