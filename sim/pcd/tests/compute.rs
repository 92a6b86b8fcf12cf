//! The simulator's Nova over HTTP: the advertised microversion range and Nova's 406 beyond it,
//! answers shaped by the requested microversion, `GET /limits` and the quota refusal on create.

use std::time::Duration;

use pcd_sim::{PcdSim, Quota, SimConfig, demo};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Nova {
    http: reqwest::Client,
    token: String,
    /// `…/compute/v2.1/<project>` as the catalog publishes it.
    api: String,
    base: String,
}

async fn start(config: SimConfig) -> (PcdSim, Nova) {
    let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let auth = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "secret"
        }}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}
    }});
    let resp = http.post(format!("{}/auth/tokens", sim.auth_url())).json(&auth).send().await.unwrap();
    let token = resp.headers()["x-subject-token"].to_str().unwrap().to_string();
    let api = format!("{}/compute/v2.1/{}", sim.base_url(), demo::PROJECT_ID);
    let base = sim.base_url();
    (sim, Nova { http, token, api, base })
}

impl Nova {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        version: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.api)).header("X-Auth-Token", &self.token);
        if let Some(v) = version {
            req = req.header("OpenStack-API-Version", format!("compute {v}"));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, version: Option<&str>) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, version, None).await
    }

    async fn create(&self, version: &str, server: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, "/servers", Some(version), Some(&json!({ "server": server }))).await
    }

    async fn version_document(&self) -> Value {
        self.http.get(format!("{}/compute/v2.1/", self.base)).send().await.unwrap().json().await.unwrap()
    }
}

fn server(name: &str, flavor: &str) -> Value {
    json!({
        "name": name,
        "imageRef": demo::IMAGE_UBUNTU_2404,
        "flavorRef": flavor,
        "networks": [{"uuid": demo::NETWORK_PROD}],
    })
}

