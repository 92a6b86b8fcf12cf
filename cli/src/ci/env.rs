//! Reading the job's variables: the gate (URL and credential), the change's key, and every
//! missing or invalid variable named at once.

use reqwest::Url;
use reqwest::header::HeaderValue;

use super::exit::Fail;

/// Reads a variable of the job's environment.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The job's GitLab CI/CD ID token, from `id_tokens:` in the job (audience `gatehouse`).
pub(super) const ID_TOKEN_VAR: &str = "GATEHOUSE_ID_TOKEN";
/// A static Gatehouse API token with the `ci` scope: the fallback when there is no ID token.
pub(super) const STATIC_TOKEN_VAR: &str = "GATEHOUSE_TOKEN";

/// Where the credential sent to Gatehouse came from. Messages name the variable, never its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Credential {
    /// `GATEHOUSE_ID_TOKEN`, which wins when both are set.
    IdToken,
    /// `GATEHOUSE_TOKEN`, only accepted by a Gatehouse with `GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true`.
    StaticToken,
}

impl Credential {
    pub(super) fn variable(self) -> &'static str {
        match self {
            Credential::IdToken => ID_TOKEN_VAR,
            Credential::StaticToken => STATIC_TOKEN_VAR,
        }
    }

    /// What to check when Gatehouse refuses it.
    pub(super) fn hint(self) -> &'static str {
        match self {
            Credential::IdToken => {
                "check the job's id_tokens: (GATEHOUSE_ID_TOKEN with aud: gatehouse) and that Gatehouse trusts \
                 this GitLab instance"
            }
            Credential::StaticToken => {
                "check the group's CI/CD variable GATEHOUSE_TOKEN (a ci token; Gatehouse only accepts static \
                 tokens with GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true), or use GATEHOUSE_ID_TOKEN"
            }
        }
    }
}

/// Reads variables and collects every missing or invalid one, so one run names them all.
pub(super) struct Vars<'a> {
    lookup: Lookup<'a>,
    missing: Vec<&'static str>,
    pub(super) invalid: Vec<String>,
    /// Neither `GATEHOUSE_ID_TOKEN` nor `GATEHOUSE_TOKEN` is set: say where each comes from.
    no_credential: bool,
}

impl<'a> Vars<'a> {
    pub(super) fn new(lookup: Lookup<'a>) -> Self {
        Vars { lookup, missing: Vec::new(), invalid: Vec::new(), no_credential: false }
    }

