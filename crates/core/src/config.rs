//! Per-check settings: each check declares its tunables ([`SettingDef`]) with today's
//! constants as defaults; a config file (TOML or YAML, keyed by check id) and `--set
//! CHECK.KEY=VALUE` override them. Parsing is pure (text in, [`Config`] out) and validated
//! against the registry, so a typo in a check id or key is an error naming it, not a
//! silently ignored setting.
//!
//! ```toml
//! [pid-exhaustion]
//! warn = 0.8          # ratios: 0..1, or "80%"
//! [runc-init-hang]
//! threshold = "45s"   # durations: "45s", "2m", or a number of seconds
//! ```

use crate::checks::{self, CheckDef};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// The type of a setting, and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A fraction, 0 ..= 1.
    Ratio(f64),
    Count(u64),
    /// Milliseconds.
    Duration(u64),
    Bool(bool),
}

impl Value {
    pub fn type_name(self) -> &'static str {
        match self {
            Value::Ratio(_) => "ratio",
            Value::Count(_) => "count",
            Value::Duration(_) => "duration",
            Value::Bool(_) => "bool",
        }
    }

    /// As JSON: a ratio or count as a number, a duration as text ("30s"), a bool as a bool.
    pub fn to_json(self) -> Json {
        match self {
            Value::Ratio(r) => serde_json::Number::from_f64(r).map_or(Json::Null, Json::Number),
            Value::Count(n) => Json::from(n),
            Value::Duration(ms) => Json::from(format_duration_ms(ms)),
            Value::Bool(b) => Json::from(b),
        }
    }

    /// A value of the same type as `self`, from JSON (a config file) or text (`--set`).
    fn parse_like(self, v: &Json) -> Result<Value, String> {
        match (self, v) {
            (Value::Ratio(_), Json::Number(n)) => ratio(n.as_f64().ok_or("not a number")?),
            (Value::Ratio(_), Json::String(s)) => match s.trim().strip_suffix('%') {
                Some(p) => ratio(p.trim().parse::<f64>().map_err(|e| e.to_string())? / 100.0),
                None => ratio(s.trim().parse::<f64>().map_err(|e| e.to_string())?),
            },
            (Value::Count(_), Json::Number(n)) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                        .map(|f| f as u64)
                })
                .map(Value::Count)
                .ok_or_else(|| format!("{n} is not a whole number ≥ 0")),
            (Value::Count(_), Json::String(s)) => s
                .trim()
                .parse()
                .map(Value::Count)
                .map_err(|_| format!("{s:?} is not a whole number ≥ 0")),
            (Value::Duration(_), Json::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.0e13)
                .map(|secs| Value::Duration((secs * 1000.0) as u64))
                .ok_or_else(|| format!("{n} is not a number of seconds")),
            (Value::Duration(_), Json::String(s)) => duration_ms(s).map(Value::Duration),
            (Value::Bool(_), Json::Bool(b)) => Ok(Value::Bool(*b)),
            (Value::Bool(_), Json::String(s)) => match s.trim() {
                "true" | "yes" | "on" => Ok(Value::Bool(true)),
                "false" | "no" | "off" => Ok(Value::Bool(false)),
                other => Err(format!("{other:?} is not true or false")),
            },
            (want, got) => Err(format!("expected a {}, got {got}", want.type_name())),
        }
    }
}

fn ratio(r: f64) -> Result<Value, String> {
    if r.is_finite() && (0.0..=1.0).contains(&r) {
        Ok(Value::Ratio(r))
    } else {
        Err(format!(
            "{r} is not a ratio between 0 and 1 (or a percentage)"
        ))
    }
}

/// "30s", "500ms", "2m", "1h30m", or a bare "0"; saturates rather than wraps.
pub fn duration_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (use e.g. 30s, 500ms, 2m)"))?;
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// "30s", "1m30s", "500ms", "0s".
pub fn format_duration_ms(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

/// A tunable of a check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SettingDef {
    pub key: &'static str,
    pub default: Value,
    pub help: &'static str,
}

impl SettingDef {
    pub const fn ratio(key: &'static str, default: f64, help: &'static str) -> Self {
        Self {
            key,
            default: Value::Ratio(default),
            help,
        }
    }
    pub const fn count(key: &'static str, default: u64, help: &'static str) -> Self {
        Self {
            key,
            default: Value::Count(default),
            help,
        }
    }
    pub const fn duration(key: &'static str, default_ms: u64, help: &'static str) -> Self {
        Self {
            key,
            default: Value::Duration(default_ms),
            help,
        }
    }
    pub const fn bool(key: &'static str, default: bool, help: &'static str) -> Self {
        Self {
            key,
            default: Value::Bool(default),
            help,
        }
    }
}

