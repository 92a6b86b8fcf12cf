//! Scoped machine credentials (`GATEHOUSE_API_TOKENS`): every bearer token is good for one scope,
//! so the token a CI job holds cannot post provisioning requests, and ServiceNow's cannot play a
//! deploy. Only the tokens' SHA-256 is kept, and comparison is constant-time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a machine credential may call (DESIGN.md, "Trust and identity").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// ServiceNow's form scripts and business rules: catalog, intake, cancel, retire.
    ServiceNow,
    /// CI jobs: the change gate.
    Ci,
    /// ServiceNow's change callback.
    Webhook,
    /// Auditors: evidence and export.
    Audit,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::ServiceNow, Scope::Ci, Scope::Webhook, Scope::Audit];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ServiceNow => "servicenow",
            Scope::Ci => "ci",
            Scope::Webhook => "webhook",
            Scope::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fewest characters a token may have.
pub const MIN_TOKEN_LEN: usize = 32;

/// What a presented bearer token is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The token holds the scope asked for.
    Allowed,
    /// A known token of other scopes (403).
    WrongScope,
    /// No such token (401).
    Unknown,
}

/// The configured tokens, each with its scope. A token may appear under several scopes (the
/// demo's holds all four); several tokens may share a scope (rotation).
#[derive(Clone, Default)]
pub struct ApiTokens(Vec<(Scope, [u8; 32])>);

impl ApiTokens {
    pub fn new<S: AsRef<str>>(entries: impl IntoIterator<Item = (Scope, S)>) -> Self {
        Self(entries.into_iter().map(|(scope, t)| (scope, Sha256::digest(t.as_ref().as_bytes()).into())).collect())
    }

    /// One token good for every scope: the demo's.
    pub fn all_scopes(token: &str) -> Self {
        Self::new(Scope::ALL.map(|scope| (scope, token)))
    }

    /// `scope:token,scope:token,…`. A bad entry is named by its position (1-based), never by its
    /// value, since the value is a secret.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (i, entry) in list.split(',').map(str::trim).enumerate() {
            let position = i + 1;
            if entry.is_empty() {
                continue;
            }
            let Some((scope, token)) = entry.split_once(':') else {
                return Err(format!(
                    "entry {position} has no scope: write it as scope:token, scope one of servicenow, ci, webhook, audit"
                ));
            };
            let Some(scope) = Scope::parse(scope.trim()) else {
                return Err(format!(
                    "entry {position} has an unknown scope: use one of servicenow, ci, webhook, audit"
                ));
            };
            let token = token.trim();
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(format!("entry {position}: its token needs at least {MIN_TOKEN_LEN} characters"));
            }
            entries.push((scope, token.to_string()));
        }
        if entries.is_empty() {
            return Err("holds no token".into());
        }
        Ok(Self::new(entries.iter().map(|(s, t)| (*s, t.as_str()))))
    }

    /// Whether `presented` may call a route of `scope`. Every configured entry is compared, so the
    /// time taken does not tell which one matched.
    pub fn grant(&self, presented: &str, scope: Scope) -> Grant {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let (mut known, mut allowed) = (0u8, 0u8);
        for (entry_scope, hash) in &self.0 {
            let hit = hash.ct_eq(&digest).unwrap_u8();
            known |= hit;
            allowed |= hit & u8::from(*entry_scope == scope);
        }
        match (known, allowed) {
            (_, 1) => Grant::Allowed,
            (1, _) => Grant::WrongScope,
            _ => Grant::Unknown,
        }
    }
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut scopes: Vec<_> = self.0.iter().map(|(s, _)| s.as_str()).collect();
        scopes.sort_unstable();
        write!(f, "ApiTokens({} configured: {})", self.0.len(), scopes.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn each_token_is_good_for_its_scope_only() {
        let tokens = ApiTokens::parse(&format!("servicenow:{A}, ci:{B}")).unwrap();
        assert_eq!(tokens.grant(A, Scope::ServiceNow), Grant::Allowed);
        assert_eq!(tokens.grant(A, Scope::Ci), Grant::WrongScope);
        assert_eq!(tokens.grant(B, Scope::Ci), Grant::Allowed);
        assert_eq!(tokens.grant(B, Scope::Audit), Grant::WrongScope);
        assert_eq!(tokens.grant("0123456789abcdef0123456789abcdeX", Scope::ServiceNow), Grant::Unknown);
        assert_eq!(tokens.grant("", Scope::ServiceNow), Grant::Unknown);
    }

    #[test]
    fn the_demo_token_holds_every_scope() {
        let tokens = ApiTokens::all_scopes(A);
        for scope in Scope::ALL {
            assert_eq!(tokens.grant(A, scope), Grant::Allowed);
        }
    }

    #[test]
    fn bad_entries_are_named_by_position_never_by_value() {
        for (list, position) in [
            (format!("servicenow:{A},{B}"), "entry 2"),
            (format!("ci:{A}, admin:{B}"), "entry 2"),
            ("servicenow:short-secret".to_string(), "entry 1"),
            (A.to_string(), "entry 1"),
        ] {
            let err = ApiTokens::parse(&list).unwrap_err();
            assert!(err.contains(position), "{err}");
            assert!(!err.contains(A) && !err.contains(B) && !err.contains("short-secret"), "{err}");
        }
        assert!(ApiTokens::parse(" , ").is_err());
    }

    #[test]
    fn debug_shows_scopes_not_tokens() {
        let shown = format!("{:?}", ApiTokens::parse(&format!("audit:{A}")).unwrap());
        assert!(shown.contains("audit") && !shown.contains(A));
    }
}
