//! Approval tokens: the credential inside an approval link. 256 bits, base64url without padding
//! (nothing a mail client could break), stored only as their SHA-256. A link's token is derived
//! from the link key and the link's id (HMAC-SHA256) when its mail is rendered, so neither the
//! store, its stream, a backup nor a log line holds a link that works: that needs the key too.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::KeyBytes;
use crate::model::RequestId;

/// The raw token. Only ever in the approver's mail and the link path; never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApprovalToken(String);

/// 32 bytes in base64url without padding.
const TOKEN_LEN: usize = 43;

impl ApprovalToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly what `generate` makes: 43 base64url characters decoding to 32 bytes.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != TOKEN_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        // Reject non-canonical encodings (trailing bits set), so one token has one spelling.
        (bytes.len() == 32 && URL_SAFE_NO_PAD.encode(&bytes) == s).then(|| Self(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex(&Sha256::digest(self.0.as_bytes())))
    }

    /// The hash an Extend link's token is stored under: SHA-256 of the token with a prefix of its
    /// own, so a lease link never opens as an approval link, nor an approval link as a lease link
    /// (each looks its record up under its own hash).
    pub fn lease_hash(&self) -> TokenHash {
        let mut digest = Sha256::new();
        digest.update(b"gatehouse-lease:");
        digest.update(self.0.as_bytes());
        TokenHash(hex(&digest.finalize()))
    }
}

impl std::fmt::Debug for ApprovalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApprovalToken(<redacted>)")
    }
}

/// The key approval links are derived with (`GATEHOUSE_LINK_KEY`): 32 bytes, kept apart from the
/// store. Its Debug output is redacted.
#[derive(Clone)]
pub struct LinkKey(KeyBytes);

impl LinkKey {
    /// A fresh random key (the demo makes one per start).
    pub fn generate() -> Self {
        Self(KeyBytes::generate())
    }

    /// Standard base64 (or base64url) of exactly 32 bytes, as `openssl rand -base64 32` prints it.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        KeyBytes::from_base64(text).map(Self)
    }

    /// The token of the link `link_id`: base64url(HMAC-SHA256(key, link_id)).
    pub fn token_for(&self, link_id: &str) -> ApprovalToken {
        ApprovalToken(URL_SAFE_NO_PAD.encode(self.0.hmac(&[link_id.as_bytes()])))
    }
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

/// Lowercase hex SHA-256 of a token: what the store keys tokens by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// What is stored about a token. Kept 30 days past its expiry so that a late click gets 410, not
/// 404; expiry is checked in code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub hash: TokenHash,
    pub request_id: RequestId,
    pub approver: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The approval stage (0-based) the link asks for; a link of a stage that passed decides nothing.
    #[serde(default)]
    pub stage: u32,
    /// For a delegate's link: the approver the delegate decides for (out of office).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// How long a token record is kept after it expired.
pub const TOKEN_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_are_derived_from_the_key_and_the_link_id() {
        let key = LinkKey::from_base64("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=").unwrap();
        let token = key.token_for("link-1");
        assert_eq!(ApprovalToken::parse(token.expose()), Some(token.clone()), "a well-formed token");
        assert_eq!(key.token_for("link-1"), token, "the same id gives the same token");
        assert_ne!(key.token_for("link-2"), token);
        assert_ne!(LinkKey::generate().token_for("link-1"), token, "another key, another token");
        assert!(!format!("{key:?}").contains("q83v"));
        assert!(LinkKey::from_base64("c2hvcnQ=").unwrap_err().contains("32 bytes"));
        assert!(LinkKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn generated_tokens_are_43_url_safe_chars_and_parse_back() {
        let t = ApprovalToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(!t.expose().contains(['+', '/', '=']));
        assert_eq!(ApprovalToken::parse(t.expose()), Some(t.clone()));
        assert_ne!(ApprovalToken::generate(), t);
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let t = ApprovalToken::generate();
        let s = t.expose();
        assert!(ApprovalToken::parse(&s[..42]).is_none(), "truncated");
        assert!(ApprovalToken::parse(&format!("{s}A")).is_none(), "too long");
        assert!(ApprovalToken::parse(&format!("{}=", &s[..42])).is_none(), "padding");
        assert!(ApprovalToken::parse(&s.replace(|c: char| c == s.chars().next().unwrap(), "+")).is_none());
        assert!(ApprovalToken::parse("").is_none());
        assert!(ApprovalToken::parse(&"é".repeat(22)).is_none());
        // The last char carries 4 spare bits: a non-canonical spelling of the same bytes is refused.
        let bytes = URL_SAFE_NO_PAD.decode(s).unwrap();
        let canonical = URL_SAFE_NO_PAD.encode(&bytes);
        let last = canonical.as_bytes()[42];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.iter().position(|c| *c == last).unwrap();
        let twisted = format!("{}{}", &canonical[..42], alphabet[idx ^ 1] as char);
        assert!(ApprovalToken::parse(&twisted).is_none());
    }

    #[test]
    fn the_hash_is_sha256_hex_and_debug_hides_the_token() {
        let t = ApprovalToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(t.hash().as_str().len(), 64);
        assert_eq!(t.hash(), t.hash());
        assert_ne!(t.lease_hash(), t.hash(), "lease and approval links are stored apart");
        assert_eq!(t.lease_hash().as_str().len(), 64);
        assert!(!format!("{t:?}").contains("AAAA"));
    }
}
