//! `node-doctor agent`: the fleet mode. On every node it runs the checks continuously
//! (cheap ones every tick, costly collectors less often), follows the logs, keeps a bounded
//! history of samples, exports Prometheus metrics, and sets NodeConditions and Events that
//! remediation tools (medik8s NodeHealthCheck, Cluster API MachineHealthCheck, draino,
//! karpenter) act on. Kubernetes and Prometheus are the distributed engine: nothing of ours
//! runs between nodes.
//!
//! The only async crate. Collection and checks stay synchronous and pure: a collection runs
//! on a blocking thread with its deadline, so a stuck `/proc` read or a dead FUSE mount
//! never stalls the loop, the HTTP server or publishing.

/// The pure condition logic lives in the core crate (no IO); re-exported under the agent's
/// old paths.
pub use node_doctor_core::conditions::{self, catalog};
pub mod events;
pub mod history;
pub mod metrics;
pub mod publish;
pub mod server;
pub mod settings;
pub mod state;

use catalog::{CondType, Owner};
use conditions::{CondState, Policy, Status, Verdict};
use events::EventQueue;
use metrics::Metrics;
use node_doctor_core::checks::{self, CheckDef, Needs, Outcome, Report};
use node_doctor_core::config::Config;
use node_doctor_core::finding::{Finding, RuleKind};
use node_doctor_core::model::log::{KernelLog, Position, SourceStats};
use node_doctor_core::model::{LogRecord, Recording, Snapshot, Source};
use node_doctor_core::rules::{RuleSet, RuleSpec, npd, pack};
use node_doctor_host::Host;
use node_doctor_host::collect::daemon_logs;
use node_doctor_host::logmon::{self, Monitor};
use publish::{Desired, EventSpec, Kube, event_sender, publisher};
use server::Shared;
use settings::AgentSettings;
use state::{Persisted, StateDir};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How the agent was started.
#[derive(Debug, Clone)]
pub struct Args {
    pub root: PathBuf,
    pub config: Config,
    pub node_name: Option<String>,
    pub pod_name: Option<String>,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub no_kubernetes: bool,
    /// Uninstall: remove node-doctor's conditions from the Node and exit.
    pub remove_conditions: bool,
    pub version: String,
    pub revision: String,
}

pub(crate) fn log(msg: impl std::fmt::Display) {
    eprintln!(
        "{} node-doctor agent: {msg}",
        node_doctor_core::time::rfc3339_seconds(wall_ms())
    );
}

pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs the agent until SIGTERM or SIGINT; exits within a few seconds of it.
pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .thread_name("nd-agent")
        .build()?;
    let result = if args.remove_conditions {
        rt.block_on(remove_conditions(&args))
    } else {
        rt.block_on(main_loop(args))
    };
    // Blocking collections still stuck in the kernel are not waited for.
    rt.shutdown_timeout(Duration::from_millis(500));
    result
}

enum LogMsg {
    Events(Vec<logmon::Event>),
    /// kmsg records the checks that read kernel lines want (oom-kills, coredump-storm), and
    /// how many more were not kept.
    Kernel(Vec<LogRecord>, u64),
    Stats(
        Vec<node_doctor_core::model::log::SourceStats>,
        BTreeMap<String, node_doctor_core::model::log::Position>,
    ),
}

