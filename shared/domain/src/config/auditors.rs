//! `GATEHOUSE_AUDITORS`: who may sign in to the audit page (DESIGN.md "Audit evidence").

use super::{ConfigError, Settings, email_list};

const KEY: &str = "GATEHOUSE_AUDITORS";

/// The auditors' e-mail addresses, comma-separated, each checked as an approver's address is;
/// unset, nobody signs in to the audit page (auditors use a token of scope `audit`).
pub fn auditors<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Vec<String>, ConfigError> {
    match s.optional(KEY) {
        Some(list) => email_list(KEY, &list),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(value: Option<&str>) -> Result<Vec<String>, ConfigError> {
        let value = value.map(String::from);
        auditors(&Settings::new(move |k| (k == KEY).then(|| value.clone()).flatten()))
    }

    #[test]
    fn auditors_are_addresses_or_nobody() {
        assert_eq!(load(None).unwrap(), Vec::<String>::new());
        assert_eq!(load(Some(" ")).unwrap(), Vec::<String>::new());
        assert_eq!(load(Some("eve@example.com, Sam@Example.com")).unwrap(), ["eve@example.com", "Sam@Example.com"]);
        for bad in ["eve@example.com, not-an-address", "eve@example.com\r\nBcc: x@example.com", ","] {
            let err = load(Some(bad)).unwrap_err();
            assert_eq!(err.setting, KEY, "{bad:?}: {err}");
        }
    }
}
