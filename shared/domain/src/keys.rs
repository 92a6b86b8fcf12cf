//! The 32-byte secret keys Gatehouse derives with (the link key, the evidence key): made, read from
//! base64 and used for HMAC-SHA256 in one place. Kept apart from the store; Debug is redacted.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

#[derive(Clone)]
pub(crate) struct KeyBytes([u8; 32]);

impl KeyBytes {
    pub(crate) fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Standard base64 (or base64url) of exactly 32 bytes, as `openssl rand -base64 32` prints it.
    pub(crate) fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| "is not base64".to_string())?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("must be 32 bytes of base64, is {} bytes", b.len()))?;
        Ok(Self(bytes))
    }

    pub(crate) fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// HMAC-SHA256 with this key over `parts`, one after the other.
    pub(crate) fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
