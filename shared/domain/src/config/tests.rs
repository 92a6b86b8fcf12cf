//! The loader's tests: a complete environment and its defaults, each required setting missing,
//! bad values named, the approvers' sign-in, the link key, per-cloud approvers, and credentials
//! kept out of Debug output.

use super::*;

fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
    let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::new(move |k| map.get(k).cloned())
}

const BASE: &[(&str, &str)] = &[
    ("GATEHOUSE_API_TOKENS", "servicenow:0123456789abcdef0123456789abcdef, ci:fedcba9876543210fedcba9876543210"),
    ("GATEHOUSE_PUBLIC_BASE_URL", "https://gatehouse.example.com/"),
    ("GATEHOUSE_CLOUDS_YAML", "/etc/openstack/clouds.yaml"),
    ("GATEHOUSE_APPROVERS", "ops@example.com"),
    ("GATEHOUSE_MAIL_FROM", "gatehouse@example.com"),
    ("GATEHOUSE_LINK_KEY", "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="),
    ("GATEHOUSE_EVIDENCE_KEY", "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8="),
    ("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL", "true"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = BASE.iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).copied().collect();
    v.extend(extra.iter().filter(|(_, val)| !val.is_empty()));
    v
}

#[test]
fn a_complete_environment_loads_with_defaults() {
    let c = Config::load(&settings(BASE)).unwrap();
    assert_eq!(c.public_base_url, "https://gatehouse.example.com");
    assert_eq!(c.approval_ttl, Duration::from_secs(172_800));
    assert_eq!(c.max_count, 10);
    assert_eq!(c.api_tokens.grant("fedcba9876543210fedcba9876543210", Scope::Ci), Grant::Allowed);
    assert_eq!(c.api_tokens.grant("0123456789abcdef0123456789abcdef", Scope::ServiceNow), Grant::Allowed);
    assert_eq!(c.api_tokens.grant("0123456789abcdef0123456789abcdef", Scope::Ci), Grant::WrongScope);
    assert_eq!(c.mail_transport, MailTransport::Outbox { dir: PathBuf::from(".gatehouse/outbox") });
    assert_eq!(c.message_max_attempts, 20);
    let c = Config::load(&settings(&with(&[("GATEHOUSE_MESSAGE_MAX_ATTEMPTS", "3")]))).unwrap();
    assert_eq!(c.message_max_attempts, 3);
}

#[test]
fn each_missing_required_setting_is_named() {
    for (key, _) in BASE {
        let err = Config::load(&settings(&with(&[(key, "")]))).unwrap_err();
        // Without the link-only opt-in, what is missing is the issuer (the message names both).
        let expected = if *key == "GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL" { "GATEHOUSE_OIDC_ISSUER" } else { key };
        assert_eq!(err.setting, expected);
        assert!(err.to_string().contains(key));
    }
}

#[test]
fn bad_values_are_named_with_the_reason() {
    let cases: &[(&str, &str)] = &[
        ("GATEHOUSE_APPROVAL_TTL_SECS", "soon"),
        ("GATEHOUSE_MAX_COUNT", "0"),
        ("GATEHOUSE_PUBLIC_BASE_URL", "gatehouse.example.com"),
        ("GATEHOUSE_APPROVERS", "ops@example.com, not-an-address"),
        ("GATEHOUSE_APPROVERS_BY_CLOUD", "pcd-east"),
        ("GATEHOUSE_MAIL_TRANSPORT", "pigeon"),
        ("GATEHOUSE_API_TOKENS", "servicenow:short"),
        ("GATEHOUSE_APPROVAL_TTL_SECS", "1e300"),
        ("GATEHOUSE_SWEEP_INTERVAL_SECS", "99999999999"),
        ("GATEHOUSE_MESSAGE_MAX_ATTEMPTS", "0"),
        ("GATEHOUSE_MESSAGE_MAX_ATTEMPTS", "many"),
        ("GATEHOUSE_API_TOKENS", "0123456789abcdef0123456789abcdef"),
    ];
    for (key, value) in cases {
        let err = Config::load(&settings(&with(&[(key, value)]))).unwrap_err();
        assert_eq!(&err.setting, key, "{err}");
    }
    let err = Config::load(&settings(&with(&[("GATEHOUSE_MAIL_TRANSPORT", "smtp")]))).unwrap_err();
    assert_eq!(err.setting, "GATEHOUSE_SMTP_URL");
    let err =
        Config::load(&settings(&with(&[("GATEHOUSE_SERVICENOW_URL", "https://acme.service-now.com")]))).unwrap_err();
    assert_eq!(err.setting, "GATEHOUSE_SERVICENOW_USER");
}

