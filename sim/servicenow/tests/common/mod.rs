//! What the simulator's HTTP tests share (`sim.rs`, `change_model.rs`): a simulator on a free
//! port and Table API calls with HTTP Basic as the integration user.

use serde_json::Value;
use servicenow_sim::{SnSim, SnSimConfig};

pub const USER: &str = "gatehouse";
pub const PASSWORD: &str = "secret";

pub async fn sim() -> SnSim {
    SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await.unwrap()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn get(sim: &SnSim, path_and_query: &str) -> reqwest::Response {
    http().get(format!("{}{path_and_query}", sim.base_url())).basic_auth(USER, Some(PASSWORD)).send().await.unwrap()
}

pub async fn send(sim: &SnSim, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
    http()
        .request(method, format!("{}{path}", sim.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}
