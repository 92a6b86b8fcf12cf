//! End-to-end tests of the simulator over HTTP.

use std::time::Duration;

use pcd_sim::{Faults, PcdSim, SimConfig, demo};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn start() -> PcdSim {
    let config = SimConfig { build_delay: Duration::from_millis(100), ..SimConfig::default() };
    PcdSim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

fn password_request() -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "secret"
        }}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}
    }})
}

/// An authenticated session: the token and the public RegionOne endpoints from the catalog.
struct Session {
    http: reqwest::Client,
    token: String,
    compute: String,
    image: String,
    network: String,
}

fn endpoint(catalog: &Value, kind: &str) -> String {
    let service = catalog
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in catalog"));
    let ep = service["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["interface"] == "public" && e["region_id"] == "RegionOne")
        .unwrap();
    ep["url"].as_str().unwrap().to_string()
}

async fn login(sim: &PcdSim, body: Value) -> Session {
    let http = http();
    let resp = http.post(format!("{}/auth/tokens", sim.auth_url())).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let token = resp.headers()["x-subject-token"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    let catalog = &body["token"]["catalog"];
    Session {
        compute: endpoint(catalog, "compute"),
        image: endpoint(catalog, "image"),
        network: endpoint(catalog, "network"),
        http,
        token,
    }
}

impl Session {
    async fn get(&self, url: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(url)
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", "compute 2.79")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/servers", self.compute))
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", "compute 2.79")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn server_request(name: &str) -> Value {
    json!({"server": {
        "name": name,
        "imageRef": demo::IMAGE_UBUNTU_2404,
        "flavorRef": demo::FLAVOR_M1_SMALL,
        "networks": [{"uuid": demo::NETWORK_PROD}],
        "metadata": {"gatehouse_request_id": "req-1"}
    }})
}

#[tokio::test]
async fn password_auth_issues_a_scoped_token_with_a_catalog() {
    let sim = start().await;
    let http = http();
    let resp = http.post(format!("{}/auth/tokens", sim.auth_url())).json(&password_request()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers().contains_key("x-subject-token"));
    let body: Value = resp.json().await.unwrap();
    let token = &body["token"];
    assert_eq!(token["methods"], json!(["password"]));
    assert_eq!(token["project"]["id"], demo::PROJECT_ID);
    assert_eq!(token["user"]["name"], "admin");
    let expires = token["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == "2015-11-07T02:58:43.578887Z".len());
    let catalog = &token["catalog"];
    assert_eq!(endpoint(catalog, "compute"), format!("{}/compute/v2.1/{}", sim.base_url(), demo::PROJECT_ID));
    assert_eq!(endpoint(catalog, "image"), format!("{}/image", sim.base_url()));
    assert_eq!(endpoint(catalog, "network"), format!("{}/network", sim.base_url()));

    // By user id and project id works too.
    let by_id = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "id": demo::USER_ID, "password": "secret"
        }}},
        "scope": {"project": {"id": demo::PROJECT_ID}}
    }});
    let resp = http.post(format!("{}/auth/tokens", sim.auth_url())).json(&by_id).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Wrong password, wrong domain, wrong project: Keystone's 401.
    for (path, value) in [
        ("/auth/identity/password/user/password", json!("nope")),
        ("/auth/identity/password/user/domain", json!({"name": "Other"})),
        ("/auth/scope/project/name", json!("other")),
    ] {
        let mut req = password_request();
        *req.pointer_mut(path).unwrap() = value;
        let resp = http.post(format!("{}/auth/tokens", sim.auth_url())).json(&req).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}})
        );
    }
    assert_eq!(sim.calls()["identity.auth"], 5);

    // Discovery documents point at the simulator.
    let resp = http.get(format!("{}/identity", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::MULTIPLE_CHOICES);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["versions"]["values"][0]["links"][0]["href"], format!("{}/identity/v3/", sim.base_url()));
    sim.stop().await;
}