    pub(super) fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub(super) fn required(&mut self, name: &'static str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.missing.push(name);
            String::new()
        })
    }

    pub(super) fn number(&mut self, name: &'static str) -> u64 {
        let value = self.required(name);
        self.parse_number(name, &value)
    }

    pub(super) fn optional_number(&mut self, name: &'static str) -> Option<u64> {
        let value = self.optional(name)?;
        Some(self.parse_number(name, &value))
    }

    fn parse_number(&mut self, name: &str, value: &str) -> u64 {
        if value.is_empty() {
            return 0;
        }
        value.parse().unwrap_or_else(|_| {
            self.invalid.push(format!("{name} is not a positive whole number"));
            0
        })
    }

    pub(super) fn environment(&mut self, flag: Option<String>) -> String {
        match flag.map(|f| f.trim().to_string()).filter(|f| !f.is_empty()) {
            Some(env) => env,
            None => self.optional("CI_ENVIRONMENT_NAME").unwrap_or_else(|| {
                self.missing.push("CI_ENVIRONMENT_NAME (or --environment)");
                String::new()
            }),
        }
    }

    pub(super) fn sha(&mut self) -> String {
        let sha = self.required("CI_COMMIT_SHA").to_ascii_lowercase();
        let full = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
        if !sha.is_empty() && !full {
            self.invalid.push("CI_COMMIT_SHA is not a full commit SHA (40 hex digits)".to_string());
        }
        sha
    }

    pub(super) fn timestamp(&mut self, name: &'static str) -> Option<jiff::Timestamp> {
        let value = self.optional(name)?;
        match value.parse::<jiff::Timestamp>() {
            Ok(ts) => Some(ts),
            Err(_) => {
                self.invalid.push(format!("{name} is not an RFC 3339 time such as 2026-12-01T19:00:00Z"));
                None
            }
        }
    }

    /// The credential: `GATEHOUSE_ID_TOKEN`, else `GATEHOUSE_TOKEN`; neither is missing.
    fn credential(&mut self) -> Option<(String, Credential)> {
        match (self.optional(ID_TOKEN_VAR), self.optional(STATIC_TOKEN_VAR)) {
            (Some(token), _) => Some((token, Credential::IdToken)),
            (None, Some(token)) => Some((token, Credential::StaticToken)),
            (None, None) => {
                self.missing.push("GATEHOUSE_ID_TOKEN (or GATEHOUSE_TOKEN)");
                self.no_credential = true;
                None
            }
        }
    }

    /// Gatehouse's URL and the credential, checked; `None` when one is missing or invalid (and
    /// recorded as such).
    pub(super) fn gate(&mut self) -> Option<Gate> {
        let url = self.required("GATEHOUSE_URL");
        let token = self.credential();
        let base = if url.is_empty() {
            None
        } else {
            match gatehouse_base(&url) {
                Ok(base) => Some(base),
                Err(problem) => {
                    self.invalid.push(problem);
                    None
                }
            }
        };
        let (token, credential) = token?;
        let auth = match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                Some(value)
            }
            Err(_) => {
                let variable = credential.variable();
                self.invalid.push(format!("{variable} contains characters that cannot be sent in a header"));
                None
            }
        };
        Some(Gate { base: base?, auth: auth?, credential })
    }

    /// The gate, when every variable read is present and valid; otherwise all that are not.
    pub(super) fn finish(self, gate: Option<Gate>) -> Result<Gate, Fail> {
        let mut problems = Vec::new();
        if !self.missing.is_empty() {
            problems.push(format!("missing CI/CD variable(s): {}", self.missing.join(", ")));
        }
        problems.extend(self.invalid);
        if let Some(gate) = gate.filter(|_| problems.is_empty()) {
            return Ok(gate);
        }
        let sources = if self.no_credential {
            "GATEHOUSE_ID_TOKEN comes from the job's id_tokens: (aud: gatehouse); GATEHOUSE_TOKEN, a static \
             ci token that Gatehouse only accepts with GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true, and \
             GATEHOUSE_URL from the group's CI/CD variables; the CI_* variables from GitLab"
        } else {
            "GATEHOUSE_URL comes from the group's CI/CD variables; the CI_* variables from GitLab"
        };
        Err(Fail(format!("misconfigured: {} ({sources})", problems.join("; "))))
    }
}

/// Checks `GATEHOUSE_URL` and returns it as the base the API paths are appended to.
pub(super) fn gatehouse_base(raw: &str) -> Result<Url, String> {
    let invalid = || format!("GATEHOUSE_URL \"{raw}\" is not an http(s) URL such as https://gatehouse.example.com");
    let mut url = Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid());
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: it holds a credential.
        return Err(
            "GATEHOUSE_URL must not carry credentials; the token goes in GATEHOUSE_ID_TOKEN or GATEHOUSE_TOKEN".into(),
        );
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Where Gatehouse is and how to authenticate to it.
pub(super) struct Gate {
    pub(super) base: Url,
    /// `Bearer <token>`, marked sensitive.
    pub(super) auth: HeaderValue,
    pub(super) credential: Credential,
}

/// The change's key.
pub(super) struct Subject {
    pub(super) project_id: u64,
    pub(super) sha: String,
    pub(super) environment: String,
}

