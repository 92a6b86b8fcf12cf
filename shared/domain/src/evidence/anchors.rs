//! Anchors (DESIGN.md "Audit evidence"): every note Gatehouse writes on a ServiceNow item or change,
//! and on a merge request, ends with the record's head as it stood then,
//! `gatehouse-chain: <count>:<hash>`. The systems of record keep those lines where Gatehouse's
//! operators cannot rewrite them, so a history cut short and given a new head, or a record
//! deleted, shows against them.

use super::ChainHead;

/// What starts an anchor line.
pub const ANCHOR_PREFIX: &str = "gatehouse-chain: ";

/// The anchor line of `head`: `gatehouse-chain: <count>:<hash>`.
pub fn anchor_line(head: &ChainHead) -> String {
    format!("{ANCHOR_PREFIX}{}:{}", head.count, head.hash)
}

/// `text` with the anchor of `head` as its last line (none for a record not chained yet).
pub fn anchored(text: &str, head: &ChainHead) -> String {
    if head.count == 0 {
        return text.to_string();
    }
    format!("{}\n\n{}", text.trim_end(), anchor_line(head))
}

/// Every anchor in `text` (a journal entry or a note body), in order. A line counts when, trimmed,
/// it is exactly `gatehouse-chain: <count>:<64 hex>`; anything else is not an anchor.
pub fn parse_anchors(text: &str) -> Vec<ChainHead> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix(ANCHOR_PREFIX)?;
            let (count, hash) = rest.split_once(':')?;
            let count = count.parse::<u64>().ok().filter(|c| *c > 0)?;
            let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            hex.then(|| ChainHead { count, hash: hash.to_string() })
        })
        .collect()
}

/// Checks one anchor against a record's chained entries' hashes as stored (oldest first; entries
/// from before chaining, without a hash, left out) and its head: chained entry number `count`
/// must still be there, with the anchored hash. The `Err` says what the anchor shows.
pub fn check_anchor(chained: &[&str], head: &ChainHead, anchor: &ChainHead) -> Result<(), String> {
    if anchor.count > head.count || anchor.count as usize > chained.len() {
        return Err(format!(
            "an anchor counts {} entries, the record now has {} (head {}): entries were removed from its end",
            anchor.count,
            chained.len(),
            head.count
        ));
    }
    if chained[anchor.count as usize - 1] != anchor.hash {
        return Err(format!(
            "chained entry {} no longer has the anchored hash: the history was rewritten",
            anchor.count
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0f2b8a0c9e1d3f4a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8";

    #[test]
    fn an_anchor_line_reads_back_and_nothing_else_is_one() {
        let head = ChainHead { count: 7, hash: HASH.into() };
        let text = anchored("Approved by ops@example.com.\n", &head);
        assert_eq!(text, format!("Approved by ops@example.com.\n\ngatehouse-chain: 7:{HASH}"));
        assert_eq!(parse_anchors(&text), vec![head.clone()]);
        assert_eq!(anchored("x", &ChainHead::default()), "x");
        let hashes = ["a".repeat(64), HASH.to_string(), "b".repeat(64)];
        let chained: Vec<&str> = hashes.iter().map(String::as_str).collect();
        let now = ChainHead { count: 3, hash: "b".repeat(64) };
        assert!(check_anchor(&chained, &now, &ChainHead { count: 2, hash: HASH.into() }).is_ok());
        let rewritten = check_anchor(&chained, &now, &ChainHead { count: 1, hash: HASH.into() });
        assert!(rewritten.unwrap_err().contains("rewritten"));
        let cut = check_anchor(&chained[..1], &ChainHead { count: 1, hash: "a".repeat(64) }, &head);
        assert!(cut.unwrap_err().contains("removed"));
        for not_one in [
            "gatehouse-chain: 0:".to_string() + HASH,
            "gatehouse-chain: 7:".to_string() + &HASH[..63],
            "gatehouse-chain: 7:".to_string() + &HASH.to_uppercase(),
            "gatehouse-chain: x:".to_string() + HASH,
            "see gatehouse-chain: 7:".to_string() + HASH,
        ] {
            assert!(parse_anchors(&not_one).is_empty(), "{not_one}");
        }
    }
}