#[tokio::test]
async fn application_credential_auth() {
    let sim = start().await;
    let s = login(
        &sim,
        json!({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": "appcred-id", "secret": "appcred-secret"}
        }}}),
    )
    .await;
    let (status, body) = s.get(&format!("{}/v2.0/networks", s.network)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["prod-net", "dev-net", "shared-services", "public"]);
    assert_eq!(body["networks"][3]["router:external"], true);
    assert_eq!(body["networks"][2]["shared"], true);

    let resp = http()
        .post(format!("{}/auth/tokens", sim.auth_url()))
        .json(&json!({"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": "appcred-id", "secret": "wrong"}
        }}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn glance_paging_follows_next_and_keeps_the_filter() {
    let sim = start().await;
    let s = login(&sim, password_request()).await;

    let collect = |filter: &'static str| {
        let s = &s;
        async move {
            let mut names = Vec::new();
            let mut pages = 0;
            let mut url = format!("{}/v2/images{filter}", s.image);
            loop {
                let (status, body) = s.get(&url).await;
                assert_eq!(status, StatusCode::OK);
                pages += 1;
                assert!(body["images"].as_array().unwrap().len() <= 2);
                for image in body["images"].as_array().unwrap() {
                    names.push(image["name"].as_str().unwrap().to_string());
                }
                match body["next"].as_str() {
                    Some(next) => {
                        if !filter.is_empty() {
                            assert!(next.contains("status=active"), "{next}");
                        }
                        url = format!("{}{next}", s.image);
                    }
                    None => break,
                }
            }
            (names, pages)
        }
    };
    let (all, pages) = collect("").await;
    assert_eq!(all.len(), 6);
    assert_eq!(pages, 3);
    assert!(all.contains(&"upload-in-progress".to_string()));
    let (active, _) = collect("?status=active&limit=50").await;
    assert_eq!(active, ["Ubuntu 24.04 LTS", "Rocky Linux 9", "Debian 12", "Windows Server 2022"]);
    assert!(sim.calls()["image.list"] >= 5);
}