impl Subject {
    pub(super) fn short_sha(&self) -> &str {
        &self.sha[..self.sha.len().min(8)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_missing_and_invalid_variable_is_named_at_once_and_the_token_never_shown() {
        let vars = env(&[
            ("GATEHOUSE_TOKEN", "s3cret-token"),
            ("CI_PROJECT_ID", "shop"),
            ("CI_COMMIT_SHA", "abc"),
            ("GATEHOUSE_URL", "ftp://gatehouse"),
        ]);
        let lookup = |name: &str| vars.get(name).cloned();
        let mut v = Vars::new(&lookup);
        assert!(v.gate().is_none());
        v.number("CI_PROJECT_ID");
        v.sha();
        v.environment(None);
        v.required("CI_PIPELINE_URL");
        let Fail(message) = v.finish(None).err().unwrap();
        for expected in [
            "CI_ENVIRONMENT_NAME (or --environment)",
            "CI_PIPELINE_URL",
            "CI_PROJECT_ID is not a positive whole number",
            "CI_COMMIT_SHA is not a full commit SHA",
            "GATEHOUSE_URL \"ftp://gatehouse\" is not an http(s) URL",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
        assert!(!message.contains("s3cret-token"));
    }

    fn gate_of(pairs: &[(&str, &str)]) -> Result<Gate, Fail> {
        let vars = env(pairs);
        let lookup = |name: &str| vars.get(name).cloned();
        let mut v = Vars::new(&lookup);
        let gate = v.gate();
        v.finish(gate)
    }

    #[test]
    fn the_id_token_wins_over_the_static_token_which_is_the_fallback() {
        let url = ("GATEHOUSE_URL", "https://gatehouse.example.com");
        let gate = gate_of(&[url, ("GATEHOUSE_ID_TOKEN", "eyJ.id.token"), ("GATEHOUSE_TOKEN", "static")]).unwrap();
        assert_eq!(gate.credential, Credential::IdToken);
        assert_eq!(gate.auth.as_bytes(), b"Bearer eyJ.id.token");
        assert!(gate.auth.is_sensitive());
        let gate = gate_of(&[url, ("GATEHOUSE_TOKEN", "static")]).unwrap();
        assert_eq!(gate.credential, Credential::StaticToken);
        assert_eq!(gate.auth.as_bytes(), b"Bearer static");
        // Set but blank (an id_tokens: entry that GitLab left empty) counts as unset.
        let gate = gate_of(&[url, ("GATEHOUSE_ID_TOKEN", "  "), ("GATEHOUSE_TOKEN", "static")]).unwrap();
        assert_eq!(gate.credential, Credential::StaticToken);
    }

    #[test]
    fn without_either_token_both_variables_are_named() {
        let Fail(message) = gate_of(&[("GATEHOUSE_URL", "https://gatehouse.example.com")]).err().unwrap();
        assert!(message.contains("missing CI/CD variable(s): GATEHOUSE_ID_TOKEN (or GATEHOUSE_TOKEN)"), "{message}");
        assert!(
            message.contains("id_tokens:") && message.contains("GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true"),
            "{message}"
        );
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_named_by_its_variable_not_shown() {
        let url = ("GATEHOUSE_URL", "https://gatehouse.example.com");
        let Fail(message) = gate_of(&[url, ("GATEHOUSE_ID_TOKEN", "bad\ntoken-77")]).err().unwrap();
        assert!(message.contains("GATEHOUSE_ID_TOKEN contains characters"), "{message}");
        assert!(!message.contains("token-77"), "{message}");
        let Fail(message) = gate_of(&[url, ("GATEHOUSE_TOKEN", "bad\ntoken-77")]).err().unwrap();
        assert!(message.contains("GATEHOUSE_TOKEN contains characters"), "{message}");
        assert!(!message.contains("token-77"), "{message}");
    }

    #[test]
    fn the_environment_flag_overrides_ci_environment_name() {
        let vars = env(&[("CI_ENVIRONMENT_NAME", "production")]);
        let lookup = |name: &str| vars.get(name).cloned();
        let mut v = Vars::new(&lookup);
        assert_eq!(v.environment(Some("staging".into())), "staging");
        assert_eq!(v.environment(None), "production");
        assert_eq!(v.environment(Some("  ".into())), "production");
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_echoing_them() {
        let err = gatehouse_base("https://bot:hunter2@gatehouse.example.com").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let base = gatehouse_base("https://api.example.com/prod/?x=1#f").unwrap();
        assert_eq!(base.as_str(), "https://api.example.com/prod/");
    }
}
