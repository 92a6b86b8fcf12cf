//! The simulator and `gatehouse serve` as child processes, so a test can SIGKILL and restart serve
//! while the cloud lives on.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{Api, temp_dir};

pub fn binary(name: &str) -> PathBuf {
    let gatehouse = PathBuf::from(env!("CARGO_BIN_EXE_gatehouse"));
    let path = gatehouse.with_file_name(name);
    assert!(path.exists(), "{} is missing: build it with `cargo build -p {name}` (tests/run.sh does)", path.display());
    path
}

pub struct SimProcess {
    child: Child,
    pub base: String,
    http: reqwest::Client,
}

impl SimProcess {
    pub fn start(build_delay_ms: u64) -> Self {
        let mut child = Command::new(binary("pcd-sim"))
            .args(["--listen", "127.0.0.1:0", "--build-delay-ms", &build_delay_ms.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pcd-sim");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        while !line.starts_with("PCD_SIM_URL=") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "pcd-sim ended before printing its URL");
        }
        let base = line.trim().trim_start_matches("PCD_SIM_URL=").to_string();
        SimProcess { child, base, http: reqwest::Client::new() }
    }

    pub fn clouds_yaml(&self) -> String {
        let c = pcd_sim::SimConfig::default();
        format!(
            "clouds:\n  demo:\n    region_name: {}\n    auth:\n      auth_url: {}/identity/v3\n      username: {}\n      password: {}\n      project_name: {}\n      user_domain_name: {}\n      project_domain_name: {}\n",
            c.region, self.base, c.username, c.password, c.project_name, c.user_domain, c.project_domain
        )
    }

    pub async fn set_faults(&self, faults: Value) {
        let resp = self.http.put(format!("{}/_sim/faults", self.base)).json(&faults).send().await.unwrap();
        assert!(resp.status().is_success());
    }

    pub async fn servers(&self) -> Vec<Value> {
        let resp = self.http.get(format!("{}/_sim/servers", self.base)).send().await.unwrap();
        resp.json::<Vec<Value>>().await.unwrap()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gatehouse serve` in its configured (non-demo) mode, from environment variables.
pub struct ServeProcess {
    child: Option<Child>,
    env: Vec<(String, String)>,
    listen: String,
    pub data_dir: PathBuf,
    pub api: Api,
}

impl std::ops::Deref for ServeProcess {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The link key the configured serve runs with: tests derive a link's token from it.
pub const LINK_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

/// The evidence key the configured serve seals history chains with.
pub const EVIDENCE_KEY: &str = "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8=";

impl ServeProcess {
    /// Starts serve against `sim`; `settings` override or add GATEHOUSE_* variables.
    pub async fn start(sim: &SimProcess, settings: &[(&str, &str)]) -> Self {
        let data_dir = temp_dir("serve");
        let clouds = data_dir.join("clouds.yaml");
        std::fs::write(&clouds, sim.clouds_yaml()).unwrap();
        let listen = format!("127.0.0.1:{}", free_port());
        let token = format!("test-token-{}", super::sys_id());
        let mut env: Vec<(String, String)> = vec![
            ("GATEHOUSE_API_TOKENS".into(), format!("servicenow:{token}")),
            ("GATEHOUSE_LINK_KEY".into(), LINK_KEY.into()),
            ("GATEHOUSE_EVIDENCE_KEY".into(), EVIDENCE_KEY.into()),
            ("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL".into(), "true".into()),
            ("GATEHOUSE_PUBLIC_BASE_URL".into(), format!("http://{listen}")),
            ("GATEHOUSE_CLOUDS_YAML".into(), clouds.display().to_string()),
            ("GATEHOUSE_APPROVERS".into(), "approver@example.com".into()),
            ("GATEHOUSE_MAIL_FROM".into(), "gatehouse@example.com".into()),
            ("GATEHOUSE_DATA_DIR".into(), data_dir.display().to_string()),
            ("GATEHOUSE_PROVISION_WAIT_SECS".into(), "10".into()),
            ("GATEHOUSE_SWEEP_INTERVAL_SECS".into(), "1".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        for (k, v) in settings {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let api = Api::new(format!("http://{listen}"), token, data_dir.join("outbox"));
        let mut serve = ServeProcess { child: None, env, listen, data_dir, api };
        serve.spawn().await;
        serve
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.data_dir.join("serve.log")).unwrap();
        let child = Command::new(binary("gatehouse"))
            .args(["serve", "--listen", &self.listen])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start gatehouse serve");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(resp) = self.api.http.get(format!("{}/healthz", self.api.base)).send().await
                && resp.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("gatehouse serve exited with {status}; log: {}", self.log());
            }
            assert!(tokio::time::Instant::now() < deadline, "serve did not come up; log: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("serve.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Restarts serve on the same data with `settings` changed, as an operator would after editing
    /// its configuration (an empty value unsets one).
    pub async fn restart_with(&mut self, settings: &[(&str, &str)]) {
        for (k, v) in settings {
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.restart().await;
    }

    pub fn outbox(&self) -> &Path {
        &self.api.outbox
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
