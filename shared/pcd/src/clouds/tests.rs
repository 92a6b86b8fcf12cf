use super::*;

fn one(yaml: &str) -> CloudConfig {
    CloudsFile::parse(yaml).unwrap().into_clouds().remove(0)
}

fn err(yaml: &str) -> String {
    CloudsFile::parse(yaml).unwrap_err().to_string()
}

#[test]
fn password_auth_by_names() {
    let c = one(r#"
clouds:
  pcd-east:
    auth:
      auth_url: https://pcd.example.com/keystone/v3/
      username: svc-gatehouse
      password: hunter2
      user_domain_name: Default
      project_name: provisioning
      project_domain_name: Default
    region_name: east
    interface: publicURL
"#);
    assert_eq!(c.name, "pcd-east");
    assert_eq!(c.display_name, "pcd-east");
    assert_eq!(c.auth_url, "https://pcd.example.com/keystone/v3");
    assert_eq!(c.region_name.as_deref(), Some("east"));
    assert_eq!(c.interface, Interface::Public);
    assert!(c.verify);
    assert_eq!(
        c.credentials,
        Credentials::Password {
            user: UserRef::Name { name: "svc-gatehouse".into(), domain: DomainRef::Name("Default".into()) },
            password: Secret::new("hunter2"),
            project: ProjectRef::Name { name: "provisioning".into(), domain: DomainRef::Name("Default".into()) },
        }
    );
}

#[test]
fn password_auth_by_ids_and_the_domain_fallback() {
    let c = one(r#"
clouds:
  a:
    display_name: "East (prod)"
    auth:
      auth_url: https://pcd.example.com/keystone
      user_id: u-1
      password: p
      project_id: 1234
    verify: false
    cacert: /etc/ssl/pcd.pem
    interface: internal
  b:
    auth:
      auth-url: https://pcd.example.com/keystone
      username: u
      password: p
      tenant_name: t
    domain_id: default
"#);
    assert_eq!(c.display_name, "East (prod)");
    assert!(!c.verify);
    assert_eq!(c.cacert.as_deref(), Some(Path::new("/etc/ssl/pcd.pem")));
    assert_eq!(c.interface, Interface::Internal);
    assert!(matches!(
        c.credentials,
        Credentials::Password { user: UserRef::Id(ref u), project: ProjectRef::Id(ref p), .. } if u == "u-1" && p == "1234"
    ));
    let b = CloudsFile::parse(
        r#"
clouds:
  b:
    auth:
      auth-url: https://pcd.example.com/keystone
      username: u
      password: p
      tenant_name: t
    domain_id: default
"#,
    )
    .unwrap();
    let b = b.get("b").unwrap();
    assert_eq!(
        b.credentials,
        Credentials::Password {
            user: UserRef::Name { name: "u".into(), domain: DomainRef::Id("default".into()) },
            password: Secret::new("p"),
            project: ProjectRef::Name { name: "t".into(), domain: DomainRef::Id("default".into()) },
        }
    );
}

#[test]
fn application_credentials_by_id_and_by_name() {
    let c = one(r#"
clouds:
  x:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000/v3
      application_credential_id: ac-1
      application_credential_secret: s3cr3t
    regions: [west, east]
"#);
    assert_eq!(
        c.credentials,
        Credentials::ApplicationCredential {
            credential: AppCredentialRef::Id("ac-1".into()),
            secret: Secret::new("s3cr3t")
        }
    );
    assert_eq!(c.region_name.as_deref(), Some("west"));
    let c = one(r#"
clouds:
  x:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000/v3
      application_credential_name: gatehouse
      application_credential_secret: s3cr3t
      username: svc
      user_domain_id: default
"#);
    assert_eq!(
        c.credentials,
        Credentials::ApplicationCredential {
            credential: AppCredentialRef::Name {
                name: "gatehouse".into(),
                user: UserRef::Name { name: "svc".into(), domain: DomainRef::Id("default".into()) }
            },
            secret: Secret::new("s3cr3t")
        }
    );
}

#[test]
fn errors_name_the_cloud_and_the_key() {
    let base = |auth: &str| format!("clouds:\n  pcd-east:\n    auth:\n{auth}");
    assert_eq!(
        err(&base("      username: u\n      password: p\n")),
        "clouds.yaml: cloud \"pcd-east\": auth.auth_url is missing"
    );
    assert_eq!(
        err(&base("      auth_url: https://k/v3\n      username: u\n      user_domain_name: D\n      project_id: p\n")),
        "clouds.yaml: cloud \"pcd-east\": auth.password is missing"
    );
    assert_eq!(
        err(&base("      auth_url: https://k/v3\n      username: u\n      password: p\n      project_id: p\n")),
        "clouds.yaml: cloud \"pcd-east\": auth.user_domain_name (or auth.user_domain_id) is missing"
    );
    assert_eq!(
        err(&base("      auth_url: https://k/v3\n      user_id: u\n      password: p\n")),
        "clouds.yaml: cloud \"pcd-east\": auth.project_name (or auth.project_id) is missing"
    );
    assert_eq!(
        err(&base("      auth_url: https://k/v3\n      user_id: u\n      password: p\n      project_name: x\n")),
        "clouds.yaml: cloud \"pcd-east\": auth.project_domain_name (or auth.project_domain_id) is missing"
    );
    assert_eq!(
        err(&base("      auth_url: not a url\n")),
        "clouds.yaml: cloud \"pcd-east\": auth.auth_url is not an http(s) URL"
    );
    assert_eq!(err("clouds:\n  c: {}\n"), "clouds.yaml: cloud \"c\": auth is missing");
    assert_eq!(err("clouds:\n  c: 3\n"), "clouds.yaml: cloud \"c\": is not a map");
    assert_eq!(err("other: 1\n"), "clouds.yaml: the \"clouds\" key is missing");
    assert_eq!(err("clouds: {}\n"), "clouds.yaml: \"clouds\" is empty");
    assert!(err("clouds: [\n").starts_with("clouds.yaml: not valid YAML"));
    assert_eq!(
        err(
            "clouds:\n  c:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: https://k\n      application_credential_id: i\n"
        ),
        "clouds.yaml: cloud \"c\": auth.application_credential_secret is missing"
    );
    assert_eq!(
        err("clouds:\n  c:\n    auth_type: token\n    auth:\n      auth_url: https://k\n"),
        "clouds.yaml: cloud \"c\": auth_type is not supported (use password or v3applicationcredential)"
    );
    assert_eq!(
        err(&format!(
            "{}    interface: sideways\n",
            base("      auth_url: https://k/v3\n      user_id: u\n      password: p\n      project_id: x\n")
        )),
        "clouds.yaml: cloud \"pcd-east\": interface must be public, internal or admin (or publicURL, ...)"
    );
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let yaml = r#"
clouds:
  c:
    auth:
      auth_url: https://k/v3
      user_id: u
      password: hunter2-very-secret
      project_id: p
    verify: maybe-hunter2-very-secret
"#;
    let e = err(yaml);
    assert!(!e.contains("hunter2"), "{e}");
    let c = one(&yaml.replace("    verify: maybe-hunter2-very-secret\n", ""));
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("***"));
}

#[test]
fn interfaces_in_all_spellings() {
    for (s, i) in [
        ("public", Interface::Public),
        ("publicURL", Interface::Public),
        ("internalURL", Interface::Internal),
        ("admin", Interface::Admin),
    ] {
        assert_eq!(Interface::parse(s), Some(i), "{s}");
    }
    assert_eq!(Interface::parse("private"), None);
}
