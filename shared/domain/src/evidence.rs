//! Audit evidence (DESIGN.md "Audit evidence"): the keyed hash chain over a record's history.

use serde::{Deserialize, Serialize};

/// Where a record's history chain ends: how many entries it has and the last entry's hash (hex).
/// Empty for a record written before chaining.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub count: u64,
    pub hash: String,
}
