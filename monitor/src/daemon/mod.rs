//! `kubelet-drift run`: attach the probes, report a baseline, then report every change.
//!
//! One tokio thread. The loop waits on the ring buffer (`events::Stream`), the scheduler's
//! next deadline, the watchdog and signals; everything else happens in [`core::Core`],
//! which never touches the kernel or a sink directly. Records are classified at once
//! (cheap); evaluation runs when the burst window closes, a few milliseconds after the
//! first relevant event.
//!
//! Rooms: [`cli`] (the command line), [`source`] (where records come from), [`classify`]
//! (records to facts), [`schedule`] (when to evaluate), [`naming`] (which record a report
//! names), [`inventory`] (which processes are the kubelet), [`core`] and [`evaluate`] (the
//! flow from facts to transitions), [`proc`] (what is read from /proc).

pub mod classify;
pub mod cli;
pub mod core;
pub mod evaluate;
pub mod inventory;
mod kept;
pub mod naming;
pub mod observe;
pub mod placed;
pub mod proc;
pub mod schedule;
pub mod source;
#[cfg(test)]
mod tests;
mod watching;

use std::{process::ExitCode, time::Instant};

use anyhow::{Context, Result};

pub use self::cli::RunArgs;
use self::core::{Core, Kernel, Sink};
use crate::{
    decode::Record,
    events::Stream,
    output::Outputs,
    probes::{ProbeOptions, Probes},
    report::{DriftReport, Notice, NoticeLevel},
    settings::{self, Settings},
    watched::WatchSet,
};

pub fn main(args: RunArgs) -> ExitCode {
    // Diagnostics for people debugging the daemon (KUBELET_DRIFT_LOG=debug): what triggered
    // each evaluation and how long it took. Findings never go through this.
    // A bare level ("debug") is about this crate; aya's loader is very talkative at debug.
    let filter = match std::env::var("KUBELET_DRIFT_LOG") {
        Ok(v) if !v.contains(['=', ',']) => format!("warn,kubelet_drift={v}"),
        Ok(v) => v,
        Err(_) => "warn".into(),
    };
    // Never waited for: a stderr nobody reads must not freeze the loop (see output::diag).
    crate::output::diag::init(&filter);
    // `--distribution`: replaces detection for every evaluation of this process.
    crate::kubelet::distro::set_override(args.distribution);
    let settings = match effective_settings(&args) {
        Ok(s) => s,
        Err(e) => {
            crate::output::diag::say_last(&format!("kubelet-drift: {e:#}"));
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::output::diag::say_last(&format!("kubelet-drift: starting the runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::output::diag::say_last(&format!("kubelet-drift: {e:#}"));
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&format!("failed: {e:#}"))]);
            ExitCode::from(1)
        }
    }
}

/// The settings file (or the embedded defaults), with the command line on top.
pub fn effective_settings(args: &RunArgs) -> Result<Settings> {
    Ok(settings::load_with_overrides(
        args.config.as_deref(),
        &args.overrides(),
    )?)
}

impl Kernel for Probes {
    fn apply_watch(&mut self, set: &WatchSet) -> Result<()> {
        set.apply(self).context("updating the kernel watch maps")
    }

    fn track(&mut self, pid: u32) {
        let _ = Probes::track(self, pid);
    }

    fn links_seen(&mut self, ns: u64) -> Result<()> {
        self.set_links_seen(ns)
            .context("updating the kernel's link state")
    }
}

impl Sink for Outputs {
    fn report(&mut self, r: &DriftReport) {
        Outputs::report(self, r)
    }

    fn notice(&mut self, n: &Notice) {
        Outputs::notice(self, n)
    }
}

async fn run(settings: Settings) -> Result<()> {
    let preflight = crate::probes::preflight::Preflight::check();
    if let Some(e) = preflight.error() {
        anyhow::bail!(e);
    }
    let mut observer = observe::Observer::start(&settings).await?;
    let mut probes = Probes::load(&ProbeOptions {
        ring: settings.ring_buffer_bytes,
    })?;
    let mut outputs = Outputs::from_settings(&settings)?;
    for w in probes
        .warnings
        .clone()
        .into_iter()
        .chain(preflight.paranoid.clone())
    {
        outputs.notice(&Notice {
            level: NoticeLevel::Warning,
            message: w,
        });
    }
    if outputs.is_empty() {
        crate::output::diag::say(
            "kubelet-drift: warning: no output is enabled (no journald socket, no --json-out, stderr \
             is not a terminal): findings go nowhere",
        );
    }
    probes.set_comms(&settings.kubelet_names)?;
    let stream = Stream::new(probes.take_ring()?)?;
    let mut core = Core::new(settings, Box::new(proc::LiveProc), Instant::now());
    core.baseline(&mut probes)?;
    // Writers from before the start (their opens and mmaps were never seen) are polled.
    for t in core.blind.adopt_existing(&core.watch) {
        core.sched.push(t, Instant::now());
    }
    let metrics = observer.as_ref().map(|o| o.metrics.clone());
    core.flush(&mut observe::Observed {
        outputs: &mut outputs,
        metrics: metrics.as_ref(),
    });
    if let Some(m) = &metrics {
        m.set_ready();
    }
    // Start-up (BTF, program loading) leaves tens of MiB of freed heap that glibc keeps; give
    // it back once, so the resident size is what the daemon really uses.
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("watching; baseline reported"),
    ]);
    main_loop(
        &mut core,
        stream,
        &mut probes,
        &mut outputs,
        observer.as_mut(),
    )
    .await
}

async fn main_loop(
    core: &mut Core,
    mut stream: Stream,
    probes: &mut Probes,
    outputs: &mut Outputs,
    mut observer: Option<&mut observe::Observer>,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    // SIGHUP (`systemctl reload`, logrotate's postrotate): reopen json_out.
    let mut sighup = signal(SignalKind::hangup())?;
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut next_ping = watchdog.map(|d| Instant::now() + d);
    let mut batch: Vec<Record> = Vec::new();
    let mut diag_lost = crate::output::diag::DroppedLines::default();
    loop {
        let mut wake = core.sched.wake();
        if let Some(d) = core.blind.next_poll() {
            wake = wake.min(d);
        }
        if let Some(p) = next_ping {
            wake = wake.min(p);
        }
        if let Some(o) = &observer {
            wake = wake.min(o.next_beat(Instant::now()));
        }
        tokio::select! {
            r = stream.next_batch(&mut batch) => {
                r.context("reading the ring buffer")?;
                core.ingest(batch.drain(..), Instant::now());
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => outputs.reopen(),
        }
        core.tick(Instant::now());
        if core.sched.due(Instant::now()) {
            let started = Instant::now();
            core.evaluate(&mut stream, probes, Instant::now)?;
            if let Some(o) = &observer {
                o.metrics.evaluated(started.elapsed());
            }
        }
        core.flush(&mut observe::Observed {
            outputs,
            metrics: observer.as_deref().map(|o| &o.metrics),
        });
        if let Some(o) = observer.as_deref_mut() {
            o.turn(probes, core.sched.lost_total());
        }
        // Our own diagnostics dropped at a stderr nobody reads: told on the findings' outputs.
        if let Some(n) = diag_lost.due(crate::output::diag::dropped(), Instant::now()) {
            outputs.notice(&crate::output::diag::DroppedLines::notice(n));
            if let Some(o) = &observer {
                o.metrics.sink_dropped("diagnostics", n);
            }
        }
        if let (Some(p), Some(every)) = (next_ping, watchdog)
            && Instant::now() >= p
        {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            next_ping = Some(Instant::now() + every);
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    Ok(())
}
