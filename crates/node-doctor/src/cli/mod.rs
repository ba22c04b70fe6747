//! The command line: argument definitions here, one file per subcommand.

pub mod agent;
pub mod check;
pub mod explain;
pub mod logs;
pub mod output;
pub mod settings;
pub mod snapshot;
pub mod sysctl;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

const EXIT_CODES: &str = "Exit codes:
  0  no finding at or above --fail-on
  1  a finding at or above --fail-on (with --fail-on unknown: also any check that could not conclude)
  2  node-doctor failed: bad arguments or config, an unreadable --from file, or nothing could be checked";

#[derive(Debug, Parser)]
#[command(
    name = "node-doctor",
    version,
    about = "Finds the cause of a sick Kubernetes node, shows the evidence, says what to do",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose this machine (or a saved snapshot) once.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Record snapshots of this machine to a file, for `check --from`.
    Snapshot(SnapshotArgs),
    /// List the checks, one line each (with --format json: their settings and defaults).
    Checks {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Match log rules (default pack, NPD configs) over the kernel ring, files, the journal.
    #[command(after_help = EXIT_CODES)]
    Logs(LogsArgs),
    /// Watch this node continuously: Prometheus metrics, NodeConditions and Events (the
    /// DaemonSet mode; docs/agent.md).
    Agent(AgentArgs),
    /// Explain a check: symptom, evidence, cause and fix.
    Explain {
        /// Check id, as listed by `node-doctor checks`.
        id: String,
    },
    /// Sysctls: namespaced or global, the kubelet's safe list, runc; lint manifests.
    Sysctl(SysctlArgs),
}

#[derive(Debug, clap::Args)]
pub struct SysctlArgs {
    #[command(subcommand)]
    pub command: SysctlCommand,
}

#[derive(Debug, Subcommand)]
pub enum SysctlCommand {
    /// Namespaced or global on the kernel, settable in a child network namespace, in the
    /// kubelet's safe list (with the kernel gate it applies), what runc says, and what setting
    /// it from a pod does.
    Explain(SysctlExplainArgs),
    /// Lint KubeletConfiguration (allowedUnsafeSysctls) and Pod/workload YAML
    /// (securityContext.sysctls, privileged containers running `sysctl -w`); multi-document,
    /// `-` for standard input.
    #[command(after_help = EXIT_CODES)]
    Lint(SysctlLintArgs),
}

