//! `kernel.core_pattern` and the handlers it names: pipe, file or socket mode, which handler
//! (systemd-coredump, apport, ABRT, custom), whether it is given RLIMIT_CORE (`%c`) and
//! honours it, where it stores cores; systemd's `coredump.conf` merged over its defaults.
//! The facts are in `coredump.toml`.

use crate::model::coredump::ConfFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// How the kernel delivers a core (fs/coredump.c `format_corename`, the first character).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Mode {
    /// `|prog args`: a helper the kernel starts as root in the host's namespaces.
    Pipe { program: String, args: Vec<String> },
    /// A file written in the crashing process's mount namespace, root and (relative) cwd.
    File { path: String, relative: bool },
    /// `@path` (6.16+) or `@@path` (6.17+, with the ack protocol): an AF_UNIX socket server.
    Socket { path: String },
}

/// A handler known by its program's file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handler {
    pub id: String,
    pub programs: Vec<String>,
    /// Host directory it stores cores (or reports) in.
    pub storage: String,
    /// It refuses or truncates a core by the RLIMIT_CORE it is given (as `%c`).
    pub honours_rlimit: bool,
    pub configured_by: String,
    /// It writes cores as unlinked or hidden temporaries first (df counts them, du does not).
    pub writes_unlinked_temporaries: bool,
    pub note: String,
}

/// systemd-coredump's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdDefaults {
    pub storage: String,
    pub compress: bool,
    pub process_size_max: u64,
    pub external_size_max: u64,
    pub journal_size_max: u64,
    pub max_use_share: f64,
    pub max_use_min: u64,
    pub max_use_max: u64,
    pub keep_free_share: f64,
    pub keep_free_max: u64,
    pub config_dirs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    handler: Vec<Handler>,
    systemd: SystemdDefaults,
}

pub struct Knowledge {
    data: Data,
}

const DATA: &str = include_str!("coredump.toml");

/// The coredump knowledge, or why the data did not parse (a unit test keeps it parsing).
pub fn knowledge() -> Result<&'static Knowledge, &'static str> {
    static K: OnceLock<Result<Knowledge, String>> = OnceLock::new();
    K.get_or_init(|| {
        toml::from_str::<Data>(DATA)
            .map(|data| Knowledge { data })
            .map_err(|e| format!("coredump.toml: {e}"))
    })
    .as_ref()
    .map_err(String::as_str)
}

/// `kernel.core_pattern` understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorePattern {
    pub raw: String,
    #[serde(flatten)]
    pub mode: Mode,
    /// The known handler a pipe names (`None`: a custom program, or not a pipe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// The pattern hands the handler RLIMIT_CORE (`%c`).
    pub passes_rlimit: bool,
}

impl CorePattern {
    pub fn parse(raw: &str) -> CorePattern {
        let raw = raw.trim_end_matches('\n').to_string();
        let mode = if let Some(rest) = raw.strip_prefix('|') {
            // The kernel splits the expanded pattern on spaces (argv_split in
            // fs/coredump.c); leading spaces after '|' are skipped.
            let mut words = rest.split_whitespace().map(str::to_string);
            let program = words.next().unwrap_or_default();
            Mode::Pipe {
                program,
                args: words.collect(),
            }
        } else if let Some(rest) = raw.strip_prefix('@') {
            Mode::Socket {
                path: rest.trim_start_matches('@').trim().to_string(),
            }
        } else {
            Mode::File {
                relative: !raw.starts_with('/'),
                path: raw.clone(),
            }
        };
        let (handler, passes_rlimit) = match &mode {
            Mode::Pipe { program, args } => (
                knowledge()
                    .ok()
                    .and_then(|k| k.handler_for(program))
                    .map(|h| h.id.clone()),
                args.iter().any(|a| a.contains("%c")),
            ),
            _ => (None, false),
        };
        CorePattern {
            raw,
            mode,
            handler,
            passes_rlimit,
        }
    }

    pub fn is_pipe(&self) -> bool {
        matches!(self.mode, Mode::Pipe { .. })
    }

