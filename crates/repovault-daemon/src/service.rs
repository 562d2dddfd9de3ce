//! The daemon itself: one timer loop per `[[schedule]]` entry, the runs they start, the state
//! they leave behind, and an orderly stop.
//!
//! A task never runs twice at once: when its time comes while the previous run is still going,
//! the new run is skipped and recorded (state, metrics, notifications). On a stop request the
//! timers end, running jobs are asked to stop at their next safe point and awaited, the state is
//! saved, and only then does the HTTP server close.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::{Timestamp, Zoned};
use repovault_core::config::{JobKind, ScheduleConfig};
use repovault_core::Cancel;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::notify::{Event, Notifier};
use crate::runner::{JobOutcome, JobRunner, Outcome, RunRecord, Task};
use crate::state::State;

/// Everything `run` needs besides the runner and the notifier.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// Where the state is kept (e.g. `<cache dir>/daemon/state.json`).
    pub state_path: PathBuf,
    /// The store's URL as shown to people; the state belongs to it.
    pub store: String,
    pub schedules: Vec<ScheduleConfig>,
    /// How long finished runs are remembered.
    pub history: Duration,
    pub time_zone: jiff::tz::TimeZone,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Server(std::io::Error),
}

pub(crate) struct TaskSlot {
    pub task: Task,
    pub schedule: ScheduleConfig,
    pub next: Mutex<Option<Timestamp>>,
}

pub(crate) struct Shared {
    pub options: Options,
    pub state: Mutex<State>,
    pub metrics: Metrics,
    pub ready: AtomicBool,
    pub stopping: AtomicBool,
    pub tasks: Vec<TaskSlot>,
    running: Mutex<HashSet<String>>,
    jobs: Mutex<Vec<JoinHandle<()>>>,
    runner: Arc<dyn JobRunner>,
    notifier: Arc<Notifier>,
    cancel: Cancel,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn is_running(&self, task: &str) -> bool {
        lock(&self.running).contains(task)
    }

    pub fn next_run(&self, i: usize) -> Option<Timestamp> {
        *lock(&self.tasks[i].next)
    }

    fn save(&self, state: &State) {
        if let Err(e) = state.save(&self.options.state_path) {
            tracing::error!("{e}");
        }
    }
}

/// Runs the daemon until `shutdown` resolves, then stops in order (see the module docs).
pub async fn run(
    options: Options,
    runner: Arc<dyn JobRunner>,
    notifier: Arc<Notifier>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: options.listen,
            source,
        })?;
    let (mut state, problem) = State::load(&options.state_path, &options.store);
    if let Some(p) = problem {
        tracing::warn!("{p}");
    }
    let now = Timestamp::now();
    let interrupted = state.mark_interrupted(now);
    if interrupted > 0 {
        tracing::warn!("{interrupted} run(s) were cut short when the daemon last stopped");
    }
    state.prune(now, options.history);
    let metrics = Metrics::new();
    for r in &state.runs {
        metrics.observe_run(r, false);
    }
    metrics.set_repositories(state.repos.values());
    let tasks = options
        .schedules
        .iter()
        .map(|s| TaskSlot {
            task: Task::of(s),
            schedule: s.clone(),
            next: Mutex::new(None),
        })
        .collect();
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        metrics,
        ready: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        tasks,
        running: Mutex::new(HashSet::new()),
        jobs: Mutex::new(Vec::new()),
        runner,
        notifier,
        cancel: Cancel::new(),
        options,
    });
    shared.save(&shared.state());
    for slot in &shared.tasks {
        shared.metrics.set_running(&slot.task.name, false);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let app = crate::http::router(Arc::clone(&shared));
    let (server_done_tx, server_done_rx) = watch::channel(false);
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_done_rx.clone().wait_for(|d| *d).await;
            })
            .await
    });
    let mut timers = Vec::new();
    for i in 0..shared.tasks.len() {
        timers.push(tokio::spawn(timer(Arc::clone(&shared), i, stop_rx.clone())));
    }
    shared.ready.store(true, Ordering::SeqCst);
    tracing::info!(
        "daemon listening on http://{} with {} schedule(s)",
        shared.options.listen,
        shared.tasks.len()
    );

    tokio::select! {
        () = shutdown => {}
        res = &mut server => {
            return Err(DaemonError::Server(match res {
                Ok(Ok(())) => std::io::Error::other("stopped unexpectedly"),
                Ok(Err(e)) => e,
                Err(e) => std::io::Error::other(e.to_string()),
            }));
        }
    }
    shared.ready.store(false, Ordering::SeqCst);
    shared.stopping.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    shared.cancel.cancel();
    for t in timers {
        let _ = t.await;
    }
    let jobs: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&shared.jobs));
    let running = jobs.iter().filter(|j| !j.is_finished()).count();
    if running > 0 {
        tracing::info!(
            "stopping: waiting for {running} running job(s) to finish the repositories in flight"
        );
    }
    for j in jobs {
        let _ = j.await;
    }
    shared.save(&shared.state());
    let _ = server_done_tx.send(true);
    let _ = server.await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// Fires task `i` at each of its cron times (plus jitter) until told to stop.
