//! Who is who: comparing people's addresses the way a mail system routes them, and refusing text
//! that could make two different strings look alike (Unicode format and bidi controls).

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::{Error, Result};

/// The mailbox an address reaches: Unicode NFC, lower case, and the local part's `+tag` removed
/// (`Ada+vm@Example.com` and `ada@example.com` reach the same person).
pub fn mailbox(address: &str) -> String {
    let address: String = address.trim().nfc().collect::<String>().to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split_once('+').map_or(local, |(base, _)| base);
            format!("{local}@{domain}")
        }
        None => address,
    }
}

/// Whether two addresses reach the same mailbox.
pub fn same_person(a: &str, b: &str) -> bool {
    mailbox(a) == mailbox(b)
}

/// Refuses Unicode format characters (category Cf: zero-width characters, bidi embeddings,
/// overrides and isolates, the BOM, tags), which can make a text read otherwise than it compares.
pub fn check_visible_text(field: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| c.general_category() == GeneralCategory::Format) {
        Some(c) => Err(Error::invalid(
            field,
            format!("must not contain invisible formatting or bidi characters (found U+{:04X})", u32::from(c)),
        )),
        None => Ok(()),
    }
}

/// `check_visible_text` over every string in a JSON value (keys included), naming the field by
/// its path (`metadata.cost_center`).
pub fn check_visible_json(field: &str, value: &serde_json::Value) -> Result<()> {
    match value {
        serde_json::Value::String(s) => check_visible_text(field, s),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, v)| check_visible_json(&format!("{field}[{i}]"), v))
        }
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let path = format!("{field}.{k}");
            check_visible_text(&path, k)?;
            check_visible_json(&path, v)
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_by_mailbox() {
        assert!(same_person("approver@demo.invalid", "Approver+x@Demo.Invalid"));
        assert!(same_person(" ada@example.com", "ada+vm+2@example.com"));
        // "é" precomposed and decomposed are one letter.
        assert!(same_person("jos\u{e9}@example.com", "jose\u{301}@example.com"));
        assert!(!same_person("ada@example.com", "ada2@example.com"));
        assert!(!same_person("ada@example.com", "ada@example.org"));
    }

    #[test]
    fn format_and_bidi_characters_are_refused() {
        for bad in ["web\u{200b}01", "\u{202e}gnp.exe", "a\u{2066}b\u{2069}", "\u{feff}x", "soft\u{ad}hyphen"] {
            let err = check_visible_text("image", bad).unwrap_err();
            assert!(err.to_string().contains("image"), "{err}");
        }
        assert!(check_visible_text("name", "Zoë Ångström 李").is_ok());
        let v = serde_json::json!({"cost_center": "CC\u{200d}42"});
        let err = check_visible_json("metadata", &v).unwrap_err();
        assert!(err.to_string().contains("metadata.cost_center"), "{err}");
    }
}
