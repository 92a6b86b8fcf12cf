//! The keys kept apart from the data: `GATEHOUSE_LINK_KEY` (approval links) and
//! `GATEHOUSE_EVIDENCE_KEY` (history chains). Each is base64 of 32 bytes, given directly or in a
//! file (`…_FILE`) that must not be inside the data dir: whoever can read the data must not also
//! hold the key.

use std::path::{Path, PathBuf};

use super::{ConfigError, Settings, bad};
use crate::evidence::EvidenceKey;
use crate::token::LinkKey;

/// The key named `key`, or read from the file named by `file`; required, one or the other.
fn key_setting<T, F: Fn(&str) -> Option<String>>(
    s: &Settings<F>,
    data_dir: &Path,
    key: &str,
    file: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let text = match (s.optional(key), s.optional(file)) {
        (Some(_), Some(_)) => return Err(bad(key, format!("set either {key} or {file}, not both"))),
        (Some(text), None) => text,
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            if absolute(&path).starts_with(absolute(data_dir)) {
                return Err(bad(file, "must not be inside the data dir (GATEHOUSE_DATA_DIR)"));
            }
            std::fs::read_to_string(&path).map_err(|e| bad(file, format!("cannot be read: {e}")))?
        }
        (None, None) => {
            return Err(bad(key, format!("is not set (nor {file}); make one with: openssl rand -base64 32")));
        }
    };
    parse(&text).map_err(|problem| bad(key, problem))
}

/// `GATEHOUSE_LINK_KEY` or `GATEHOUSE_LINK_KEY_FILE`.
pub(super) fn link_key<F: Fn(&str) -> Option<String>>(
    s: &Settings<F>,
    data_dir: &Path,
) -> Result<LinkKey, ConfigError> {
    key_setting(s, data_dir, "GATEHOUSE_LINK_KEY", "GATEHOUSE_LINK_KEY_FILE", LinkKey::from_base64)
}

/// `GATEHOUSE_EVIDENCE_KEY` or `GATEHOUSE_EVIDENCE_KEY_FILE`, with the keys it replaced in
/// `GATEHOUSE_EVIDENCE_KEYS_RETIRED` (base64 keys separated by commas or spaces; optional), which
/// still verify what they sealed.
pub fn evidence_key<F: Fn(&str) -> Option<String>>(
    s: &Settings<F>,
    data_dir: &Path,
) -> Result<EvidenceKey, ConfigError> {
    let key =
        key_setting(s, data_dir, "GATEHOUSE_EVIDENCE_KEY", "GATEHOUSE_EVIDENCE_KEY_FILE", EvidenceKey::from_base64)?;
    const RETIRED: &str = "GATEHOUSE_EVIDENCE_KEYS_RETIRED";
    let Some(list) = s.optional(RETIRED) else { return Ok(key) };
    let retired = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
        .enumerate()
        .map(|(i, text)| {
            let retired =
                EvidenceKey::from_base64(text).map_err(|problem| bad(RETIRED, format!("key {}: {problem}", i + 1)))?;
            if retired.to_base64() == key.to_base64() {
                return Err(bad(RETIRED, format!("key {} is the current GATEHOUSE_EVIDENCE_KEY", i + 1)));
            }
            Ok(retired)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(key.with_retired(retired))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::new(move |k| map.get(k).cloned())
    }

    const KEY: &str = "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8=";

    #[test]
    fn the_evidence_key_is_required_like_the_link_key_and_never_kept_in_the_data_dir() {
        let data = Path::new("/var/lib/gatehouse");
        let err = evidence_key(&settings(&[]), data).unwrap_err();
        assert_eq!(err.setting, "GATEHOUSE_EVIDENCE_KEY");
        assert!(err.to_string().contains("GATEHOUSE_EVIDENCE_KEY_FILE"), "{err}");
        let err = evidence_key(&settings(&[("GATEHOUSE_EVIDENCE_KEY", "c2hvcnQ=")]), data).unwrap_err();
        assert!(err.problem.contains("32 bytes"), "{err}");
        let both = [("GATEHOUSE_EVIDENCE_KEY", KEY), ("GATEHOUSE_EVIDENCE_KEY_FILE", "/etc/gatehouse/evidence.key")];
        assert!(evidence_key(&settings(&both), data).unwrap_err().problem.contains("not both"));
        let inside = [("GATEHOUSE_EVIDENCE_KEY_FILE", "/var/lib/gatehouse/evidence.key")];
        assert_eq!(evidence_key(&settings(&inside), data).unwrap_err().setting, "GATEHOUSE_EVIDENCE_KEY_FILE");
        assert!(evidence_key(&settings(&[("GATEHOUSE_EVIDENCE_KEY", KEY)]), data).is_ok());
        // The keys it replaced, still verifying what they sealed; each must be a key, not the current one.
        let old = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
        let retired = |list: &str| {
            evidence_key(&settings(&[("GATEHOUSE_EVIDENCE_KEY", KEY), ("GATEHOUSE_EVIDENCE_KEYS_RETIRED", list)]), data)
        };
        assert_eq!(retired(old).unwrap().retired_count(), 1);
        assert_eq!(retired(&format!(" {old},\n{} ", EvidenceKey::generate().to_base64())).unwrap().retired_count(), 2);
        assert_eq!(retired("").unwrap().retired_count(), 0);
        let err = retired(&format!("{old},c2hvcnQ=")).unwrap_err();
        assert_eq!(err.setting, "GATEHOUSE_EVIDENCE_KEYS_RETIRED");
        assert!(err.problem.contains("key 2") && err.problem.contains("32 bytes"), "{}", err.problem);
        assert!(!err.problem.contains(old), "no key in the message: {}", err.problem);
        assert!(retired(KEY).unwrap_err().problem.contains("current"));
    }

    #[test]
    fn a_key_file_outside_the_data_dir_is_read() {
        let dir = std::env::temp_dir().join(format!("gatehouse-keys-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("evidence.key");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        let file = path.display().to_string();
        let key =
            evidence_key(&settings(&[("GATEHOUSE_EVIDENCE_KEY_FILE", file.as_str())]), &dir.join("data")).unwrap();
        assert_eq!(key.to_base64(), KEY);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
