//! The agent's settings: the `[agent]` and `[logs]` sections of the config file (the same
//! file as the per-check settings), every one with a default.
//!
//! ```toml
//! [agent]
//! interval = "10s"              # the base tick: cheap checks run every tick
//! processes_interval = "30s"    # checks that read every process
//! fds_interval = "60s"          # ... and every process's fd directory
//! pipes_interval = "5m"         # ... and size every pipe
//! clear_after = 3               # clean runs before a condition clears
//! unknown_after = 3             # runs that cannot evaluate before a condition is Unknown
//! condition_on_warning = false  # True on warnings too (default: critical findings only)
//! heartbeat = "5m"
//! [logs]
//! sources = ["kmsg", "journal:kubelet.service"]
//! rules = ["/etc/node-doctor/kernel-monitor.json"]   # NPD configs
//! default_rules = true
//! ```

use node_doctor_core::checks::{CheckDef, Needs};
use node_doctor_core::config::{Config, INTERVAL, duration_ms};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    pub interval_ms: u64,
    pub processes_interval_ms: u64,
    pub fds_interval_ms: u64,
    pub pipes_interval_ms: u64,
    /// Bound of one collection (abandoned reads are reported, never waited for).
    pub collect_deadline_ms: u64,
    /// The share of a core collections may take, in percent: a collection that took T of
    /// CPU runs its checks again no sooner than T × 100 / this (at least their interval).
    /// 100 turns the bound off.
    pub collect_budget_percent: u64,
    pub clear_after: u32,
    pub unknown_after: u32,
    pub condition_on_warning: bool,
    pub heartbeat_ms: u64,
    pub history_samples: usize,
    pub history_bytes: usize,
    pub recordings: usize,
    pub recordings_bytes: u64,
    pub event_queue: usize,
    /// An active finding's Event is emitted again at most this often (Events expire after
    /// the API server's --event-ttl, an hour by default).
    pub event_repeat_ms: u64,
    pub logs: LogSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub sources: Vec<String>,
    pub rules: Vec<PathBuf>,
    pub default_rules: bool,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            interval_ms: 10_000,
            processes_interval_ms: 30_000,
            fds_interval_ms: 60_000,
            pipes_interval_ms: 300_000,
            collect_deadline_ms: 8_000,
            collect_budget_percent: 1,
            clear_after: 3,
            unknown_after: 3,
            condition_on_warning: false,
            heartbeat_ms: 300_000,
            history_samples: 60,
            history_bytes: 24 << 20,
            recordings: 10,
            recordings_bytes: 64 << 20,
            event_queue: 256,
            event_repeat_ms: 30 * 60_000,
            logs: LogSettings {
                sources: vec!["kmsg".into()],
                rules: Vec::new(),
                default_rules: true,
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    interval: Option<String>,
    processes_interval: Option<String>,
    fds_interval: Option<String>,
    pipes_interval: Option<String>,
    collect_deadline: Option<String>,
    collect_budget_percent: Option<u64>,
    clear_after: Option<u32>,
    unknown_after: Option<u32>,
    condition_on_warning: Option<bool>,
    heartbeat: Option<String>,
    history_samples: Option<usize>,
    history_mb: Option<usize>,
    recordings: Option<usize>,
    recordings_mb: Option<u64>,
    event_queue: Option<usize>,
    event_repeat: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogs {
    sources: Option<Vec<String>>,
    rules: Option<Vec<PathBuf>>,
    default_rules: Option<bool>,
}

fn dur(v: &Option<String>, default: u64, what: &str) -> Result<u64, String> {
    match v {
        None => Ok(default),
        Some(s) => duration_ms(s).map_err(|e| format!("agent.{what}: {e}")),
    }
}

impl AgentSettings {
    pub fn from_config(cfg: &Config) -> Result<AgentSettings, String> {
        let d = AgentSettings::default();
        let raw: RawAgent = match cfg.sections.get("agent") {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("[agent]: {e}"))?,
            None => RawAgent::default(),
        };
        let logs: RawLogs = match cfg.sections.get("logs") {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("[logs]: {e}"))?,
            None => RawLogs::default(),
        };
        let s = AgentSettings {
            interval_ms: dur(&raw.interval, d.interval_ms, "interval")?.max(1000),
            processes_interval_ms: dur(
                &raw.processes_interval,
                d.processes_interval_ms,
                "processes_interval",
            )?,
            fds_interval_ms: dur(&raw.fds_interval, d.fds_interval_ms, "fds_interval")?,
            pipes_interval_ms: dur(&raw.pipes_interval, d.pipes_interval_ms, "pipes_interval")?,
            collect_deadline_ms: dur(
                &raw.collect_deadline,
                d.collect_deadline_ms,
                "collect_deadline",
            )?
            .max(100),
            collect_budget_percent: raw
                .collect_budget_percent
                .unwrap_or(d.collect_budget_percent)
                .clamp(1, 100),
            clear_after: raw.clear_after.unwrap_or(d.clear_after).max(1),
            unknown_after: raw.unknown_after.unwrap_or(d.unknown_after).max(1),
            condition_on_warning: raw.condition_on_warning.unwrap_or(d.condition_on_warning),
            heartbeat_ms: dur(&raw.heartbeat, d.heartbeat_ms, "heartbeat")?.max(10_000),
            history_samples: raw.history_samples.unwrap_or(d.history_samples).max(2),
            history_bytes: raw
                .history_mb
                .map_or(d.history_bytes, |m| m.saturating_mul(1 << 20)),
            recordings: raw.recordings.unwrap_or(d.recordings),
            recordings_bytes: raw
                .recordings_mb
                .map_or(d.recordings_bytes, |m| m.saturating_mul(1 << 20)),
            event_queue: raw.event_queue.unwrap_or(d.event_queue).max(1),
            event_repeat_ms: dur(&raw.event_repeat, d.event_repeat_ms, "event_repeat")?,
            logs: LogSettings {
                sources: logs.sources.unwrap_or(d.logs.sources),
                rules: logs.rules.unwrap_or_default(),
                default_rules: logs.default_rules.unwrap_or(true),
            },
        };
        Ok(s)
    }

    /// How often `check` runs: its own `interval` setting, else by what it reads (costly
    /// collectors less often), never below the base tick.
    pub fn interval_of(&self, cfg: &Config, check: &CheckDef) -> u64 {
        let own = cfg.for_check(check.id).duration_ms(&INTERVAL);
        // By everything the check makes run: a memcg walk is a cgroup walk, and
        // disk-pressure's walk of deleted-but-open files (once a filesystem is over its
        // band) reads every process's fd links, as the fd checks do.
        let by_cost = |n: &Needs| {
            let n = n.union(Needs::NONE);
            if n.pipes {
                self.pipes_interval_ms
            } else if n.fds || n.deleted_files {
                self.fds_interval_ms
            } else if n.processes || n.cgroups {
                self.processes_interval_ms
            } else {
                self.interval_ms
            }
        };
        let i = if own > 0 { own } else { by_cost(&check.needs) };
        i.max(self.interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_doctor_core::config::Format;

    #[test]
    fn collect_budget_percent_defaults_to_1_and_stays_in_1_to_100() {
        let of = |text: &str| {
            let cfg = Config::parse("a.toml", text, Format::Toml).unwrap();
            AgentSettings::from_config(&cfg)
                .unwrap()
                .collect_budget_percent
        };
        assert_eq!(of(""), 1);
        assert_eq!(of("[agent]\ncollect_budget_percent = 5\n"), 5);
        assert_eq!(of("[agent]\ncollect_budget_percent = 0\n"), 1);
        assert_eq!(of("[agent]\ncollect_budget_percent = 1000\n"), 100);
    }

    #[test]
    fn defaults_sections_and_per_check_intervals() {
        let cfg = Config::parse(
            "a.toml",
            "[agent]\ninterval = \"5s\"\nclear_after = 5\n[logs]\nsources = [\"kmsg\", \"journal:kubelet.service\"]\n[zombie-processes]\ninterval = \"2m\"\n",
            Format::Toml,
        )
        .unwrap();
        let s = AgentSettings::from_config(&cfg).unwrap();
        assert_eq!((s.interval_ms, s.clear_after), (5000, 5));
        assert_eq!(s.logs.sources.len(), 2);
        let z = node_doctor_core::checks::by_id("zombie-processes").unwrap();
        assert_eq!(s.interval_of(&cfg, z), 120_000);
        let p = node_doctor_core::checks::by_id("pipe-quota").unwrap();
        assert_eq!(s.interval_of(&cfg, p), 300_000);
        let d = node_doctor_core::checks::by_id("disk-pressure").unwrap();
        assert_eq!(s.interval_of(&cfg, d), 60_000, "its fd walk");
        let t = node_doctor_core::checks::by_id("pid-exhaustion").unwrap();
        assert_eq!(s.interval_of(&cfg, t), 30_000);
        // A memcg walk is a cgroup walk: the process cadence, not the base tick.
        let m = node_doctor_core::checks::by_id("dying-memcgs").unwrap();
        assert_eq!(s.interval_of(&cfg, m), 30_000);
        let bad = Config::parse("a.toml", "[agent]\nintervall = \"5s\"\n", Format::Toml).unwrap();
        assert!(
            AgentSettings::from_config(&bad)
                .unwrap_err()
                .contains("intervall")
        );
    }
}