/// Settings every check has.
pub const ENABLED: SettingDef = SettingDef::bool(
    "enabled",
    true,
    "run this check (false: never run, even when asked with --only)",
);
/// How often the agent runs the check; 0 is the agent's default interval.
pub const INTERVAL: SettingDef = SettingDef::duration(
    "interval",
    0,
    "agent: time between runs of this check (0: the agent's default)",
);
pub const GENERIC: &[SettingDef] = &[ENABLED, INTERVAL];

/// Top-level sections of a config file that are not check ids (read by their own parts).
pub const SECTIONS: &[&str] = &["agent", "logs"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{file}: not valid {format}: {error}")]
    Syntax {
        file: String,
        format: &'static str,
        error: String,
    },
    #[error("{file}: the top level must be a table of check ids")]
    Shape { file: String },
    #[error("{file}: unknown check id {id:?} (`node-doctor checks` lists them)")]
    UnknownCheck { file: String, id: String },
    #[error("{file}: {id}: unknown setting {key:?} (its settings: {known})")]
    UnknownKey {
        file: String,
        id: String,
        key: String,
        known: String,
    },
    #[error("{file}: {id}.{key}: {error}")]
    BadValue {
        file: String,
        id: String,
        key: String,
        error: String,
    },
    #[error("--set {0:?}: expected CHECK.KEY=VALUE")]
    SetSyntax(String),
}

/// Overrides by check id and key, validated against the checks' declarations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    checks: BTreeMap<&'static str, BTreeMap<&'static str, Value>>,
    /// The raw non-check sections (`agent`, `logs`), for the parts that read them.
    pub sections: BTreeMap<String, Json>,
}

/// The format of a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// By extension: `.yaml`/`.yml` is YAML, anything else TOML.
    pub fn of_path(path: &str) -> Format {
        if path.ends_with(".yaml") || path.ends_with(".yml") {
            Format::Yaml
        } else {
            Format::Toml
        }
    }
}

impl Config {
    /// Parses a config file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str, format: Format) -> Result<Config, ConfigError> {
        let doc: Json = match format {
            Format::Toml => toml::from_str(text).map_err(|e| ConfigError::Syntax {
                file: file.into(),
                format: "TOML",
                error: e.to_string().trim().to_string(),
            })?,
            Format::Yaml => {
                if text.trim().is_empty() {
                    Json::Object(Default::default())
                } else {
                    serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
                        file: file.into(),
                        format: "YAML",
                        error: e.to_string().trim().to_string(),
                    })?
                }
            }
        };
        let Json::Object(top) = doc else {
            return Err(ConfigError::Shape { file: file.into() });
        };
        let mut cfg = Config::default();
        for (id, table) in top {
            if SECTIONS.contains(&id.as_str()) {
                cfg.sections.insert(id, table);
                continue;
            }
            let def = checks::by_id(&id).ok_or_else(|| ConfigError::UnknownCheck {
                file: file.into(),
                id: id.clone(),
            })?;
            let Json::Object(entries) = table else {
                return Err(ConfigError::BadValue {
                    file: file.into(),
                    id,
                    key: String::new(),
                    error: "expected a table of settings".into(),
                });
            };
            for (key, v) in entries {
                cfg.set_value(file, def, &key, &v)?;
            }
        }
        Ok(cfg)
    }

    /// Applies `CHECK.KEY=VALUE` (the value as text, parsed as the setting's type).
    pub fn set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let syntax = || ConfigError::SetSyntax(assignment.into());
        let (lhs, value) = assignment.split_once('=').ok_or_else(syntax)?;
        let (id, key) = lhs.trim().rsplit_once('.').ok_or_else(syntax)?;
        let def = checks::by_id(id.trim()).ok_or_else(|| ConfigError::UnknownCheck {
            file: "--set".into(),
            id: id.trim().into(),
        })?;
        self.set_value("--set", def, key.trim(), &Json::from(value.trim()))
    }

    fn set_value(
        &mut self,
        file: &str,
        def: &'static CheckDef,
        key: &str,
        v: &Json,
    ) -> Result<(), ConfigError> {
        let setting = def.setting(key).ok_or_else(|| ConfigError::UnknownKey {
            file: file.into(),
            id: def.id.into(),
            key: key.into(),
            known: def
                .all_settings()
                .map(|s| s.key)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let value = setting
            .default
            .parse_like(v)
            .map_err(|error| ConfigError::BadValue {
                file: file.into(),
                id: def.id.into(),
                key: key.into(),
                error,
            })?;
        self.checks
            .entry(def.id)
            .or_default()
            .insert(setting.key, value);
        Ok(())
    }

    /// The settings of one check.
    pub fn for_check(&self, id: &str) -> CheckSettings<'_> {
        CheckSettings {
            overrides: self.checks.get(id),
        }
    }

    /// Whether the config leaves the check enabled.
    pub fn enabled(&self, id: &str) -> bool {
        self.for_check(id).bool(&ENABLED)
    }
}

