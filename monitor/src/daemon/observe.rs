//! What the daemon tells the metrics (`crate::metrics`), if they are on: every report (its
//! kind and the subject's status), each evaluation's time, the kernel's counters, records
//! lost and the loop's heartbeat. A listener like the sinks: data flows one way into it.

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::core::Sink;
use crate::{
    metrics::{self, Metrics},
    output::Outputs,
    probes::Probes,
    report::{Change, DriftReport, Notice},
    settings::Settings,
};

/// The metrics of a running daemon, with where they are written.
pub struct Observer {
    pub metrics: Metrics,
    textfile: Option<PathBuf>,
    last_textfile: Option<Instant>,
    /// The kernel counters are per-CPU maps (a read per CPU each): read at most once a
    /// second, not on every batch of records a storm brings.
    last_counters: Option<Instant>,
    lost_seen: u64,
}

impl Observer {
    /// Starts the HTTP endpoint (if `metrics.listen` is set) on the current runtime. `None`
    /// when metrics are off.
    pub async fn start(settings: &Settings) -> Result<Option<Observer>> {
        let m = &settings.metrics;
        if m.listen.is_none() && m.textfile.is_none() {
            return Ok(None);
        }
        let metrics = Metrics::new();
        if let Some(l) = &m.listen {
            let addr: SocketAddr = l.parse().with_context(|| format!("metrics.listen {l:?}"))?;
            let (bound, serve) = metrics::http::bind(addr, metrics.clone()).await?;
            tracing::info!(%bound, "metrics and /healthz served");
            tokio::spawn(serve);
        }
        Ok(Some(Observer {
            metrics,
            textfile: m.textfile.clone(),
            last_textfile: None,
            last_counters: None,
            lost_seen: 0,
        }))
    }

    /// The loop must turn at least this often while metrics are on (the heartbeat).
    pub fn next_beat(&self, now: Instant) -> Instant {
        now + metrics::HEARTBEAT
    }

    /// One turn of the loop: heartbeat, kernel counters, losses, the textfile (at most once a
    /// second).
    pub fn turn(&mut self, probes: &Probes, lost_total: u64) {
        self.metrics.heartbeat();
        let due = |t: Option<Instant>| t.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due(self.last_counters)
            && let Ok(c) = probes.counters()
        {
            self.last_counters = Some(Instant::now());
            self.metrics.kernel_counters([
                c.exec_seen + c.file_seen + c.exit_seen,
                c.exec_filtered + c.file_filtered,
                c.sent,
                c.dropped,
            ]);
        }
        if lost_total > self.lost_seen {
            self.metrics.lost(lost_total - self.lost_seen);
            self.lost_seen = lost_total;
        }
        if let Some(path) = &self.textfile
            && due(self.last_textfile)
        {
            if let Err(e) = metrics::textfile::write(&self.metrics, path) {
                tracing::warn!("{e:#}");
                self.metrics.sink_failed("textfile");
            }
            self.last_textfile = Some(Instant::now());
        }
    }
}

fn status_name(s: crate::finding::Status) -> &'static str {
    match s {
        crate::finding::Status::Pass => "pass",
        crate::finding::Status::Fail => "fail",
        crate::finding::Status::Error => "error",
    }
}

/// The outputs, with the metrics told of every report.
pub struct Observed<'a> {
    pub outputs: &'a mut Outputs,
    pub metrics: Option<&'a Metrics>,
}

impl Sink for Observed<'_> {
    fn report(&mut self, r: &DriftReport) {
        self.outputs.report(r);
        if let Some(m) = self.metrics {
            m.reported(r.change.as_str());
            let subject = r.finding.subject.key();
            if r.change == Change::KubeletStopped {
                m.forget_subject(&r.finding.control, &subject);
            } else if r.change != Change::ImpostorKubelet {
                m.set_status(&r.finding.control, &subject, status_name(r.finding.status));
            }
        }
    }

    fn notice(&mut self, n: &Notice) {
        self.outputs.notice(n);
    }
}