#[tokio::test]
async fn server_goes_from_build_to_active_with_an_address() {
    let sim = start().await;
    let s = login(&sim, password_request()).await;

    let (status, flavors) = s.get(&format!("{}/flavors/detail", s.compute)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flavors["flavors"][0]["name"], "m1.large");

    let (status, created) = s.create(&server_request("web-01")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["server"]["id"].as_str().unwrap().to_string();
    assert!(created["server"]["adminPass"].is_string());

    let url = format!("{}/servers/{id}", s.compute);
    let (_, body) = s.get(&url).await;
    assert_eq!(body["server"]["status"], "BUILD");
    assert_eq!(body["server"]["addresses"], json!({}));
    assert_eq!(body["server"]["metadata"]["gatehouse_request_id"], "req-1");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, body) = s.get(&url).await;
    assert_eq!(body["server"]["status"], "ACTIVE");
    let addr = body["server"]["addresses"]["prod-net"][0]["addr"].as_str().unwrap().to_string();
    assert!(addr.starts_with("10.0.0."));
    // 2.79 >= 2.47: the flavor is embedded.
    assert_eq!(body["server"]["flavor"]["original_name"], "m1.small");

    let (_, other) = s.create(&server_request("web-02")).await;
    let other_id = other["server"]["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, other) = s.get(&format!("{}/servers/{other_id}", s.compute)).await;
    assert_ne!(other["server"]["addresses"]["prod-net"][0]["addr"].as_str(), Some(addr.as_str()));

    assert_eq!(sim.last_compute_microversion().as_deref(), Some("2.79"));
    let snapshot = sim.servers();
    assert_eq!(snapshot.len(), 2);
    assert_eq!(snapshot[0]["boot_from_volume"], false);
    assert_eq!(snapshot[0]["request_body"]["server"]["name"], "web-01");

    let resp = s.http.delete(&url).header("X-Auth-Token", &s.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = s.get(&url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["itemNotFound"]["message"], format!("Instance {id} could not be found."));
    let calls = sim.calls();
    assert_eq!(calls["compute.create"], 2);
    assert_eq!(calls["compute.delete"], 1);
    assert_eq!(calls["compute.flavors"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn expired_tokens_get_401() {
    let sim = start().await;
    let s = login(&sim, password_request()).await;
    let (status, _) = s.get(&format!("{}/v2/images", s.image)).await;
    assert_eq!(status, StatusCode::OK);
    sim.expire_tokens();
    for url in [
        format!("{}/v2/images", s.image),
        format!("{}/servers/detail", s.compute),
        format!("{}/v2.0/networks", s.network),
    ] {
        let (status, body) = s.get(&url).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(body["error"]["code"], 401);
    }
    // No token at all.
    let resp = http().get(format!("{}/v2/images", s.image)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A short TTL expires by itself.
    let short = PcdSim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig { token_ttl: Duration::from_millis(100), ..SimConfig::default() },
    )
    .await
    .unwrap();
    let s = login(&short, password_request()).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, _) = s.get(&format!("{}/v2/images", s.image)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn name_filter_is_an_unanchored_regex() {
    let sim = start().await;
    let s = login(&sim, password_request()).await;
    for name in ["web-1", "web-10", "web-2", "db-1"] {
        let (status, _) = s.create(&server_request(name)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let names = |body: Value| -> Vec<String> {
        let mut v: Vec<String> =
            body["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let (_, body) = s.get(&format!("{}/servers/detail?name=web-1", s.compute)).await;
    assert_eq!(names(body), ["web-1", "web-10"]);
    let (_, body) = s.get(&format!("{}/servers?name=%5Eweb-1%24", s.compute)).await;
    assert_eq!(names(body.clone()), ["web-1"]);
    assert!(body["servers"][0]["links"].is_array());
    let (_, body) = s.get(&format!("{}/servers?name=-1", s.compute)).await;
    assert_eq!(names(body), ["db-1", "web-1", "web-10"]);
}

#[tokio::test]
async fn create_validation_and_boot_from_volume() {
    let sim = start().await;
    let s = login(&sim, password_request()).await;

    let mut req = server_request("bad");
    req["server"]["flavorRef"] = json!("nope");
    let (status, body) = s.create(&req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["badRequest"]["code"], 400);

    let mut req = server_request("bad");
    req["server"]["networks"] = json!([{"uuid": "nope"}]);
    assert_eq!(s.create(&req).await.0, StatusCode::BAD_REQUEST);

    let mut req = server_request("bad");
    req["server"]["imageRef"] = json!(demo::IMAGE_CIRROS_LEGACY);
    assert_eq!(s.create(&req).await.0, StatusCode::BAD_REQUEST);

    // Disk-0 flavor without a boot volume.
    let mut req = server_request("bfv");
    req["server"]["flavorRef"] = json!(demo::FLAVOR_BFV_MEDIUM);
    let (status, body) = s.create(&req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["badRequest"]["message"].as_str().unwrap().starts_with("Flavor's disk is too small for requested image.")
    );

    // With one, imageRef may be "".
    req["server"]["imageRef"] = json!("");
    req["server"]["block_device_mapping_v2"] = json!([{
        "boot_index": 0, "uuid": demo::IMAGE_UBUNTU_2404, "source_type": "image",
        "destination_type": "volume", "volume_size": 20, "delete_on_termination": true
    }]);
    let (status, body) = s.create(&req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let snapshot = sim.servers();
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0]["boot_from_volume"], true);
    assert_eq!(snapshot[0]["image"], "");

    // Windows needs 40 GB.
    let mut req = server_request("win");
    req["server"]["imageRef"] = json!(demo::IMAGE_WINDOWS_2022);
    assert_eq!(s.create(&req).await.0, StatusCode::BAD_REQUEST);
    req["server"]["flavorRef"] = json!(demo::FLAVOR_M1_MEDIUM);
    assert_eq!(s.create(&req).await.0, StatusCode::ACCEPTED);

    // The project id in the URL must be the token's.
    let wrong = s.compute.replace(demo::PROJECT_ID, "0123456789abcdef0123456789abcdef");
    let (status, _) = s.get(&format!("{wrong}/servers/detail")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn fault_switches() {
    let sim = start().await;
    let s = login(&sim, password_request()).await;

    sim.set_faults(Faults { quota: Some(403), ..Faults::default() });
    let (status, body) = s.create(&server_request("q")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["forbidden"]["message"].as_str().unwrap().starts_with("Quota exceeded for instances"));
    sim.set_faults(Faults { quota: Some(413), ..Faults::default() });
    let (status, body) = s.create(&server_request("q")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["overLimit"]["code"], 413);

    sim.set_faults(Faults { create_status: Some(500), ..Faults::default() });
    let (status, body) = s.create(&server_request("x")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["computeFault"]["code"], 500);
    assert!(sim.servers().is_empty());

    sim.set_faults(Faults {
        server_error: Some("No valid host was found.".into()),
        build_delay_ms: Some(0),
        ..Faults::default()
    });
    let (_, body) = s.create(&server_request("err")).await;
    let id = body["server"]["id"].as_str().unwrap();
    let (_, body) = s.get(&format!("{}/servers/{id}", s.compute)).await;
    assert_eq!(body["server"]["status"], "ERROR");
    assert_eq!(body["server"]["fault"]["message"], "No valid host was found.");

    sim.set_faults(Faults { never_active: true, build_delay_ms: Some(0), ..Faults::default() });
    let (_, body) = s.create(&server_request("stuck")).await;
    let stuck = format!("{}/servers/{}", s.compute, body["server"]["id"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.get(&stuck).await.1["server"]["status"], "BUILD");
    sim.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(s.get(&stuck).await.1["server"]["status"], "ACTIVE");

    // Over the control API, with a partial body.
    let http = http();
    let resp = http
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"fail_services": ["image"], "latency_ms": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.faults().fail_services, ["image"]);
    let started = std::time::Instant::now();
    let (status, _) = s.get(&format!("{}/v2/images", s.image)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let (status, _) = s.get(&format!("{}/v2.0/networks", s.network)).await;
    assert_eq!(status, StatusCode::OK);

    let calls: Value = http.get(format!("{}/_sim/calls", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls["compute.create"], 5);
    let resp = http.post(format!("{}/_sim/expire-tokens", sim.base_url())).send().await.unwrap();
    assert!(resp.status().is_success());
    let (status, _) = s.get(&format!("{}/v2.0/networks", s.network)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let servers: Value =
        http.get(format!("{}/_sim/servers", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(servers.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn wrong_interface_and_region_are_not_served() {
    let sim = start().await;
    let http = http();
    let resp = http.post(format!("{}/auth/tokens", sim.auth_url())).json(&password_request()).send().await.unwrap();
    let token = resp.headers()["x-subject-token"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    for service in body["token"]["catalog"].as_array().unwrap() {
        for ep in service["endpoints"].as_array().unwrap() {
            let works = ep["region_id"] == "RegionOne" && ep["interface"] != "admin";
            let url = ep["url"].as_str().unwrap();
            let status = http.get(url).header("X-Auth-Token", &token).send().await.unwrap().status();
            assert_eq!(status != StatusCode::NOT_FOUND, works, "{url}: {status}");
        }
    }
}

#[test]
fn binary_prints_its_url() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pcd-sim"))
        .args(["--build-delay-ms", "50", "--token-ttl-secs", "60"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let url = line.trim().strip_prefix("PCD_SIM_URL=").unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
}

#[tokio::test]
async fn clouds_yaml_entry_has_password_auth_and_region() {
    let sim = start().await;
    let entry = sim.clouds_yaml_entry();
    for line in [
        format!("  auth_url: \"{}\"", sim.auth_url()),
        "  username: \"admin\"".to_string(),
        "  password: \"secret\"".to_string(),
        "  project_name: \"demo\"".to_string(),
        "  user_domain_name: \"Default\"".to_string(),
        "  project_domain_name: \"Default\"".to_string(),
        "region_name: \"RegionOne\"".to_string(),
    ] {
        assert!(entry.lines().any(|l| l == line), "{line} in\n{entry}");
    }
    assert!(sim.clouds_yaml("pcd").starts_with("clouds:\n  \"pcd\":\n    auth:\n"));
}