    pub fn program(&self) -> Option<&str> {
        match &self.mode {
            Mode::Pipe { program, .. } => Some(program),
            _ => None,
        }
    }

    /// The kernel enforces RLIMIT_CORE itself only for file patterns.
    pub fn kernel_enforces_rlimit(&self) -> bool {
        matches!(self.mode, Mode::File { .. })
    }
}

/// systemd-coredump's `Storage=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    External,
    Journal,
    None,
}

/// One effective `coredump.conf` setting and the file that made it (`None`: the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting<T> {
    pub value: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl<T> Setting<T> {
    fn default_of(value: T) -> Self {
        Setting { value, from: None }
    }
}

/// `coredump.conf` and its drop-ins, merged in systemd's order over the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemdConfig {
    pub storage: Setting<Storage>,
    pub compress: Setting<bool>,
    pub process_size_max: Setting<u64>,
    pub external_size_max: Setting<u64>,
    pub journal_size_max: Setting<u64>,
    /// `None`: the default share of the filesystem.
    pub max_use: Setting<Option<u64>>,
    pub keep_free: Setting<Option<u64>>,
    /// Values that did not parse, as (file, key, value): systemd ignores them too.
    pub invalid: Vec<(String, String, String)>,
}

/// A size as coredump.conf takes it: bytes with an optional B, K, M, G, T, P or E suffix
/// (base 1024), or `infinity`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("infinity") {
        return Some(u64::MAX);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "P" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "E" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = num * mult;
    // `as` saturates at u64::MAX.
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

impl Knowledge {
    pub fn handlers(&self) -> &[Handler] {
        &self.data.handler
    }

    pub fn handler(&self, id: &str) -> Option<&Handler> {
        self.data.handler.iter().find(|h| h.id == id)
    }

    /// The known handler whose program has this file name.
    pub fn handler_for(&self, program: &str) -> Option<&Handler> {
        let base = program.rsplit('/').next().unwrap_or(program);
        self.data
            .handler
            .iter()
            .find(|h| h.programs.iter().any(|p| p == base))
    }

    pub fn systemd_defaults(&self) -> &SystemdDefaults {
        &self.data.systemd
    }

    /// Where systemd looks for coredump.conf and its drop-ins, highest priority first.
    pub fn config_dirs(&self) -> &[String] {
        &self.data.systemd.config_dirs
    }