/// One check's settings: overrides, else the declared defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckSettings<'a> {
    overrides: Option<&'a BTreeMap<&'static str, Value>>,
}

impl CheckSettings<'_> {
    pub fn get(&self, def: &SettingDef) -> Value {
        self.overrides
            .and_then(|o| o.get(def.key))
            .copied()
            .filter(|v| v.type_name() == def.default.type_name())
            .unwrap_or(def.default)
    }

    pub fn ratio(&self, def: &SettingDef) -> f64 {
        match (self.get(def), def.default) {
            (Value::Ratio(r), _) | (_, Value::Ratio(r)) => r,
            _ => 0.0,
        }
    }

    pub fn count(&self, def: &SettingDef) -> u64 {
        match (self.get(def), def.default) {
            (Value::Count(n), _) | (_, Value::Count(n)) => n,
            _ => 0,
        }
    }

    pub fn duration_ms(&self, def: &SettingDef) -> u64 {
        match (self.get(def), def.default) {
            (Value::Duration(n), _) | (_, Value::Duration(n)) => n,
            _ => 0,
        }
    }

    pub fn bool(&self, def: &SettingDef) -> bool {
        match (self.get(def), def.default) {
            (Value::Bool(b), _) | (_, Value::Bool(b)) => b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_yaml_override_defaults_by_check_id() {
        let t = Config::parse(
            "c.toml",
            "[pid-exhaustion]\nwarn = 0.8\ncrit = \"95%\"\n[runc-init-hang]\nthreshold = \"45s\"\n",
            Format::Toml,
        )
        .unwrap();
        let y = Config::parse(
            "c.yaml",
            "pid-exhaustion:\n  warn: 0.8\n  crit: 95%\nrunc-init-hang:\n  threshold: 45\n",
            Format::Yaml,
        )
        .unwrap();
        for c in [&t, &y] {
            let s = c.for_check("pid-exhaustion");
            assert_eq!(s.ratio(&crate::checks::pid_exhaustion::WARN), 0.8);
            assert_eq!(s.ratio(&crate::checks::pid_exhaustion::CRIT), 0.95);
            assert_eq!(
                c.for_check("runc-init-hang")
                    .duration_ms(&crate::checks::runc_init_hang::THRESHOLD),
                45_000
            );
        }
        // Untouched: the default.
        assert_eq!(
            Config::default()
                .for_check("pid-exhaustion")
                .ratio(&crate::checks::pid_exhaustion::WARN),
            0.70
        );
    }

    #[test]
    fn typos_and_garbage_are_errors_naming_them() {
        let e = Config::parse("c.toml", "[pid-exhastion]\nwarn = 0.8\n", Format::Toml).unwrap_err();
        assert!(
            matches!(e, ConfigError::UnknownCheck { ref id, .. } if id == "pid-exhastion"),
            "{e}"
        );
        let e =
            Config::parse("c.toml", "[pid-exhaustion]\nwran = 0.8\n", Format::Toml).unwrap_err();
        assert!(e.to_string().contains("unknown setting \"wran\""), "{e}");
        let e = Config::parse("c.toml", "[pid-exhaustion]\nwarn = 7\n", Format::Toml).unwrap_err();
        assert!(e.to_string().contains("pid-exhaustion.warn"), "{e}");
        assert!(matches!(
            Config::parse("c.toml", "\u{0}\u{1}garbage[[[", Format::Toml),
            Err(ConfigError::Syntax { .. })
        ));
        assert!(matches!(
            Config::parse("c.yaml", "- just\n- a list\n", Format::Yaml),
            Err(ConfigError::Shape { .. })
        ));
        assert!(Config::parse("c.yaml", "", Format::Yaml).is_ok());
        let mut c = Config::default();
        assert!(c.set("pid-exhaustion.warn=0.75").is_ok());
        assert!(matches!(c.set("nonsense"), Err(ConfigError::SetSyntax(_))));
        assert!(c.set("pid-exhaustion.warn=lots").is_err());
        assert!(c.set("zombie-processes.enabled=false").is_ok());
        assert!(!c.enabled("zombie-processes"));
    }

    #[test]
    fn durations_saturate() {
        assert_eq!(duration_ms("0").unwrap(), 0);
        assert_eq!(duration_ms("1m30s").unwrap(), 90_000);
        assert_eq!(duration_ms("600000000y").unwrap(), u64::MAX);
        assert!(duration_ms("soon").is_err());
    }
}
