//! Prometheus metrics and a health check, for operators and for the DaemonSet's probes.
//!
//! The daemon updates one [`Metrics`] as it works (each evaluation, each report, the kernel's
//! counters, the sinks' failures, a heartbeat on every turn of its loop); the HTTP server
//! (`http.rs`) and the node_exporter textfile writer (`textfile.rs`) only read it. Data flows
//! one way: nothing here can stall the daemon (the registry's metrics are atomics).
//!
//! Exposition format: the Prometheus project's own Rust client, `prometheus-client`
//! (OpenMetrics text), so names, types, escaping and `# EOF` are right by construction.

pub mod http;
pub mod textfile;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// How long the loop may go without a turn before /healthz says it is hung. The loop turns at
/// least every [`HEARTBEAT`], whatever happens on the node.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// How often the daemon's loop must turn (and call [`Metrics::heartbeat`]) when metrics are on.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    control: String,
    subject: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    change: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

/// The statuses a finding can have; one series each, 1 for the current one (a state set).
pub const STATUSES: [&str; 3] = ["pass", "fail", "error"];

/// Everything exported, behind `Arc`s: cheap to clone into the server task.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    status: Family<StatusLabels, Gauge>,
    evaluations: Counter,
    evaluation_seconds: Histogram,
    last_evaluation: Gauge<f64, AtomicU64>,
    reports: Family<ChangeLabels, Counter>,
    kernel_records: Family<OutcomeLabels, Counter>,
    lost_records: Counter,
    sink_failures: Family<SinkLabels, Counter>,
    sink_dropped: Family<SinkLabels, Counter>,
    /// Kernel counters are cumulative in the maps; the last totals seen, to add deltas.
    kernel_seen: Arc<Mutex<[u64; 4]>>,
    health: Arc<Health>,
}

