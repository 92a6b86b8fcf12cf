//! The two homes of DESIGN.md's figures ("Observability"): Prometheus text for `serve
//! --metrics-listen`, and CloudWatch embedded metric format (EMF) lines on Lambda. Both take the
//! names and labels from `domain::metrics`, so a dashboard reads the same names in either place.

use std::io::Write;
use std::sync::{Arc, Mutex};

use domain::metrics::{APPROVE_TO_ACTIVE, Counter, MESSAGES, Recorder};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(String, String)>;

/// Buckets of approve → active, in seconds: a VM is usually up in a minute, sometimes ten.
const BUCKETS: [f64; 12] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

/// Prometheus' registry of Gatehouse's figures.
pub struct PrometheusRecorder {
    registry: Registry,
    counters: Vec<(Counter, Family<Labels, PromCounter>)>,
    approve_to_active: Histogram,
    messages: Family<Labels, Gauge>,
}

impl Default for PrometheusRecorder {
    fn default() -> Self {
        let mut registry = Registry::default();
        let counters = Counter::ALL
            .iter()
            .map(|c| {
                let family = Family::<Labels, PromCounter>::default();
                registry.register(c.name(), c.help(), family.clone());
                (*c, family)
            })
            .collect();
        let approve_to_active = Histogram::new(BUCKETS);
        // Registered with its unit, which the exposition appends: `…_seconds`.
        registry.register_with_unit(
            APPROVE_TO_ACTIVE.trim_end_matches("_seconds"),
            "From the last approval to the request's VMs being active",
            Unit::Seconds,
            approve_to_active.clone(),
        );
        let messages = Family::<Labels, Gauge>::default();
        registry.register(MESSAGES, "Owed mails and write-backs, by state", messages.clone());
        PrometheusRecorder { registry, counters, approve_to_active, messages }
    }
}

impl PrometheusRecorder {
    /// The exposition text (OpenMetrics, which Prometheus scrapes), ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The `Content-Type` of [`PrometheusRecorder::render`].
    pub const CONTENT_TYPE: &'static str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
}

impl Recorder for PrometheusRecorder {
    fn count(&self, counter: Counter, label: &str) {
        if let Some((_, family)) = self.counters.iter().find(|(c, _)| *c == counter) {
            family.get_or_create(&vec![(counter.label().to_string(), label.to_string())]).inc();
        }
    }

    fn approve_to_active(&self, seconds: f64) {
        self.approve_to_active.observe(seconds);
    }

    fn messages(&self, state: &str, count: u64) {
        self.messages.get_or_create(&vec![("state".to_string(), state.to_string())]).set(count as i64);
    }
}

/// CloudWatch embedded metric format: one JSON line per figure on stdout, which CloudWatch turns
/// into metrics in the `Gatehouse` namespace
/// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
pub struct EmfRecorder {
    namespace: String,
    out: Mutex<Box<dyn Write + Send>>,
}

/// The namespace when none is set; template.yaml sets `Gatehouse/<stack>` so that two stacks in one
/// account keep their figures (and alarms) apart.
const DEFAULT_NAMESPACE: &str = "Gatehouse";

impl Default for EmfRecorder {
    fn default() -> Self {
        let namespace = std::env::var("GATEHOUSE_METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        EmfRecorder { namespace, out: Mutex::new(Box::new(std::io::stdout())) }
    }
}

impl EmfRecorder {
    /// A recorder writing to `out` in `namespace` (tests read what it wrote).
    pub fn to(namespace: &str, out: Box<dyn Write + Send>) -> Self {
        EmfRecorder { namespace: namespace.to_string(), out: Mutex::new(out) }
    }

    fn emit(&self, name: &str, unit: &str, value: f64, dimension: Option<(&str, &str)>) {
        let mut line = serde_json::json!({
            "_aws": {
                "Timestamp": epoch_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension.map(|(k, _)| vec![k]).unwrap_or_default()],
                    "Metrics": [{"Name": name, "Unit": unit}],
                }],
            },
            name: value,
        });
        if let Some((k, v)) = dimension {
            line[k] = serde_json::Value::String(v.to_string());
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// Milliseconds since the epoch, as EMF's `Timestamp` wants them.
fn epoch_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

impl Recorder for EmfRecorder {
    fn count(&self, counter: Counter, label: &str) {
        let name = format!("{}_total", counter.name());
        self.emit(&name, "Count", 1.0, Some((counter.label(), label)));
    }

    fn approve_to_active(&self, seconds: f64) {
        self.emit(APPROVE_TO_ACTIVE, "Seconds", seconds, None);
    }

    fn messages(&self, state: &str, count: u64) {
        self.emit(MESSAGES, "Count", count as f64, Some(("state", state)));
    }
}

/// Installs the recorder of a Lambda function (EMF on stdout).
pub fn install_emf() {
    domain::metrics::install(Arc::new(EmfRecorder::default()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_carries_designs_names() {
        let r = PrometheusRecorder::default();
        r.count(Counter::Requests, "accepted");
        r.count(Counter::Requests, "accepted");
        r.count(Counter::GateDecisions, "proceed");
        r.approve_to_active(42.0);
        r.messages("dead", 3);
        let text = r.render();
        assert!(text.contains("gatehouse_requests_total{outcome=\"accepted\"} 2"), "{text}");
        assert!(text.contains("gatehouse_gate_decisions_total{decision=\"proceed\"} 1"), "{text}");
        assert!(text.contains("gatehouse_approve_to_active_seconds_count 1"), "{text}");
        assert!(text.contains("gatehouse_approve_to_active_seconds_bucket{le=\"60.0\"} 1"), "{text}");
        assert!(text.contains("gatehouse_messages{state=\"dead\"} 3"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn emf_lines_name_the_metric_its_unit_and_its_dimension() {
        let buf = Shared::default();
        let r = EmfRecorder::to("Gatehouse/staging", Box::new(buf.clone()));
        r.count(Counter::Decisions, "approved");
        r.approve_to_active(12.5);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["gatehouse_decisions_total"], 1.0);
        assert_eq!(lines[0]["decision"], "approved");
        let directive = &lines[0]["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Gatehouse/staging");
        assert_eq!(directive["Dimensions"], serde_json::json!([["decision"]]));
        assert_eq!(directive["Metrics"][0], serde_json::json!({"Name": "gatehouse_decisions_total", "Unit": "Count"}));
        assert_eq!(lines[1]["gatehouse_approve_to_active_seconds"], 12.5);
        assert_eq!(lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
    }
}