async fn timer(shared: Arc<Shared>, i: usize, mut stop: watch::Receiver<bool>) {
    let slot = &shared.tasks[i];
    let tz = shared.options.time_zone.clone();
    let mut after = Zoned::now().with_time_zone(tz.clone());
    loop {
        let Some(next) = slot.schedule.cron.next_after(&after) else {
            tracing::warn!(
                "schedule {}: {:?} has no further time; it will not run again",
                slot.task.name,
                slot.schedule.cron.as_str()
            );
            return;
        };
        let jitter = jitter(slot.schedule.jitter.get());
        let fire_at = next
            .timestamp()
            .checked_add(jitter)
            .unwrap_or(next.timestamp());
        *lock(&slot.next) = Some(fire_at);
        // Sleep in slices and re-read the wall clock: cron times are wall-clock times, and a
        // long monotonic sleep would drift across clock adjustments or a suspended machine.
        loop {
            let left = fire_at.as_millisecond() - Timestamp::now().as_millisecond();
            if left <= 0 {
                break;
            }
            let slice = Duration::from_millis(u64::try_from(left).unwrap_or(0).min(30_000));
            tokio::select! {
                () = tokio::time::sleep(slice) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        if *stop.borrow() {
            return;
        }
        fire(&shared, i, next.timestamp());
        // The next time after this one, or after now when this one came late (no burst of
        // catch-up runs after a pause).
        let now = Zoned::now().with_time_zone(tz.clone());
        after = if next > now { next } else { now };
    }
}

fn jitter(max: Duration) -> jiff::SignedDuration {
    if max.is_zero() {
        return jiff::SignedDuration::ZERO;
    }
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    jiff::SignedDuration::from_millis(i64::try_from(fastrand::u64(0..ms)).unwrap_or(0))
}

/// Starts a run of task `i`, or records it as skipped when one is still going.
pub(crate) fn fire(shared: &Arc<Shared>, i: usize, scheduled: Timestamp) {
    let task = shared.tasks[i].task.clone();
    let started = Timestamp::now();
    let already = !lock(&shared.running).insert(task.name.clone());
    if already {
        let record = RunRecord {
            id: 0,
            task: task.name.clone(),
            kind: task.kind,
            scheduled,
            started,
            finished: Some(started),
            outcome: Outcome::Skipped,
            summary: "skipped: the previous run was still going".into(),
            error: None,
        };
        tracing::warn!(task = %task.name, "run due at {scheduled} skipped: the previous run is still going");
        shared.metrics.observe_run(&record, true);
        {
            let mut st = shared.state();
            st.start_run(record.clone());
            shared.save(&st);
        }
        let event = Event::from_outcome(
            &task,
            started,
            started,
            &JobOutcome {
                outcome: Outcome::Skipped,
                summary: record.summary.clone(),
                error: None,
                backup: None,
            },
        );
        let notifier = Arc::clone(&shared.notifier);
        track(
            shared,
            tokio::spawn(async move {
                notifier.send(&event).await;
            }),
        );
        return;
    }
    let id = {
        let mut st = shared.state();
        let id = st.start_run(RunRecord {
            id: 0,
            task: task.name.clone(),
            kind: task.kind,
            scheduled,
            started,
            finished: None,
            outcome: Outcome::Running,
            summary: "running".into(),
            error: None,
        });
        shared.save(&st);
        id
    };
    shared.metrics.set_running(&task.name, true);
    tracing::info!(task = %task.name, "run {id} started");
    let shared2 = Arc::clone(shared);
    let handle = tokio::spawn(async move {
        let shared = shared2;
        let runner = Arc::clone(&shared.runner);
        let cancel = shared.cancel.clone();
        let t = task.clone();
        let outcome = tokio::task::spawn_blocking(move || runner.run(&t, &cancel))
            .await
            .unwrap_or_else(|e| JobOutcome::failed(format!("the job stopped unexpectedly: {e}")));
        let finished = Timestamp::now();
        finish(&shared, &task, id, finished, &outcome);
        let event = Event::from_outcome(&task, started, finished, &outcome);
        shared.notifier.send(&event).await;
    });
    track(shared, handle);
}

fn track(shared: &Shared, handle: JoinHandle<()>) {
    let mut jobs = lock(&shared.jobs);
    jobs.retain(|j| !j.is_finished());
    jobs.push(handle);
}

fn finish(shared: &Shared, task: &Task, id: u64, finished: Timestamp, outcome: &JobOutcome) {
    {
        let mut st = shared.state();
        if let (JobKind::Backup, Some(report)) = (task.kind, &outcome.backup) {
            st.record_backup(report, task.source.as_deref());
        }
        let record = st.run_mut(id).map(|r| {
            r.finished = Some(finished);
            r.outcome = outcome.outcome;
            r.summary = outcome.summary.clone();
            r.error = outcome.error.clone();
            r.clone()
        });
        st.prune(finished, shared.options.history);
        shared.save(&st);
        // Metrics are updated while the state is still locked: whoever sees the run finished
        // on /api/status must find its figures on /metrics too.
        shared.metrics.set_repositories(st.repos.values());
        if let Some(report) = &outcome.backup {
            shared.metrics.observe_backup(report);
        }
        if let Some(r) = &record {
            shared.metrics.observe_run(r, true);
        }
        shared.metrics.set_running(&task.name, false);
    }
    lock(&shared.running).remove(&task.name);
    match outcome.outcome {
        Outcome::Success => {
            tracing::info!(task = %task.name, "run {id} succeeded: {}", outcome.summary)
        }
        _ => tracing::error!(
            task = %task.name,
            "run {id} {}: {}",
            outcome.outcome.as_str(),
            outcome.error.as_deref().unwrap_or(&outcome.summary)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_its_bound() {
        assert_eq!(jitter(Duration::ZERO), jiff::SignedDuration::ZERO);
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(900));
            assert!(j >= jiff::SignedDuration::ZERO && j < jiff::SignedDuration::from_secs(900));
        }
    }
}