async fn main_loop(args: Args) -> anyhow::Result<()> {
    let settings = AgentSettings::from_config(&args.config).map_err(anyhow::Error::msg)?;
    // Probes of watched filesystems run in children of this executable (the binary answers
    // `__probe`): a statvfs stuck on a dead FUSE/NFS mount then blocks a child we can
    // abandon, never one of the agent's threads (see host::probe).
    let host = Host::open(&args.root)
        .map_err(anyhow::Error::msg)?
        .probe_in_child("/proc/self/exe");
    let state_dir = StateDir::open(&args.state_dir).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot use the state directory: {e}",
            args.state_dir.display()
        )
    })?;
    let persisted = state_dir.load();
    let metrics = Arc::new(Metrics::new(&args.version, &args.revision));
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        findings: Mutex::new("{}".into()),
        ready: AtomicBool::new(false),
        last_tick_ms: Default::default(),
        stale_after_ms: settings.interval_ms.saturating_mul(6).max(60_000),
        now_ms: wall_ms,
    });

    // Checks: every enabled one but kernel-log, whose rules the log monitor runs over the
    // followed kernel ring instead of re-reading the whole ring each tick.
    let checks: Vec<&'static CheckDef> = checks::select(&[], &args.config)
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .filter(|c| c.id != "kernel-log")
        .collect();
    let rules = load_rules(&settings)?;
    let types = catalog::types(&checks, &rules, settings.clear_after);

    let kube = if args.no_kubernetes {
        None
    } else {
        let node = args
            .node_name
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--node-name (or NODE_NAME) is needed to publish conditions; --no-kubernetes runs metrics only"))?;
        let client = kube_client(args.kubeconfig.as_deref()).await?;
        Some(Kube { client, node })
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let events = Arc::new(Mutex::new(EventQueue::new(
        settings.event_queue,
        settings.event_repeat_ms,
    )));
    let (desired_tx, desired_rx) = watch::channel(Desired::default());
    let (adopt_tx, mut adopt_rx) = mpsc::channel::<publish::NodeInfo>(1);

    // HTTP.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {}: {e}", args.listen))?;
    log(format!(
        "serving /metrics /healthz /readyz /findings on {}",
        listener.local_addr()?
    ));
    let mut srv_shutdown = shutdown_rx.clone();
    let app = server::router(shared.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = srv_shutdown.wait_for(|s| *s).await;
            })
            .await;
    });

    // Logs, on a thread of their own (the monitor is synchronous).
    let (log_tx, mut log_rx) = mpsc::channel::<LogMsg>(64);
    let log_stop = Arc::new(AtomicBool::new(false));
    let log_thread = start_logs(
        &host,
        &settings,
        &checks,
        rules.clone(),
        persisted.positions.clone(),
        log_tx,
        log_stop.clone(),
    )?;

    // Publishing.
    let mut tasks = Vec::new();
    if let Some(k) = &kube {
        tasks.push(tokio::spawn(publisher(
            k.clone(),
            desired_rx,
            adopt_tx,
            metrics.clone(),
            settings.heartbeat_ms,
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(event_sender(
            k.clone(),
            events.clone(),
            metrics.clone(),
            args.pod_name.clone().unwrap_or_else(|| k.node.clone()),
            shutdown_rx.clone(),
        )));
    }
    if rustix::process::getpid().is_init() {
        // PID 1 of its container: orphans are ours to reap.
        tasks.push(tokio::spawn(reaper(shutdown_rx.clone())));
    }

    let (collected_tx, mut collected_rx) = mpsc::channel::<Collected>(4);
    let mut engine = Engine {
        host,
        settings: settings.clone(),
        config: args.config.clone(),
        intervals: checks
            .iter()
            .map(|c| (c.id, settings.interval_of(&args.config, c)))
            .collect(),
        checks,
        last_run: BTreeMap::new(),
        not_before: BTreeMap::new(),
        history: history::History::new(settings.history_samples, settings.history_bytes),
        outcomes: BTreeMap::new(),
        findings_stale: true,
        types,
        conds: BTreeMap::new(),
        adopted: kube.is_none(),
        since_adoption: BTreeSet::new(),
        log_problems: BTreeMap::new(),
        persisted,
        metrics: metrics.clone(),
        shared: shared.clone(),
        events: events.clone(),
        state_dir,
        desired_tx,
        pending: None,
        generation: 0,
        collected_tx,
        collections_running: Arc::new(AtomicUsize::new(0)),
        npd_judged_ms: 0,
        kernel_ring: VecDeque::new(),
        kernel_not_kept: 0,
        follows_kmsg: settings
            .logs
            .sources
            .iter()
            .any(|x| matches!(Source::parse(x), Ok(Source::Kmsg))),
        kmsg_error: None,
        daemon_logs: Arc::new(Mutex::new(daemon_logs::Tail::new())),
        last_lines: BTreeMap::new(),
        log_modes: BTreeMap::new(),
        node_uid: None,
    };
    if kube.is_none() {
        engine.seed_from_persisted();
    }

    let mut tick = tokio::time::interval(Duration::from_millis(settings.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = tick.tick() => engine.tick(),
            Some(c) = collected_rx.recv() => engine.on_collected(c),
            Some(msg) = log_rx.recv() => engine.on_logs(msg),
            Some(node) = adopt_rx.recv() => engine.adopt(node),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    log("stopping");
    // One budget for the whole shutdown (issue: exit within 5 s of SIGTERM, the runtime's
    // own shutdown after this included): no step waits past it.
    let end = Instant::now() + SHUTDOWN_BUDGET;
    // Events already queued (a condition that just turned True) get a moment to go out.
    if kube.is_some() {
        let events_end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < events_end.min(end)
            && events.lock().map(|q| !q.is_empty()).unwrap_or(false)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = shutdown_tx.send(true);
    log_stop.store(true, Ordering::Relaxed);
    engine.save();
    let _ = tokio::time::timeout(end.saturating_duration_since(Instant::now()), server).await;
    for t in tasks {
        t.abort();
    }
    // The log thread is not waited for: what it read reaches the state file only through
    // this loop (saved above), and it may sleep up to IDLE_WAIT before it sees `log_stop`.
    // The process's exit ends it.
    drop(log_thread);
    Ok(())
}

/// An empty server-side apply under each of node-doctor's field managers: the API server
/// drops exactly the conditions those managers own (kubelet's, NPD's stay). Without force:
/// a manager owning nothing conflicts with nobody.
async fn remove_conditions(args: &Args) -> anyhow::Result<()> {
    let node = args
        .node_name
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--node-name (or NODE_NAME) names the Node to clean"))?;
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let kube = Kube { client, node };
    for manager in [catalog::OWN_MANAGER, catalog::NPD_MANAGER] {
        kube.apply(manager, false, &[], wall_ms())
            .await
            .map_err(|e| anyhow::anyhow!("{}: removing {manager}'s conditions: {e}", kube.node))?;
        log(format!(
            "{}: conditions of field manager {manager} removed",
            kube.node
        ));
    }
    Ok(())
}

async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    // The agent has its own backoff and must see each failure (to count it and move on):
    // kube's default retry would hold a request through 15 retries of a 503, up to minutes.
    config.default_retry = false;
    // A hung API server must not hold the publisher: requests end in bounded time.
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(15));
    config.write_timeout = Some(Duration::from_secs(15));
    Ok(kube::Client::try_from(config)?)
}

/// The default pack (unless turned off) and the NPD configs of `[logs] rules`.
fn load_rules(s: &AgentSettings) -> anyhow::Result<Vec<RuleSpec>> {
    let mut rules = if s.logs.default_rules {
        pack::default_rules()
    } else {
        Vec::new()
    };
    for path in &s.logs.rules {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        rules.extend(npd::parse(&name, &text)?.rules);
    }
    Ok(rules)
}

/// The log monitor on a thread: events and stats go to the engine; the thread ends when
/// `stop` is set (within its wait).
fn start_logs(
    host: &Host,
    s: &AgentSettings,
    checks: &[&'static CheckDef],
    mut rules: Vec<RuleSpec>,
    resume: BTreeMap<String, node_doctor_core::model::log::Position>,
    tx: mpsc::Sender<LogMsg>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let sources: Vec<Source> = s
        .logs
        .sources
        .iter()
        .map(|x| Source::parse(x).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    // Sources named in the config are read by every rule.
    for r in &mut rules {
        r.source = None;
    }
    let set = Arc::new(RuleSet::compile(rules)?);
    let host = host.clone();
    let boot_id =
        node_doctor_host::fs::read_trimmed(&*host.fs, "proc/sys/kernel/random/boot_id").ok();
    let now = host.kernel.now_ms();
    let opts = logmon::Options {
        follow: true,
        // A first start looks back a little (events just before it are not lost); a
        // restart resumes each source where it stood.
        since_ms: Some(now.saturating_sub(5 * 60_000)),
        resume,
        boot_id,
        keep_kernel_lines: kernel_lines(checks),
        ..logmon::Options::default()
    };
    Ok(std::thread::Builder::new()
        .name("nd-logs".into())
        .spawn(move || {
            let mut m = Monitor::new(host, set, &sources, opts);
            let mut last_stats = Instant::now() - STATS_EVERY;
            let mut sent: Option<(Vec<SourceStats>, BTreeMap<String, Position>)> = None;
            while !stop.load(Ordering::Relaxed) {
                let evs = m.poll();
                if !evs.is_empty() && tx.blocking_send(LogMsg::Events(evs)).is_err() {
                    return;
                }
                let (kept, dropped) = m.take_kernel_records();
                if (!kept.is_empty() || dropped > 0)
                    && tx.blocking_send(LogMsg::Kernel(kept, dropped)).is_err()
                {
                    return;
                }
                // Counters and positions go to the main loop when they changed, at most every
                // STATS_EVERY: an idle monitor sends nothing and wakes nobody.
                let now = (m.stats(), m.positions());
                let changed = sent.as_ref() != Some(&now);
                let wait = if !changed {
                    IDLE_WAIT
                } else if last_stats.elapsed() >= STATS_EVERY {
                    last_stats = Instant::now();
                    if tx
                        .blocking_send(LogMsg::Stats(now.0.clone(), now.1.clone()))
                        .is_err()
                    {
                        return;
                    }
                    sent = Some(now);
                    IDLE_WAIT
                } else {
                    STATS_EVERY.saturating_sub(last_stats.elapsed())
                };
                // Woken by a kmsg record or an inotify event at once (the monitor shortens the
                // wait itself for sources it must poll); otherwise when the changed counters
                // are due, or after IDLE_WAIT (to see `stop`; nobody waits for this thread,
                // the process exits around it).
                m.wait(wait);
            }
        })?)
}

/// How often the log thread sends changed counters and positions at most.
const STATS_EVERY: Duration = Duration::from_secs(2);
/// The log thread's longest sleep with nothing to do.
const IDLE_WAIT: Duration = Duration::from_secs(30);

/// A collection's result, back in the main loop.
struct Collected {
    generation: u64,
    /// When it started (the checks' `now`).
    now: u64,
    due: Vec<&'static CheckDef>,
    snapshot: Snapshot,
    /// CPU time the collection took (all its threads).
    took_ms: u64,
}

/// This process's CPU time so far (every thread), in ms.
fn process_cpu_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1000)
        .saturating_add(u64::try_from(t.tv_nsec / 1_000_000).unwrap_or(0))
}

/// Everything from SIGTERM to the end of `main_loop`; the runtime's shutdown adds at most
/// half a second.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(4);

/// A collection not back this long after its deadline is stuck in the kernel.
const STUCK_GRACE_MS: u64 = 5_000;
/// Collection threads at most, abandoned ones included (each is one blocking thread).
const MAX_COLLECTIONS: usize = 3;
/// Kernel records kept for the kernel-line checks: at most this many, this long.
const KERNEL_RING: usize = 256;
const KERNEL_RING_MS: u64 = 60 * 60 * 1000;

/// The kernel lines the agent's checks read from the ring (the log monitor keeps them).
fn kernel_lines(checks: &[&'static CheckDef]) -> Vec<String> {
    let mut out: Vec<String> = checks
        .iter()
        .flat_map(|c| checks::kernel_lines_of(c.id).iter().map(|l| l.to_string()))
        .collect();
    out.sort();
    out.dedup();
    out
}

struct Engine {
    host: Host,
    settings: AgentSettings,
    config: Config,
    checks: Vec<&'static CheckDef>,
    intervals: BTreeMap<&'static str, u64>,
    last_run: BTreeMap<&'static str, u64>,
    /// Not before this time does a check run again: its last collection's cost
    /// (`collect_budget_percent`).
    not_before: BTreeMap<&'static str, u64>,
    history: history::History,
    outcomes: BTreeMap<&'static str, (Outcome, f64)>,
    /// The outcomes changed since `/findings` was last rendered.
    findings_stale: bool,
    types: Vec<CondType>,
    conds: BTreeMap<String, CondState>,
    adopted: bool,
    /// Checks run since adoption: all of them make the first full evaluation.
    since_adoption: BTreeSet<&'static str>,
    /// NPD-named conditions from log rules: when a line last set each, and its finding.
    /// NPD-named type → (when, the matching rule's reason, the finding's summary).
    log_problems: BTreeMap<String, (u64, String, String)>,
    persisted: Persisted,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    events: Arc<Mutex<EventQueue>>,
    state_dir: StateDir,
    desired_tx: watch::Sender<Desired>,
    /// The collection in flight: its number and when it started. Its result comes back
    /// through `collected_tx` into the main loop, which keeps answering signals and judging
    /// the log conditions meanwhile.
    pending: Option<(u64, Instant)>,
    generation: u64,
    collected_tx: mpsc::Sender<Collected>,
    /// Collections whose thread has not returned yet, abandoned ones included.
    collections_running: Arc<AtomicUsize>,
    /// When the NPD-named conditions were last judged: a log line since then sets them.
    npd_judged_ms: u64,
    /// The kmsg records the kernel-line checks read (oom-kills, coredump-storm), as the log
    /// monitor followed them: the last hour, at most [`KERNEL_RING`].
    kernel_ring: VecDeque<LogRecord>,
    kernel_not_kept: u64,
    /// Whether kmsg is among the followed sources, and its last error.
    follows_kmsg: bool,
    kmsg_error: Option<String>,
    /// The kubelet's and the runtime's log lines, followed from one collection to the next.
    daemon_logs: Arc<Mutex<daemon_logs::Tail>>,
    last_lines: BTreeMap<String, u64>,
    /// How each log source is read, as last logged.
    log_modes: BTreeMap<String, String>,
    node_uid: Option<String>,
}

impl Engine {
    fn policy(&self, t: &CondType) -> Policy {
        Policy {
            clear: t.clear,
            unknown_after: self.settings.unknown_after,
        }
    }

    fn boot_id(&self) -> Option<String> {
        self.history
            .last(1)
            .first()
            .and_then(|s| s.host.boot_id.clone())
    }

    /// Without Kubernetes there is nothing to adopt: the persisted bookkeeping is the past.
    fn seed_from_persisted(&mut self) {
        for t in &self.types {
            if let Some(c) = self.persisted.conditions.get(&t.type_) {
                self.conds.insert(t.type_.clone(), c.clone());
            }
        }
    }

    /// The Node's conditions of our types, adopted as they are; the bookkeeping persisted
    /// by the previous run (boot id, counters) joins them when the status agrees.
    fn adopt(&mut self, node: publish::NodeInfo) {
        self.node_uid = node.uid.clone();
        let mut n = 0;
        for t in &self.types {
            let Some(c) = node.conditions.iter().find(|c| c.type_ == t.type_) else {
                continue;
            };
            let Some(mut s) = conditions::adopt(
                &c.type_,
                &c.status,
                &c.reason,
                &c.message,
                c.last_transition_ms,
            ) else {
                continue;
            };
            if let Some(p) = self.persisted.conditions.get(&t.type_)
                && p.status == s.status
            {
                s.boot_id = p.boot_id.clone();
                s.clean_runs = p.clean_runs;
                s.last_problem_ms = p.last_problem_ms;
            }
            self.conds.insert(t.type_.clone(), s);
            n += 1;
        }
        self.adopted = true;
        self.since_adoption.clear();
        // Everything runs at the next tick: the first evaluation is a full one.
        self.last_run.clear();
        self.not_before.clear();
        log(format!("adopted {n} of our conditions from the Node"));
    }

    /// One tick: the log conditions judged, and a collection started for the checks due
    /// (its result arrives in [`Engine::on_collected`]). Never waits on the host.
    fn tick(&mut self) {
        let now = self.host.kernel.now_ms();
        self.judge_log_conditions(now);
        if let Some((_, started)) = self.pending {
            let stuck_after = Duration::from_millis(
                self.settings
                    .collect_deadline_ms
                    .saturating_add(STUCK_GRACE_MS),
            );
            // The previous collection is still running (blocked reads are bounded, but a
            // slow host can take a tick): never pile collections up. One stuck in the
            // kernel past every deadline is abandoned (its thread returns when the kernel
            // lets it; its result is then ignored) so checks go on — with a bound on how
            // many such threads there can be.
            if started.elapsed() < stuck_after
                || self.collections_running.load(Ordering::Relaxed) >= MAX_COLLECTIONS
            {
                self.after_tick(now);
                return;
            }
            log("collection still running past its deadline: abandoned, starting another");
            self.pending = None;
        }
        let due: Vec<&'static CheckDef> = self
            .checks
            .iter()
            .copied()
            .filter(|c| {
                let every = self
                    .intervals
                    .get(c.id)
                    .copied()
                    .unwrap_or(self.settings.interval_ms);
                self.last_run
                    .get(c.id)
                    .is_none_or(|t| now.saturating_sub(*t).saturating_add(500) >= every)
                    && self.not_before.get(c.id).is_none_or(|t| now >= *t)
            })
            .collect();
        if due.is_empty() {
            self.after_tick(now);
            return;
        }
        let mut needs = Needs::of(&due);
        needs.kernel_log = false;
        // The kubelet's and the runtime's own log lines (pleg-unhealthy,
        // kubelet-api-throttling, image-pull-serialized) are followed, not read again:
        // each collection reads what the journal unit or the daemon's stderr file gained
        // since the previous one. The log monitor does not carry them: the checks judge
        // the lines themselves, in the snapshot, as `check` and a replay do.
        let follow_daemon_logs = std::mem::replace(&mut needs.daemon_logs, false);
        let tail = self.daemon_logs.clone();
        let host = self.host.clone();
        let deadline = Instant::now() + Duration::from_millis(self.settings.collect_deadline_ms);
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        self.pending = Some((generation, Instant::now()));
        let running = self.collections_running.clone();
        running.fetch_add(1, Ordering::Relaxed);
        let tx = self.collected_tx.clone();
        // Every check due is marked run now: a slow collection does not make them due
        // again at the next tick.
        for c in &due {
            self.last_run.insert(c.id, now);
        }
        tokio::task::spawn_blocking(move || {
            let cpu_before = process_cpu_ms();
            let mut s = node_doctor_host::collect::collect(&host, &needs, Some(deadline));
            if follow_daemon_logs {
                let mut tail = tail
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                node_doctor_host::collect::daemon_logs_followed(
                    &host,
                    &mut s,
                    &mut tail,
                    Some(deadline),
                );
            }
            running.fetch_sub(1, Ordering::Relaxed);
            // CPU time of the whole process meanwhile: the scan's workers included.
            let took_ms = process_cpu_ms().saturating_sub(cpu_before);
            let _ = tx.blocking_send(Collected {
                generation,
                now,
                due,
                snapshot: s,
                took_ms,
            });
        });
        self.after_tick(now);
    }

    /// A collection's result: the checks it was for are run on the history.
    fn on_collected(&mut self, c: Collected) {
        if self.pending.map(|(g, _)| g) != Some(c.generation) {
            // An abandoned collection came back at last: its checks have run since.
            return;
        }
        self.pending = None;
        let Collected {
            now,
            due,
            mut snapshot,
            took_ms,
            ..
        } = c;
        // Collection's share of a core stays bounded whatever the host: the checks it ran
        // are not due again before the CPU time it took × 100 / collect_budget_percent (at
        // 1 %, a 10000-process scan of ~1 s of CPU waits ~100 s, not 30 s; an idle host's
        // few ms change nothing).
        let floor = took_ms.saturating_mul(100) / self.settings.collect_budget_percent.max(1);
        for c in &due {
            self.not_before.insert(c.id, now.saturating_add(floor));
        }
        if due
            .iter()
            .any(|c| !checks::kernel_lines_of(c.id).is_empty())
        {
            snapshot.kernel_log = self.kernel_log(now);
        }
        let snapshot = Arc::new(snapshot);
        self.metrics.sample(&snapshot);
        self.history.push(snapshot);
        self.metrics.history(self.history.len());
        let boot = self.boot_id();
        for c in due {
            // The agent reads the kernel ring through its log monitor, never into samples:
            // the kernel-line checks get the records it kept for them (`kernel_log`).
            let mut needs = c.needs;
            needs.kernel_log = false;
            let samples = self.history.for_needs(&needs);
            let Some(h) = checks::History::new(samples) else {
                continue;
            };
            let t = Instant::now();
            let outcome = checks::run_one(c, &h, &self.config);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            self.metrics
                .check_run(c.id, &outcome.findings, outcome.inconclusive, ms, now);
            if self.adopted {
                self.since_adoption.insert(c.id);
                if let Some(v) = catalog::verdict(
                    c,
                    &outcome,
                    catalog::condition_bar(self.settings.condition_on_warning),
                ) && let Some(d) = c.condition
                {
                    self.step(d.type_, &v, now, boot.as_deref());
                }
            }
            self.outcomes.insert(c.id, (outcome, ms));
            self.findings_stale = true;
        }
        self.after_tick(self.host.kernel.now_ms());
    }

    /// The kernel records kept for the kernel-line checks, as a sample's kernel log: none
    /// when kmsg is not followed (those checks then say the records were not collected).
    fn kernel_log(&mut self, now: u64) -> Option<KernelLog> {
        if !self.follows_kmsg {
            return None;
        }
        let horizon = now.saturating_sub(KERNEL_RING_MS);
        while self
            .kernel_ring
            .front()
            .is_some_and(|r| r.time_ms.is_some_and(|t| t < horizon))
        {
            self.kernel_ring.pop_front();
        }
        Some(KernelLog {
            records: self.kernel_ring.iter().cloned().collect(),
            lost: 0,
            not_kept: self.kernel_not_kept,
            error: self.kmsg_error.clone(),
            via: Some(match self.log_modes.get("kmsg") {
                Some(m) => format!("kmsg followed by the agent ({m})"),
                None => "kmsg followed by the agent".into(),
            }),
        })
    }

    /// The NPD-named conditions from the log rules, at every tick: True while a matching
    /// line arrived since the last judgement (its clearing follows the condition's quiet
    /// window), whatever the checks' cadence.
    fn judge_log_conditions(&mut self, now: u64) {
        if !self.adopted {
            return;
        }
        let since = std::mem::replace(&mut self.npd_judged_ms, now);
        let boot = self.boot_id();
        let npd: Vec<CondType> = self
            .types
            .iter()
            .filter(|t| t.owner == Owner::Npd)
            .cloned()
            .collect();
        for t in npd {
            let last = self
                .log_problems
                .get(&t.type_)
                .map(|(at, reason, msg)| (*at, reason.as_str(), msg.as_str()));
            let v = catalog::npd_verdict(&t.type_, last, since);
            self.step(&t.type_, &v, now, boot.as_deref());
        }
    }

    /// One condition's step, with its Event and, on turning True, a flight recording.
    fn step(&mut self, type_: &str, v: &Verdict, now: u64, boot: Option<&str>) {
        let Some(t) = self.types.iter().find(|t| t.type_ == type_).cloned() else {
            return;
        };
        let prev = self.conds.get(type_).cloned();
        let Some(next) = conditions::step(type_, prev.as_ref(), v, now, boot, self.policy(&t))
        else {
            return;
        };
        let transitioned = prev.as_ref().is_none_or(|p| p.status != next.status);
        if transitioned && prev.is_some() || next.status == Status::True && prev.is_none() {
            let (type_e, action) = match next.status {
                Status::True => ("Warning", "Detected"),
                Status::False => ("Normal", "Cleared"),
                Status::Unknown => ("Warning", "Unknown"),
            };
            let ev = EventSpec {
                type_: type_e,
                reason: next.reason.clone(),
                action,
                note: format!("{}: {}", next.type_, next.message),
                key: format!("condition/{}", next.type_),
                at_ms: now,
            };
            if let Ok(mut q) = self.events.lock() {
                q.push(ev, true);
            }
            if next.status == Status::True {
                let rec = Recording::new(self.evidence(&t));
                if let Err(e) = self.state_dir.record(
                    &format!("{now}-{}", next.type_),
                    &rec,
                    self.settings.recordings,
                    self.settings.recordings_bytes,
                ) {
                    log(format!("flight recorder: {e}"));
                }
            }
        }
        self.metrics.condition(&next.type_, next.status.as_str());
        self.conds.insert(type_.to_string(), next);
    }

    /// The samples a flight recording keeps: the last ten that hold what the condition's
    /// check reads (samples of the cheap checks' ticks, between process scans, would leave a
    /// `check --from` replay of a process check with nothing to look at), or the last ten
    /// of any kind for a log rule's condition.
    fn evidence(&self, t: &CondType) -> Vec<Snapshot> {
        const KEPT: usize = 10;
        let check = t
            .check
            .and_then(|id| self.checks.iter().find(|c| c.id == id));
        let Some(check) = check else {
            return self.history.last(KEPT);
        };
        let mut needs = check.needs;
        needs.kernel_log = false;
        let samples = self.history.for_needs(&needs);
        let skip = samples.len().saturating_sub(KEPT);
        samples.into_iter().skip(skip).cloned().collect()
    }

    fn after_tick(&mut self, now: u64) {
        self.shared.last_tick_ms.store(wall_ms(), Ordering::Relaxed);
        let full = self.adopted
            && self
                .checks
                .iter()
                .all(|c| self.since_adoption.contains(c.id));
        let ready = full && !self.outcomes.is_empty();
        self.shared.ready.store(ready, Ordering::Relaxed);
        // Rendered when the outcomes changed, not every tick (at 10000 processes the host
        // part of the report alone is a walk of the newest sample).
        if self.findings_stale
            && let Ok(mut f) = self.shared.findings.lock()
        {
            *f = self.findings_json();
            self.findings_stale = false;
        }
        let mut own = Vec::new();
        let mut npd = Vec::new();
        for t in &self.types {
            if let Some(c) = self.conds.get(&t.type_) {
                match t.owner {
                    Owner::Own => own.push(c.clone()),
                    Owner::Npd => npd.push(c.clone()),
                }
            }
        }
        let d = Desired { own, npd, ready };
        self.desired_tx.send_if_modified(|cur| {
            if *cur == d {
                false
            } else {
                *cur = d;
                true
            }
        });
        if let Ok(q) = self.events.lock() {
            self.metrics.events(q.len(), 0);
        }
        let _ = now;
        self.save();
    }

    fn save(&mut self) {
        self.persisted.conditions = self.conds.clone();
        if let Err(e) = self.state_dir.save(&self.persisted) {
            log(format!("state directory: {e}"));
        }
    }

    /// `/findings`: the `check` JSON of the latest run of each check.
    fn findings_json(&self) -> String {
        let mut report = Report::default();
        for c in &self.checks {
            if let Some((o, ms)) = self.outcomes.get(c.id) {
                report.add(
                    c,
                    Outcome {
                        findings: o.findings.clone(),
                        unknown: o.unknown.clone(),
                        inconclusive: o.inconclusive,
                    },
                    *ms,
                );
            }
        }
        let report = report.finish();
        // The newest sample that read processes names the host best (later ticks may have
        // read only the cheap parts).
        let with_processes = self.history.for_needs(&Needs {
            processes: true,
            ..Needs::NONE
        });
        let last = with_processes
            .last()
            .copied()
            .or_else(|| self.history.newest());
        let Some(h) = checks::History::new(last) else {
            return "{}".into();
        };
        node_doctor_core::render::json::render(&node_doctor_core::render::CheckView::new(
            &h, &report,
        ))
    }

    fn on_logs(&mut self, msg: LogMsg) {
        let now = self.host.kernel.now_ms();
        match msg {
            LogMsg::Events(evs) => {
                for e in evs {
                    match e {
                        logmon::Event::Finding(f) => self.on_log_finding(&f, now),
                        logmon::Event::SourceError(e) => {
                            log(format!("log source {}: {}", e.source, e.error));
                            self.metrics.log_source(&e.source, false, 0);
                        }
                    }
                }
            }
            LogMsg::Kernel(records, not_kept) => {
                for r in records {
                    if self.kernel_ring.len() >= KERNEL_RING {
                        self.kernel_ring.pop_front();
                        self.kernel_not_kept = self.kernel_not_kept.saturating_add(1);
                    }
                    self.kernel_ring.push_back(r);
                }
                self.kernel_not_kept = self.kernel_not_kept.saturating_add(not_kept);
            }
            LogMsg::Stats(stats, positions) => {
                for s in stats {
                    if s.source == "kmsg" {
                        self.kmsg_error = s.error.clone();
                    }
                    // Say how each source is read when that is first known or changes
                    // (kmsg: /dev/kmsg, or klogctl polling without a privileged pod).
                    if let Some(mode) = &s.mode
                        && self.log_modes.get(&s.source) != Some(mode)
                    {
                        log(format!("log source {}: read via {mode}", s.source));
                        self.log_modes.insert(s.source.clone(), mode.clone());
                    }
                    let prev = self
                        .last_lines
                        .insert(s.source.clone(), s.lines)
                        .unwrap_or(0);
                    self.metrics.log_source(
                        &s.source,
                        s.error.is_none(),
                        s.lines.saturating_sub(prev),
                    );
                }
                self.persisted.positions = positions;
            }
        }
    }

    fn on_log_finding(&mut self, f: &Finding, now: u64) {
        let Some(lm) = &f.log else { return };
        self.metrics.log_match(&lm.source, &lm.rule, 1);
        if lm.kind == RuleKind::Permanent
            && let Some(c) = &lm.condition
            && self
                .types
                .iter()
                .any(|t| &t.type_ == c && t.owner == Owner::Npd)
        {
            self.log_problems
                .insert(c.clone(), (now, lm.reason.clone(), f.summary.clone()));
        }
        let line = f
            .evidence
            .first()
            .map(|e| e.observed.as_str())
            .unwrap_or("");
        let ev = EventSpec {
            type_: "Warning",
            reason: lm.reason.clone(),
            action: "Logged",
            note: format!("{} ({}): {line}", f.summary, lm.source),
            key: f.key.clone(),
            at_ms: now,
        };
        if let Ok(mut q) = self.events.lock() {
            q.push(ev, false);
            let dropped = q.take_dropped();
            self.metrics.events(q.len(), dropped);
        }
    }
}

/// As PID 1 of its container, the agent inherits orphans: reap them (a DaemonSet's PID 1
/// that does not is incident 2a in miniature).
async fn reaper(mut shutdown: watch::Receiver<bool>) {
    let Ok(mut sigchld) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
    else {
        return;
    };
    loop {
        tokio::select! {
            _ = sigchld.recv() => {
                while let Ok(Some(_)) = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG) {}
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
