//! clouds.yaml's `verify` and `cacert` reach the HTTP client (or fail start-up naming the cloud).

use std::time::Duration;

use domain::Error;
use gatehouse_pcd::{CloudsFile, Pcd};

fn build(extra: &str) -> Result<Pcd, Error> {
    let yaml = format!(
        "clouds:\n  pcd-east:\n    auth:\n      auth_url: https://pcd.example.com/keystone/v3\n      user_id: u\n      password: p\n      project_id: x\n{extra}"
    );
    Pcd::new(CloudsFile::parse(&yaml).unwrap(), Duration::from_secs(5))
}

#[test]
fn a_cacert_bundle_is_loaded() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ca.pem");
    build(&format!("    cacert: {path}\n")).expect("client with the cacert");
}

#[test]
fn verify_false_builds() {
    build("    verify: false\n").expect("client without verification");
}

#[test]
fn a_missing_or_broken_cacert_fails_naming_the_cloud() {
    let err = build("    cacert: /nonexistent/ca.pem\n").unwrap_err().to_string();
    assert!(err.contains("cloud \"pcd-east\": cacert /nonexistent/ca.pem could not be read"), "{err}");
    let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let err = build(&format!("    cacert: {not_pem}\n")).unwrap_err().to_string();
    assert!(err.contains("cloud \"pcd-east\": cacert"), "{err}");
    assert!(err.contains("no certificate") || err.contains("not a PEM bundle"), "{err}");
}