    /// The files as systemd applies them: the main `coredump.conf` of the highest-priority
    /// directory that has one, then the drop-ins sorted by file name, a name in a
    /// higher-priority directory masking the same name below it. Later files win.
    pub fn apply_order<'a>(&self, files: &'a [ConfFile]) -> Vec<&'a ConfFile> {
        let dirs = self.config_dirs();
        let prio = |path: &str| -> usize {
            dirs.iter()
                .position(|d| path.starts_with(&format!("{d}/")))
                .unwrap_or(usize::MAX)
        };
        let main = files
            .iter()
            .filter(|f| f.path.ends_with("/coredump.conf"))
            .min_by_key(|f| prio(&f.path));
        let mut dropins: BTreeMap<&str, &ConfFile> = BTreeMap::new();
        for f in files
            .iter()
            .filter(|f| f.path.contains("/coredump.conf.d/"))
        {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            match dropins.get(name) {
                Some(have) if prio(&have.path) <= prio(&f.path) => {}
                _ => {
                    dropins.insert(name, f);
                }
            }
        }
        main.into_iter().chain(dropins.into_values()).collect()
    }

    /// coredump.conf and drop-ins merged over systemd's defaults.
    pub fn systemd_config(&self, files: &[ConfFile]) -> SystemdConfig {
        let d = &self.data.systemd;
        let mut c = SystemdConfig {
            storage: Setting::default_of(match d.storage.as_str() {
                "journal" => Storage::Journal,
                "none" => Storage::None,
                _ => Storage::External,
            }),
            compress: Setting::default_of(d.compress),
            process_size_max: Setting::default_of(d.process_size_max),
            external_size_max: Setting::default_of(d.external_size_max),
            journal_size_max: Setting::default_of(d.journal_size_max),
            max_use: Setting::default_of(None),
            keep_free: Setting::default_of(None),
            invalid: Vec::new(),
        };
        for f in self.apply_order(files) {
            let from = || Some(f.path.clone());
            for (key, value) in &f.settings {
                let bad = |c: &mut SystemdConfig| {
                    c.invalid.push((f.path.clone(), key.clone(), value.clone()))
                };
                match key.as_str() {
                    "Storage" => match value.trim() {
                        "external" => {
                            c.storage = Setting {
                                value: Storage::External,
                                from: from(),
                            }
                        }
                        "journal" => {
                            c.storage = Setting {
                                value: Storage::Journal,
                                from: from(),
                            }
                        }
                        "none" => {
                            c.storage = Setting {
                                value: Storage::None,
                                from: from(),
                            }
                        }
                        // An empty assignment resets to the default.
                        "" => c.storage = Setting::default_of(Storage::External),
                        _ => bad(&mut c),
                    },
                    "Compress" => match parse_bool(value) {
                        Some(b) => {
                            c.compress = Setting {
                                value: b,
                                from: from(),
                            }
                        }
                        None => bad(&mut c),
                    },
                    "ProcessSizeMax" | "ExternalSizeMax" | "JournalSizeMax" => {
                        let v = if value.trim().is_empty() {
                            Some(match key.as_str() {
                                "ProcessSizeMax" => d.process_size_max,
                                "ExternalSizeMax" => d.external_size_max,
                                _ => d.journal_size_max,
                            })
                        } else {
                            parse_size(value)
                        };
                        let Some(v) = v else {
                            bad(&mut c);
                            continue;
                        };
                        let s = Setting {
                            value: v,
                            from: from(),
                        };
                        match key.as_str() {
                            "ProcessSizeMax" => c.process_size_max = s,
                            "ExternalSizeMax" => c.external_size_max = s,
                            _ => c.journal_size_max = s,
                        }
                    }
                    "MaxUse" | "KeepFree" => {
                        let v = if value.trim().is_empty() {
                            Some(None)
                        } else {
                            parse_size(value).map(Some)
                        };
                        let Some(v) = v else {
                            bad(&mut c);
                            continue;
                        };
                        let s = Setting {
                            value: v,
                            from: from(),
                        };
                        if key == "MaxUse" {
                            c.max_use = s;
                        } else {
                            c.keep_free = s;
                        }
                    }
                    _ => {}
                }
            }
        }
        c
    }
}

impl SystemdConfig {
    /// The most bytes of one core that touch the disk: systemd reads the core into a
    /// temporary file up to the larger of ProcessSizeMax and the storage's own maximum
    /// (coredump.c `save_external_coredump`), so both bound it; `Storage=none` with
    /// `ProcessSizeMax=0` writes nothing.
    pub fn max_core_bytes(&self) -> u64 {
        let storage_max = match self.storage.value {
            Storage::External => self.external_size_max.value,
            Storage::Journal => self.journal_size_max.value,
            Storage::None => 0,
        };
        self.process_size_max.value.max(storage_max)
    }

    /// MaxUse for a filesystem of `fs_bytes` (the default: 10 %, 1 MiB ..= 4 GiB).
    pub fn max_use_for(&self, fs_bytes: u64, d: &SystemdDefaults) -> u64 {
        self.max_use.value.unwrap_or_else(|| {
            ((fs_bytes as f64 * d.max_use_share) as u64).clamp(d.max_use_min, d.max_use_max)
        })
    }

    /// KeepFree for a filesystem of `fs_bytes` (the default: 15 %, at most 4 GiB).
    pub fn keep_free_for(&self, fs_bytes: u64, d: &SystemdDefaults) -> u64 {
        self.keep_free
            .value
            .unwrap_or_else(|| ((fs_bytes as f64 * d.keep_free_share) as u64).min(d.keep_free_max))
    }
}

/// A systemd-coredump store file name, `core.<comm>.<uid>.<boot id>.<pid>.<usec>[.zst|.lz4|.xz]`
/// (comm escaped; it may itself hold dots), understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCore {
    pub comm: String,
    pub uid: u32,
    pub pid: i32,
    /// When it crashed, ms since the epoch.
    pub time_ms: u64,
}

