//! clouds.yaml's `verify` and `cacert` reach the HTTP client (or fail start-up naming the cloud),
//! and the outbound rules hold at start-up: `verify: false` only with
//! `GATEHOUSE_ALLOW_INSECURE_TLS=true` (and then a warning), https except on loopback.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::Error;
use gatehouse_pcd::{CloudsFile, Pcd};

fn yaml(auth_url: &str, extra: &str) -> String {
    format!(
        "clouds:\n  pcd-east:\n    auth:\n      auth_url: {auth_url}\n      user_id: u\n      password: p\n      project_id: x\n{extra}"
    )
}

fn build_with(extra: &str, allow_insecure_tls: bool) -> Result<Pcd, Error> {
    let yaml = yaml("https://pcd.example.com/keystone/v3", extra);
    Pcd::new(CloudsFile::parse(&yaml).unwrap(), Duration::from_secs(5), allow_insecure_tls)
}

fn build(extra: &str) -> Result<Pcd, Error> {
    build_with(extra, false)
}

#[test]
fn a_cacert_bundle_is_loaded() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ca.pem");
    build(&format!("    cacert: {path}\n")).expect("client with the cacert");
}

#[test]
fn verify_false_alone_stops_start_up_naming_the_cloud_and_both_settings() {
    let err = build("    verify: false\n").unwrap_err().to_string();
    assert!(err.contains("cloud \"pcd-east\""), "{err}");
    assert!(err.contains("verify: false"), "{err}");
    assert!(err.contains("GATEHOUSE_ALLOW_INSECURE_TLS=true"), "{err}");
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn verify_false_with_the_flag_builds_and_warns_naming_the_cloud() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::with_default(subscriber, || {
        build_with("    verify: false\n", true).expect("client without verification");
        build_with("", true).expect("a verifying cloud is untouched by the flag");
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(warnings[0].contains("pcd-east") && warnings[0].contains("NOT verified"), "{logs}");
}

#[test]
fn plain_http_is_refused_except_on_loopback() {
    for url in ["http://pcd.example.com/keystone/v3", "http://10.0.0.5:5000", "http://localhost.example.com/v3"] {
        let err = Pcd::new(CloudsFile::parse(&yaml(url, "")).unwrap(), Duration::from_secs(5), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cloud \"pcd-east\": auth.auth_url must be https"), "{url}: {err}");
        assert!(err.contains("loopback"), "{err}");
    }
    for url in ["http://127.0.0.1:5000/v3", "http://127.0.0.2/identity", "http://[::1]:5000", "http://localhost:5000"] {
        Pcd::new(CloudsFile::parse(&yaml(url, "")).unwrap(), Duration::from_secs(5), false).expect(url);
    }
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