#[tokio::test]
async fn a_lowered_maximum_is_advertised_and_anything_above_it_gets_novas_406() {
    let (sim, nova) = start(SimConfig { max_microversion: (2, 1), ..Default::default() }).await;
    let doc = nova.version_document().await;
    assert_eq!(
        (doc["version"]["min_version"].as_str(), doc["version"]["version"].as_str()),
        (Some("2.1"), Some("2.1"))
    );
    let list: Value = nova.http.get(format!("{}/compute/", nova.base)).send().await.unwrap().json().await.unwrap();
    let v21 = list["versions"].as_array().unwrap().iter().find(|v| v["id"] == "v2.1").unwrap();
    assert_eq!(v21["version"], "2.1");

    let (status, body) = nova.get("/flavors/detail", Some("2.79")).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        body,
        json!({"computeFault": {
            "code": 406,
            "message": "Version 2.79 is not supported by the API. Minimum is 2.1 and maximum is 2.1."
        }})
    );
    assert_eq!(nova.get("/flavors/detail", Some("2.1")).await.0, StatusCode::OK);
    assert_eq!(nova.get("/flavors/detail", None).await.0, StatusCode::OK);
    assert_eq!(sim.last_compute_microversion().as_deref(), Some("2.1"));

    // Raised again through the control API.
    let resp = nova
        .http
        .put(format!("{}/_sim/compute", nova.base))
        .json(&json!({"max_microversion": "2.79"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(nova.version_document().await["version"]["version"], "2.79");
    assert_eq!(nova.get("/flavors/detail", Some("2.79")).await.0, StatusCode::OK);
    let bad =
        nova.http.put(format!("{}/_sim/compute", nova.base)).json(&json!({"max_microversion": "2.0"})).send().await;
    assert_eq!(bad.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn description_and_tags_are_refused_below_their_microversion_and_shown_from_it() {
    let (_sim, nova) = start(SimConfig::default()).await;
    let mut asked = server("tagged", demo::FLAVOR_M1_TINY);
    asked["description"] = json!("Gatehouse request r1");
    asked["tags"] = json!(["gatehouse"]);

    for version in ["2.1", "2.51"] {
        let (status, body) = nova.create(version, asked.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{version}: {body}");
        assert!(body["badRequest"]["message"].as_str().unwrap().contains("Additional properties are not allowed"));
    }
    let (status, body) = nova.create("2.52", asked).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["server"]["id"].as_str().unwrap();
    let (_, shown) = nova.get(&format!("/servers/{id}"), Some("2.52")).await;
    assert_eq!(shown["server"]["description"], "Gatehouse request r1");
    assert_eq!(shown["server"]["tags"], json!(["gatehouse"]));
    let (_, old) = nova.get(&format!("/servers/{id}"), Some("2.1")).await;
    assert!(old["server"].get("description").is_none() && old["server"].get("tags").is_none(), "{old}");
}

#[tokio::test]
async fn limits_count_the_live_servers_in_the_samples_shape() {
    let quota = Quota { instances: 10, cores: 20, ram: 51200 };
    let (sim, nova) = start(SimConfig { quota, ..Default::default() }).await;
    for name in ["a", "b"] {
        assert_eq!(nova.create("2.52", server(name, demo::FLAVOR_M1_LARGE)).await.0, StatusCode::ACCEPTED);
    }
    let (status, body) = nova.get("/limits", Some("2.52")).await;
    assert_eq!(status, StatusCode::OK);
    let absolute = &body["limits"]["absolute"];
    let pick = |k: &str| absolute[k].as_i64().unwrap();
    assert_eq!([pick("maxTotalInstances"), pick("maxTotalCores"), pick("maxTotalRAMSize")], [10, 20, 51200]);
    assert_eq!([pick("totalInstancesUsed"), pick("totalCoresUsed"), pick("totalRAMUsed")], [2, 8, 16384]);
    assert_eq!(body["limits"]["rate"], json!([]));
    // 2.39 dropped maxImageMeta; 2.1 still has the network limits; 2.57 drops the personality ones.
    assert!(absolute.get("maxImageMeta").is_none() && absolute.get("maxSecurityGroups").is_none());
    let (_, at21) = nova.get("/limits", None).await;
    assert_eq!(at21["limits"]["absolute"]["maxSecurityGroups"], 10);
    assert_eq!(at21["limits"]["absolute"]["maxImageMeta"], 128);
    let (_, at257) = nova.get("/limits", Some("2.57")).await;
    assert!(at257["limits"]["absolute"].get("maxPersonality").is_none());
    assert_eq!(sim.calls()["compute.limits"], 3);
}

#[tokio::test]
async fn a_create_beyond_the_quota_gets_novas_403_and_nothing_is_made() {
    let (sim, nova) = start(SimConfig::default()).await;
    let resp = nova
        .http
        .put(format!("{}/_sim/compute", nova.base))
        .json(&json!({"quota": {"instances": 10, "cores": 6, "ram": 51200}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["quota"], json!({"instances": 10, "cores": 6, "ram": 51200}));

    assert_eq!(nova.create("2.52", server("big-1", demo::FLAVOR_M1_LARGE)).await.0, StatusCode::ACCEPTED);
    let (status, body) = nova.create("2.52", server("big-2", demo::FLAVOR_M1_LARGE)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"forbidden": {"code": 403, "message": "Quota exceeded for cores: Requested 4, but already used 4 of 6 cores"}})
    );
    sim.set_quota(Quota { instances: 1, cores: 6, ram: 4096 });
    let (_, body) = nova.create("2.1", server("big-3", demo::FLAVOR_M1_LARGE)).await;
    assert_eq!(
        body["forbidden"]["message"],
        "Quota exceeded for cores, instances, ram: Requested 4, 1, 8192, but already used 4, 1, 8192 of 6, 1, 4096 cores, instances, ram"
    );
    assert_eq!(sim.servers().len(), 1);
    // Unlimited (-1) takes anything.
    sim.set_quota(Quota { instances: -1, cores: -1, ram: -1 });
    assert_eq!(nova.create("2.1", server("big-4", demo::FLAVOR_M1_LARGE)).await.0, StatusCode::ACCEPTED);
}

fn boot_from_volume(name: &str, delete_on_termination: bool) -> Value {
    let mut s = server(name, demo::FLAVOR_BFV_MEDIUM);
    s["imageRef"] = json!("");
    s["block_device_mapping_v2"] = json!([{
        "boot_index": 0, "uuid": demo::IMAGE_UBUNTU_2404, "source_type": "image",
        "destination_type": "volume", "volume_size": 20, "delete_on_termination": delete_on_termination
    }]);
    s
}

#[tokio::test]
async fn a_boot_volume_goes_with_its_server_only_when_its_mapping_says_delete_on_termination() {
    let (sim, nova) = start(SimConfig::default()).await;
    let mut ids = vec![];
    for (name, delete) in [("goes", true), ("stays", false)] {
        let (status, body) = nova.create("2.79", boot_from_volume(name, delete)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(body["server"]["id"].as_str().unwrap().to_string());
    }
    let volumes = sim.volumes();
    assert_eq!(volumes.len(), 2);
    assert!(volumes.iter().all(|v| v["status"] == "in-use" && v["size"] == 20), "{volumes:?}");
    let (_, shown) = nova.get(&format!("/servers/{}", ids[0]), Some("2.3")).await;
    let attached = &shown["server"]["os-extended-volumes:volumes_attached"];
    assert_eq!(attached, &json!([{"id": volumes[0]["id"], "delete_on_termination": true}]));

    for id in &ids {
        let (status, _) = nova.call(reqwest::Method::DELETE, &format!("/servers/{id}"), Some("2.79"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let left = sim.volumes();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        (&left[0]["id"], left[0]["status"].as_str(), &left[0]["server_id"]),
        (&volumes[1]["id"], Some("available"), &Value::Null),
        "the volume asked to stay is kept, detached"
    );
    let listed: Value =
        nova.http.get(format!("{}/_sim/volumes", nova.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, Value::Array(left));
}

#[tokio::test]
async fn a_metadata_item_is_set_by_key_with_novas_refusals() {
    let (sim, nova) = start(SimConfig::default()).await;
    let mut asked = server("meta", demo::FLAVOR_M1_TINY);
    asked["metadata"] = json!({"gatehouse_request_id": "r1"});
    let (_, body) = nova.create("2.79", asked).await;
    let id = body["server"]["id"].as_str().unwrap().to_string();
    let (nova, id) = (&nova, &id);
    let put = move |key: &str, body: Value| {
        let path = format!("/servers/{id}/metadata/{key}");
        async move { nova.call(reqwest::Method::PUT, &path, Some("2.79"), Some(&body)).await }
    };

    let (status, answer) =
        put("gatehouse_retire_at", json!({"meta": {"gatehouse_retire_at": "2027-01-01T00:00:00Z"}})).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"meta": {"gatehouse_retire_at": "2027-01-01T00:00:00Z"}})));
    let metadata = &sim.servers()[0]["metadata"];
    assert_eq!(metadata, &json!({"gatehouse_request_id": "r1", "gatehouse_retire_at": "2027-01-01T00:00:00Z"}));

    let (status, answer) = put("a", json!({"meta": {"b": "1"}})).await;
    assert_eq!(
        (status, answer["badRequest"]["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Request body and URI mismatch"))
    );
    assert_eq!(put("a", json!({"meta": {"a": "1", "b": "2"}})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(put("a", json!({"metadata": {"a": "1"}})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(put("a", json!({"meta": {"a": "x".repeat(256)}})).await.0, StatusCode::BAD_REQUEST);
    let missing = format!("/servers/{}/metadata/a", "0".repeat(32));
    let (status, _) = nova.call(reqwest::Method::PUT, &missing, None, Some(&json!({"meta": {"a": "1"}}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sim.servers()[0]["metadata"], *metadata, "no refusal changed anything");
}