impl StoredCore {
    pub fn parse(name: &str) -> Option<StoredCore> {
        let rest = name.strip_prefix("core.")?;
        let rest = ["zst", "lz4", "xz"]
            .iter()
            .find_map(|ext| rest.strip_suffix(&format!(".{ext}")))
            .unwrap_or(rest);
        // From the right: usec, pid, boot id (32 hex), uid; the rest is the comm.
        let mut it = rest.rsplitn(5, '.');
        let usec: u64 = it.next()?.parse().ok()?;
        let pid: i32 = it.next()?.parse().ok()?;
        let boot = it.next()?;
        if boot.len() != 32 || !boot.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let uid: u32 = it.next()?.parse().ok()?;
        let comm = it.next()?.to_string();
        Some(StoredCore {
            comm: unescape_comm(&comm),
            uid,
            pid,
            time_ms: usec / 1000,
        })
    }
}

/// systemd escapes a comm with `\xNN` for unsafe bytes.
fn unescape_comm(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'x') {
            let _ = chars.next();
            let hex: String = chars.by_ref().take(2).collect();
            match u8::from_str_radix(&hex, 16) {
                Ok(b) => out.push(char::from(b)),
                Err(_) => {
                    out.push_str("\\x");
                    out.push_str(&hex);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> &'static Knowledge {
        knowledge().expect("coredump.toml parses")
    }

    /// The coredump.conf shipped by Debian 12's systemd-coredump 252.39-1~deb12u2 (see
    /// testdata/README.md).
    const DEBIAN_12_CONF: &str = include_str!("testdata/debian12-systemd-coredump/coredump.conf");
    const DEBIAN_12_SYSCTL: &str =
        include_str!("testdata/debian12-systemd-coredump/50-coredump.conf");

    #[test]
    fn patterns_of_the_wild_are_told_apart() {
        // Debian 12's 50-coredump.conf: a constant instead of %c.
        let line = DEBIAN_12_SYSCTL
            .lines()
            .find_map(|l| l.strip_prefix("kernel.core_pattern="))
            .unwrap();
        let p = CorePattern::parse(line);
        assert_eq!(p.handler.as_deref(), Some("systemd-coredump"));
        assert_eq!(p.program(), Some("/lib/systemd/systemd-coredump"));
        assert!(
            !p.passes_rlimit,
            "Debian passes 9223372036854775808, not %c"
        );
        assert!(!p.kernel_enforces_rlimit());

        let fedora =
            CorePattern::parse("|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h %d %F");
        assert_eq!(fedora.handler.as_deref(), Some("systemd-coredump"));
        assert!(fedora.passes_rlimit);

        let apport = CorePattern::parse(
            "|/usr/share/apport/apport -p%p -s%s -c%c -d%d -P%P -u%u -g%g -- %E",
        );
        assert_eq!(apport.handler.as_deref(), Some("apport"));
        assert!(apport.passes_rlimit);
        assert_eq!(k().handler("apport").unwrap().storage, "/var/crash");

        let abrt = CorePattern::parse("|/usr/libexec/abrt-hook-ccpp %s %c %p %u %g %t e %P %I %h");
        assert_eq!(abrt.handler.as_deref(), Some("abrt"));
        assert!(abrt.passes_rlimit);
        assert!(!k().handler("abrt").unwrap().honours_rlimit);
        match &abrt.mode {
            Mode::Pipe { args, .. } => assert_eq!(args.get(6).map(String::as_str), Some("e")),
            m => panic!("{m:?}"),
        }

        let custom = CorePattern::parse("|/opt/dump/handler.sh %P %s");
        assert_eq!(custom.handler, None);
        assert!(custom.is_pipe());

        let default = CorePattern::parse("core");
        assert_eq!(
            default.mode,
            Mode::File {
                path: "core".into(),
                relative: true
            }
        );
        assert!(default.kernel_enforces_rlimit());
        let abs = CorePattern::parse("/var/cores/core.%e.%p\n");
        assert_eq!(
            abs.mode,
            Mode::File {
                path: "/var/cores/core.%e.%p".into(),
                relative: false
            }
        );
        assert!(matches!(
            CorePattern::parse("@@/run/coredump.sock").mode,
            Mode::Socket { .. }
        ));
    }

    #[test]
    fn debian_12s_shipped_coredump_conf_means_the_compiled_defaults() {
        // Every line of the shipped file is a comment: the effective values are the
        // binary's defaults (32 GiB on amd64, although the comments say 2G).
        assert!(DEBIAN_12_CONF.contains("#ProcessSizeMax=2G"));
        let c = k().systemd_config(&[ConfFile {
            path: "/etc/systemd/coredump.conf".into(),
            settings: BTreeMap::new(),
        }]);
        assert_eq!(c.storage.value, Storage::External);
        assert_eq!(c.process_size_max.value, 32 << 30);
        assert_eq!(c.external_size_max.value, 32 << 30);
        assert_eq!(c.journal_size_max.value, 767 << 20);
        assert_eq!(c.max_core_bytes(), 32 << 30);
        let d = k().systemd_defaults();
        // MaxUse/KeepFree defaults on a 100 GiB and a 5 MiB filesystem.
        assert_eq!(c.max_use_for(100 << 30, d), 4 << 30);
        assert_eq!(c.keep_free_for(100 << 30, d), 4 << 30);
        assert_eq!(c.max_use_for(5 << 20, d), 1 << 20);
        assert_eq!(c.keep_free_for(20 << 30, d), 3 << 30);
    }

    #[test]
    fn drop_ins_override_in_systemds_order() {
        let f = |path: &str, kv: &[(&str, &str)]| ConfFile {
            path: path.into(),
            settings: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let files = vec![
            f(
                "/usr/lib/systemd/coredump.conf.d/50-vendor.conf",
                &[("ProcessSizeMax", "8G")],
            ),
            f(
                "/etc/systemd/coredump.conf",
                &[("Storage", "journal"), ("MaxUse", "1G")],
            ),
            f(
                "/etc/systemd/coredump.conf.d/90-local.conf",
                &[("Storage", "none"), ("ProcessSizeMax", "0")],
            ),
            // Masked by /etc's file of the same name.
            f(
                "/run/systemd/coredump.conf.d/90-local.conf",
                &[("Storage", "external")],
            ),
            f(
                "/etc/systemd/coredump.conf.d/10-bad.conf",
                &[("ExternalSizeMax", "lots")],
            ),
        ];
        let c = k().systemd_config(&files);
        assert_eq!(c.storage.value, Storage::None);
        assert_eq!(
            c.storage.from.as_deref(),
            Some("/etc/systemd/coredump.conf.d/90-local.conf")
        );
        assert_eq!(c.process_size_max.value, 0);
        assert_eq!(c.max_use.value, Some(1 << 30));
        assert_eq!(
            c.max_core_bytes(),
            0,
            "Storage=none + ProcessSizeMax=0 writes nothing"
        );
        assert_eq!(c.invalid.len(), 1);
        assert_eq!(parse_size("767M"), Some(767 << 20));
        assert_eq!(parse_size("infinity"), Some(u64::MAX));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("12 parsecs"), None);
    }

    #[test]
    fn stored_core_names_give_command_pid_and_time() {
        let c = StoredCore::parse(
            "core.python3\\x2e11.0.8f1c2a3b4c5d6e7f8091a2b3c4d5e6f7.38693.1795355940123456.zst",
        )
        .unwrap();
        assert_eq!(
            (c.comm.as_str(), c.uid, c.pid, c.time_ms),
            ("python3.11", 0, 38693, 1_795_355_940_123)
        );
        let dotted =
            StoredCore::parse("core.my.app.1000.8f1c2a3b4c5d6e7f8091a2b3c4d5e6f7.7.1000000")
                .unwrap();
        assert_eq!((dotted.comm.as_str(), dotted.uid), ("my.app", 1000));
        assert_eq!(StoredCore::parse("core"), None);
        assert_eq!(StoredCore::parse("core.python.0.nothex.1.2"), None);
    }
}