#[derive(Debug, clap::Args)]
pub struct SysctlTarget {
    #[command(flatten)]
    pub root: RootArg,
    /// The Kubernetes release to judge for ("1.29", "v1.32.1"); default: the node's kubelet
    /// package (dpkg) under --root, else (lint) the newest release known.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// The kernel to judge for ("6.1", "5.4.0-1045-aws"); default: the node's
    /// (`/proc/sys/kernel/osrelease` under --root).
    #[arg(long, value_name = "VERSION")]
    pub kernel_version: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SysctlExplainArgs {
    /// Sysctl names (`vm.max_map_count`, `net/ipv4/ip_forward`).
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub target: SysctlTarget,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct SysctlLintArgs {
    /// YAML files (`-`: standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub target: SysctlTarget,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit 1 when an issue is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
}

#[derive(Debug, clap::Args)]
pub struct RootArg {
    /// Directory the host's filesystem is visible under (`/host` in a DaemonSet).
    #[arg(long, env = "NODE_DOCTOR_ROOT", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Time between the two samples rates are computed from; 0 takes one sample.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub window: Duration,
    /// The whole run (both samples included) finishes by then; what is not read by then is
    /// reported as not inspected, never waited for.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub deadline: Duration,
}

#[derive(Debug, clap::Args)]
pub struct SettingsArgs {
    /// Per-check settings (TOML, or YAML for .yaml/.yml), keyed by check id.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A setting, CHECK.KEY=VALUE (repeatable; after --config).
    #[arg(long = "set", value_name = "CHECK.KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub root: RootArg,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit 1 when a finding is at or above this severity (`unknown`: also when any check
    /// could not conclude).
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
    /// Run only this check (repeatable).
    #[arg(long = "only", value_name = "ID")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub sample: SampleArgs,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Replay a file written by `node-doctor snapshot` instead of reading the host.
    #[arg(long, value_name = "SNAPSHOT")]
    pub from: Option<PathBuf>,
    /// runc-init-hang: report a `runc init` alive this long or longer (the same as
    /// `--set runc-init-hang.threshold=DUR`).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub runc_init_threshold: Option<Duration>,
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub root: RootArg,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// The Node to set conditions on (the downward API's spec.nodeName in the DaemonSet).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// This pod's name (the Events' reportingInstance).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Where to serve /metrics, /healthz, /readyz and /findings.
    #[arg(long, default_value = "0.0.0.0:9810")]
    pub listen: std::net::SocketAddr,
    /// Log positions, condition bookkeeping and flight recordings (a hostPath).
    #[arg(long, default_value = "/var/lib/node-doctor")]
    pub state_dir: PathBuf,
    /// A kubeconfig (default: in-cluster, or KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Metrics only: no API server (e.g. under systemd on a plain host).
    #[arg(long)]
    pub no_kubernetes: bool,
    /// Uninstall: take node-doctor's conditions off the Node (an empty apply under each of
    /// its field managers, so other managers' conditions stay) and exit.
    #[arg(long, conflicts_with = "no_kubernetes")]
    pub remove_conditions: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// Where to read: kmsg, file:PATH (a host path), journal, journal:UNIT,
    /// journal-id:IDENTIFIER (repeatable; default kmsg, or the sources of the --rules configs).
    #[arg(long = "source", value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// A node-problem-detector system-log-monitor config (JSON) to load (repeatable).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Run only the rules of the --rules files.
    #[arg(long)]
    pub no_default_rules: bool,
    /// Only lines from this long ago on (lines without a time are kept).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Keep reading and print each finding as it happens (JSON: one envelope per line).
    #[arg(long)]
    pub follow: bool,
    /// Timestamp at the start of each line of file sources.
    #[arg(long, value_enum, default_value_t = TimeFormatArg::None)]
    pub time_format: TimeFormatArg,
    /// Match file lines whole: do not strip their syslog/kernel prefix (`Nov 22 19:20:17
    /// host kernel: [ 12.3] `) before the rules see the message.
    #[arg(long)]
    pub no_strip_prefix: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeFormatArg {
    None,
    Rfc3339,
    Syslog,
}

impl From<TimeFormatArg> for node_doctor_host::sources::file::TimeFormat {
    fn from(t: TimeFormatArg) -> Self {
        match t {
            TimeFormatArg::None => Self::None,
            TimeFormatArg::Rfc3339 => Self::Rfc3339,
            TimeFormatArg::Syslog => Self::Syslog,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// File to write (`-`: standard output). An existing regular file is replaced
    /// atomically; a device is written through.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Only what these checks need (repeatable; default: everything).
    #[arg(long = "only", value_name = "ID")]
    pub only: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Warning,
    Critical,
    /// Warnings, and any check (or part of one) that could not conclude.
    Unknown,
}

impl FailOn {
    /// The least severe finding that makes the exit code 1.
    pub fn bar(self) -> node_doctor_core::finding::Severity {
        use node_doctor_core::finding::Severity;
        match self {
            FailOn::Warning | FailOn::Unknown => Severity::Warning,
            FailOn::Critical => Severity::Critical,
        }
    }
}

/// "1s", "500ms", "2m", or a bare "0".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    node_doctor_core::config::duration_ms(s).map(Duration::from_millis)
}

/// Colour when writing to a terminal, unless `NO_COLOR` is set (no-color.org).
pub fn style() -> node_doctor_core::render::human::Style {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    node_doctor_core::render::human::Style {
        color: !no_color && std::io::stdout().is_terminal(),
    }
}

/// Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 the tool failed.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_FAILED: u8 = 2;