#[test]
fn approvers_sign_in_unless_link_only_is_chosen() {
    let err = Config::load(&settings(&with(&[("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL", "")]))).unwrap_err();
    let said = err.to_string();
    assert!(said.contains("GATEHOUSE_OIDC_ISSUER") && said.contains("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL"), "{said}");
    let c = Config::load(&settings(&with(&[
        ("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL", ""),
        ("GATEHOUSE_OIDC_ISSUER", "https://login.example.com/"),
        ("GATEHOUSE_OIDC_CLIENT_ID", "gatehouse"),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "oidc-secret-hunter2"),
    ])))
    .unwrap();
    let ApproverProof::SignIn(oidc) = &c.approver_proof else { panic!("sign-in expected") };
    assert_eq!(oidc.issuer, "https://login.example.com/", "the issuer is kept exactly");
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(Config::load(&settings(BASE)).unwrap().approver_proof, ApproverProof::LinkOnly);
}

#[test]
fn the_link_key_is_required_and_never_kept_in_the_data_dir() {
    let err = Config::load(&settings(&with(&[("GATEHOUSE_LINK_KEY", "")]))).unwrap_err();
    assert!(err.to_string().contains("GATEHOUSE_LINK_KEY_FILE"), "{err}");
    let err = Config::load(&settings(&with(&[("GATEHOUSE_LINK_KEY", "c2hvcnQ=")]))).unwrap_err();
    assert!(err.to_string().contains("32 bytes"), "{err}");
    let err = Config::load(&settings(&with(&[
        ("GATEHOUSE_LINK_KEY", ""),
        ("GATEHOUSE_DATA_DIR", "/var/lib/gatehouse"),
        ("GATEHOUSE_LINK_KEY_FILE", "/var/lib/gatehouse/link.key"),
    ])))
    .unwrap_err();
    assert_eq!(err.setting, "GATEHOUSE_LINK_KEY_FILE", "{err}");
    let shown = format!("{:?}", Config::load(&settings(BASE)).unwrap());
    assert!(!shown.contains("q83vEjRW"), "the key never shows in Debug output");
}

#[test]
fn servicenow_credentials_never_show_in_debug_output() {
    let c = Config::load(&settings(&with(&[
        ("GATEHOUSE_SERVICENOW_URL", "https://acme.service-now.com"),
        ("GATEHOUSE_SERVICENOW_USER", "gatehouse"),
        ("GATEHOUSE_SERVICENOW_PASSWORD", "hunter2-very-secret"),
    ])))
    .unwrap();
    let shown = format!("{c:?}");
    assert!(shown.contains("gatehouse") && !shown.contains("hunter2"));
    assert!(!shown.contains("0123456789abcdef0123456789abcdef"), "API tokens neither");
}

#[test]
fn approvers_per_cloud_fall_back_to_the_default() {
    let c = Config::load(&settings(&with(&[(
        "GATEHOUSE_APPROVERS_BY_CLOUD",
        "pcd-east=a@example.com,b@example.com; pcd-west=c@example.com",
    )])))
    .unwrap();
    assert_eq!(c.approvers.for_cloud("pcd-east"), ["a@example.com", "b@example.com"]);
    assert_eq!(c.approvers.for_cloud("elsewhere"), ["ops@example.com"]);
}