/// What /healthz answers from.
#[derive(Default)]
struct Health {
    /// The probes are attached and the baseline is out.
    ready: AtomicBool,
    /// Unix seconds of the loop's last turn.
    heartbeat: AtomicU64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("kubelet_drift");
        let status = Family::<StatusLabels, Gauge>::default();
        r.register(
            "finding_status",
            "Current status of each subject's finding for the control: 1 for the status it has",
            status.clone(),
        );
        let evaluations = Counter::default();
        r.register(
            "evaluations",
            "Evaluations of the kubelet's effective configuration",
            evaluations.clone(),
        );
        // 50 µs .. ~1.6 s: a config edit's evaluation is well under a millisecond, a
        // pathological unit can take seconds.
        let evaluation_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        r.register(
            "evaluation_duration_seconds",
            "Time taken by each evaluation",
            evaluation_seconds.clone(),
        );
        let last_evaluation = Gauge::<f64, AtomicU64>::default();
        r.register(
            "last_evaluation_timestamp_seconds",
            "Unix time of the last evaluation",
            last_evaluation.clone(),
        );
        let reports = Family::<ChangeLabels, Counter>::default();
        r.register(
            "reports",
            "Reports written, by kind of change",
            reports.clone(),
        );
        let kernel_records = Family::<OutcomeLabels, Counter>::default();
        r.register(
            "kernel_records",
            "Kernel records by outcome: seen, filtered (in the kernel), sent, dropped (ring full)",
            kernel_records.clone(),
        );
        let lost_records = Counter::default();
        r.register(
            "lost_records",
            "Kernel records lost before reaching the daemon (each triggers a full rescan)",
            lost_records.clone(),
        );
        let sink_failures = Family::<SinkLabels, Counter>::default();
        r.register(
            "sink_failures",
            "Write failures of an output (journald, json, text)",
            sink_failures.clone(),
        );
        let sink_dropped = Family::<SinkLabels, Counter>::default();
        r.register(
            "sink_dropped_records",
            "Reports an output could not take (its queue was full or it was down)",
            sink_dropped.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            status,
            evaluations,
            evaluation_seconds,
            last_evaluation,
            reports,
            kernel_records,
            lost_records,
            sink_failures,
            sink_dropped,
            kernel_seen: Arc::new(Mutex::new([0; 4])),
            health: Arc::new(Health::default()),
        }
    }

    /// One evaluation done, in `took`.
    pub fn evaluated(&self, took: Duration) {
        self.evaluations.inc();
        self.evaluation_seconds.observe(took.as_secs_f64());
        self.last_evaluation.set(unix_now());
    }

    /// The current status of `subject`'s finding for `control` ("pass", "fail" or "error").
    pub fn set_status(&self, control: &str, subject: &str, status: &str) {
        for s in STATUSES {
            self.status
                .get_or_create(&StatusLabels {
                    control: control.to_string(),
                    subject: subject.to_string(),
                    status: s.to_string(),
                })
                .set(i64::from(s == status));
        }
    }

    /// A subject is gone (a kubelet stopped): its series go away too.
    pub fn forget_subject(&self, control: &str, subject: &str) {
        for s in STATUSES {
            self.status.remove(&StatusLabels {
                control: control.to_string(),
                subject: subject.to_string(),
                status: s.to_string(),
            });
        }
    }

    /// A report of kind `change` (e.g. "drift_detected") was written.
    pub fn reported(&self, change: &str) {
        self.reports
            .get_or_create(&ChangeLabels {
                change: change.to_string(),
            })
            .inc();
    }

    /// The kernel's cumulative counters (summed over CPUs), in the order seen, filtered,
    /// sent, dropped. Only the growth since the last call is added.
    pub fn kernel_counters(&self, totals: [u64; 4]) {
        let mut last = self.kernel_seen.lock().unwrap_or_else(|e| e.into_inner());
        for (i, name) in ["seen", "filtered", "sent", "dropped"].iter().enumerate() {
            let delta = totals[i].saturating_sub(last[i]);
            if delta > 0 {
                self.kernel_records
                    .get_or_create(&OutcomeLabels {
                        outcome: name.to_string(),
                    })
                    .inc_by(delta);
            }
        }
        *last = totals;
    }

    /// `n` records lost between the kernel and the daemon.
    pub fn lost(&self, n: u64) {
        self.lost_records.inc_by(n);
    }

    /// An output failed to write.
    pub fn sink_failed(&self, sink: &str) {
        self.sink_failures
            .get_or_create(&SinkLabels {
                sink: sink.to_string(),
            })
            .inc();
    }

    /// An output dropped `n` reports.
    pub fn sink_dropped(&self, sink: &str, n: u64) {
        self.sink_dropped
            .get_or_create(&SinkLabels {
                sink: sink.to_string(),
            })
            .inc_by(n);
    }

    /// The probes are attached and the baseline is out: /healthz may say ok.
    pub fn set_ready(&self) {
        self.heartbeat();
        self.health.ready.store(true, Ordering::Release);
    }

    /// The daemon's loop turned.
    pub fn heartbeat(&self) {
        self.health
            .heartbeat
            .store(unix_now() as u64, Ordering::Release);
    }

    /// `Ok` when healthy, else why not.
    pub fn health(&self) -> Result<(), String> {
        self.health_at(unix_now() as u64)
    }

    fn health_at(&self, now: u64) -> Result<(), String> {
        if !self.health.ready.load(Ordering::Acquire) {
            return Err("starting: probes not attached or baseline not out yet".into());
        }
        let beat = self.health.heartbeat.load(Ordering::Acquire);
        let idle = now.saturating_sub(beat);
        if idle > STALE_AFTER.as_secs() {
            return Err(format!(
                "hung: the event loop has not turned for {idle} s (limit {} s)",
                STALE_AFTER.as_secs()
            ));
        }
        Ok(())
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_a_state_set() {
        let m = Metrics::new();
        m.set_status("4.2.7", "after_restart", "fail");
        let text = m.render();
        assert!(
            text.contains(
                r#"kubelet_drift_finding_status{control="4.2.7",subject="after_restart",status="fail"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"kubelet_drift_finding_status{control="4.2.7",subject="after_restart",status="pass"} 0"#
        ));
        m.set_status("4.2.7", "after_restart", "pass");
        assert!(m.render().contains(
            r#"kubelet_drift_finding_status{control="4.2.7",subject="after_restart",status="pass"} 1"#
        ));
        m.forget_subject("4.2.7", "after_restart");
        assert!(!m.render().contains("after_restart"));
        assert!(m.render().ends_with("# EOF\n"));
    }

    #[test]
    fn kernel_counters_add_only_growth() {
        let m = Metrics::new();
        m.kernel_counters([10, 8, 2, 0]);
        m.kernel_counters([15, 12, 3, 0]);
        let text = m.render();
        assert!(
            text.contains(r#"kubelet_drift_kernel_records_total{outcome="seen"} 15"#),
            "{text}"
        );
        assert!(text.contains(r#"kubelet_drift_kernel_records_total{outcome="sent"} 3"#));
        // A restart of the counters (new maps) never makes a counter go down.
        m.kernel_counters([1, 1, 0, 0]);
        assert!(
            m.render()
                .contains(r#"kubelet_drift_kernel_records_total{outcome="seen"} 15"#)
        );
    }

    #[test]
    fn evaluations_and_reports_are_counted() {
        let m = Metrics::new();
        m.evaluated(Duration::from_micros(120));
        m.reported("drift_detected");
        m.lost(7);
        m.sink_failed("json");
        m.sink_dropped("json", 3);
        let text = m.render();
        for line in [
            "kubelet_drift_evaluations_total 1",
            "kubelet_drift_evaluation_duration_seconds_count 1",
            r#"kubelet_drift_reports_total{change="drift_detected"} 1"#,
            "kubelet_drift_lost_records_total 7",
            r#"kubelet_drift_sink_failures_total{sink="json"} 1"#,
            r#"kubelet_drift_sink_dropped_records_total{sink="json"} 3"#,
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn health_needs_readiness_and_a_recent_heartbeat() {
        let m = Metrics::new();
        assert!(m.health().unwrap_err().starts_with("starting"));
        m.set_ready();
        assert_eq!(m.health(), Ok(()));
        let now = unix_now() as u64;
        assert!(
            m.health_at(now + STALE_AFTER.as_secs() + 1)
                .unwrap_err()
                .starts_with("hung")
        );
    }
}
