//! Which JSON Web Keys may verify which signatures: the allow-list of asymmetric algorithms and
//! the key/algorithm match (RFC 7517 `use`, `key_ops`, `alg`; RFC 7518 key types and curves). The
//! approvers' ID tokens and GitLab's CI ID tokens are checked by the same rules.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};

/// The signature algorithms an ID token may use: asymmetric only, as jsonwebtoken supports them.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Whether `key` may verify a signature made with `alg`: meant for signatures, of the right type
/// and curve, and, where it names an alg, that one.
pub fn key_fits(key: &Jwk, alg: Algorithm) -> std::result::Result<(), String> {
    if let Some(usage) = &key.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err("is not meant for signatures (use)".into());
    }
    if let Some(ops) = &key.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("is not meant for verifying (key_ops)".into());
    }
    if let Some(key_alg) = key.common.key_algorithm
        && Algorithm::try_from(key_alg).ok() != Some(alg)
    {
        return Err(format!("is for {key_alg}, not {alg:?}"));
    }
    let fits = match (&key.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        _ => false,
    };
    if fits { Ok(()) } else { Err(format!("is not a key for {alg:?}")) }
}
