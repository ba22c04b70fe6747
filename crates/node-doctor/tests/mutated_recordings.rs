//! Never panic on a damaged recording. Issue 10 reproduced exit 101 on a filesystem with
//! `"paths": []`, a rendering panic for `collected_at_ms` past the year 9999, overflowing
//! multiplications for `kernel.hung_task_timeout_secs` and `fs.pipe-user-pages-soft` near
//! their maxima, and findings that changed when a recording's processes were not sorted.
//!
//! A property test takes real recordings (incident 1's, and `snapshot -o` of every fixture
//! tree, made once per run) and damages them: truncation at a byte, byte flips, extreme
//! values, wrong types, emptied arrays, shuffled lists. Layer (a) runs many cases in process
//! (load, every check, both renderers) under `catch_unwind`; layer (b) fewer through the real
//! binary (`check --from`): exit 0, 1 or 2, and never a panic message. The cases issue 10
//! reproduced are kept as plain tests below. The seed is fixed (deterministic runs); set
//! `PROPTEST_RNG_SEED` to explore others and `PROPTEST_CASES` for more cases per layer.

mod common;
use common::*;
use node_doctor_core::checks::{self, History, Report};
use node_doctor_core::config::Config;
use node_doctor_core::finding::Severity;
use node_doctor_core::model::Recording;
use node_doctor_core::render::{CheckView, human, json};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::Duration;

/// One real recording to damage, with the JSON pointers of its nodes (for picking targets).
struct Original {
    name: String,
    value: Value,
    /// Every node, in document order.
    nodes: Vec<String>,
    numbers: Vec<String>,
    strings: Vec<String>,
    arrays: Vec<String>,
}

fn pointers(v: &Value, at: String, o: &mut Original) {
    match v {
        Value::Array(a) => {
            o.arrays.push(at.clone());
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), o);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(x, format!("{at}/{k}"), o);
            }
        }
        Value::Number(_) => o.numbers.push(at.clone()),
        Value::String(_) => o.strings.push(at.clone()),
        _ => {}
    }
    o.nodes.push(at);
}

fn original(name: String, bytes: &[u8]) -> Original {
    let value: Value = serde_json::from_slice(bytes).expect("a real recording is JSON");
    let mut o = Original {
        name,
        value: Value::Null,
        nodes: Vec::new(),
        numbers: Vec::new(),
        strings: Vec::new(),
        arrays: Vec::new(),
    };
    pointers(&value, String::new(), &mut o);
    o.value = value;
    o
}

/// Incident 1's recording and a two-sample `snapshot -o` of every fixture tree (made once,
/// in parallel; the temporary directory is removed once they are read).
fn originals() -> &'static [Original] {
    static ALL: OnceLock<Vec<Original>> = OnceLock::new();
    ALL.get_or_init(|| {
        let base = fixture("healthy");
        let fixtures = base.parent().unwrap().parent().unwrap();
        let incident = fixtures.join("incident-1-runc-init/recording.json");
        let mut all = vec![original(
            "incident-1 recording.json".into(),
            &std::fs::read(incident).unwrap(),
        )];
        let dir = tempfile::tempdir().unwrap();
        let mut scenarios: Vec<String> = std::fs::read_dir(fixtures)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().join("root").is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        scenarios.sort();
        let runs: Vec<_> = scenarios
            .iter()
            .map(|name| {
                let out = dir.path().join(format!("{name}.json"));
                let root = fixture(name);
                std::thread::spawn(move || {
                    // A window of a second: the fixture clock moves in whole seconds.
                    node_doctor()
                        .args(["snapshot", "--window", "1s", "--root"])
                        .arg(root)
                        .arg("-o")
                        .arg(&out)
                        .timeout(Duration::from_secs(30))
                        .assert()
                        .success();
                    std::fs::read(out).unwrap()
                })
            })
            .collect();
        for (name, run) in scenarios.iter().zip(runs) {
            all.push(original(
                format!("snapshot of {name}"),
                &run.join().unwrap(),
            ));
        }
        all
    })
}

/// Values that broke, or could break, arithmetic and rendering.
const EXTREME_NUMBERS: &[&str] = &[
    "18446744073709551615", // u64::MAX
    "18446744073709551616", // u64::MAX + 1: not a u64
    "9223372036854775807",
    "-9223372036854775808",
    "-1",
    "0",
    "4294967296",
    "2147483648",
    "253402300800000", // year 10000, in ms
    "92233720368547758",
    "1e308",
    "-1e308",
    "0.5",
];

/// The same as sysctl text, and NaN-ish strings that are no number at all.
const EXTREME_STRINGS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "92233720368547758",
    "-1",
    "0",
    "1e308",
    "NaN",
    "inf",
    "-0",
    "",
    " 7 ",
    "0x10",
    "\u{0}",
    "9999999999999999999999999999",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the file at a byte.
    Truncate(Index),
    /// XOR bytes at positions.
    Flip(Vec<(Index, u8)>),
    /// A number replaced with an extreme one.
    ExtremeNumber(Index, Index),
    /// A string replaced with an extreme (sysctl-like) one.
    ExtremeString(Index, Index),
    /// Any node replaced with a value of another type.
    WrongType(Index, u8),
    /// An array emptied.
    Empty(Index),
    /// An array reversed, or rotated and reversed.
    Shuffle(Index, u8),
    /// The values issue 10 reproduced failures with, on a sample.
    Known(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        prop::collection::vec((any::<Index>(), 1u8..), 1..8).prop_map(Mutation::Flip),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ExtremeNumber(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ExtremeString(a, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(a, b)| Mutation::WrongType(a, b)),
        any::<Index>().prop_map(Mutation::Empty),
        (any::<Index>(), any::<u8>()).prop_map(|(a, b)| Mutation::Shuffle(a, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(a, b)| Mutation::Known(a, b)),
    ]
}

fn wrong_value(kind: u8) -> Value {
    match kind % 7 {
        0 => json!("not a number"),
        1 => json!({"unexpected": [1, 2]}),
        2 => json!([{"a": 1}, "x"]),
        3 => Value::Null,
        4 => json!(true),
        5 => json!(-3.5),
        _ => json!(""),
    }
}

/// The known failures of issue 10, applied to sample `i`.
fn known(v: &mut Value, i: usize, which: u8) {
    let Some(samples) = v.get_mut("samples").and_then(Value::as_array_mut) else {
        return;
    };
    let n = samples.len();
    if n == 0 {
        return;
    }
    let s = &mut samples[i % n];
    match which % 9 {
        0 => s["collected_at_ms"] = json!(253_402_300_800_000u64),
        1 => s["collected_at_ms"] = json!(u64::MAX),
        2 => s["sysctls"]["kernel.hung_task_timeout_secs"] = json!("92233720368547758"),
        3 => s["sysctls"]["fs.pipe-user-pages-soft"] = json!("18446744073709551615"),
        4 => {
            if let Some(fss) = s.get_mut("filesystems").and_then(Value::as_array_mut) {
                for f in fss {
                    f["paths"] = json!([]);
                }
            }
        }
        5 => {
            if let Some(ps) = s.get_mut("processes").and_then(Value::as_array_mut) {
                ps.reverse();
            }
        }
        6 => {
            s["page_size"] = json!(u64::MAX);
            s["clock_ticks_per_sec"] = json!(u64::MAX);
        }
        7 => {
            s["page_size"] = json!(0);
            s["clock_ticks_per_sec"] = json!(0);
        }
        _ => {
            if let Some(ps) = s.get_mut("processes").and_then(Value::as_array_mut) {
                for p in ps {
                    p["start_time_ticks"] = json!(u64::MAX);
                    p["threads"] = json!(u64::MAX);
                    p["open_fds"] = json!(u64::MAX);
                }
            }
        }
    }
}

/// The damaged file: JSON-level mutations first, then byte-level ones.
fn damage(o: &Original, muts: &[Mutation]) -> Vec<u8> {
    let mut v = o.value.clone();
    let pick = |list: &Vec<String>, i: &Index| -> Option<String> {
        (!list.is_empty()).then(|| i.get(list).clone())
    };
    for m in muts {
        match m {
            Mutation::ExtremeNumber(at, which) => {
                if let Some(p) = pick(&o.numbers, at)
                    && let Some(n) = v.pointer_mut(&p)
                {
                    *n = serde_json::from_str(EXTREME_NUMBERS[which.index(EXTREME_NUMBERS.len())])
                        .unwrap();
                }
            }
            Mutation::ExtremeString(at, which) => {
                if let Some(p) = pick(&o.strings, at)
                    && let Some(n) = v.pointer_mut(&p)
                {
                    *n = json!(EXTREME_STRINGS[which.index(EXTREME_STRINGS.len())]);
                }
            }
            Mutation::WrongType(at, kind) => {
                if let Some(p) = pick(&o.nodes, at)
                    && let Some(n) = v.pointer_mut(&p)
                {
                    *n = wrong_value(*kind);
                }
            }
            Mutation::Empty(at) => {
                if let Some(p) = pick(&o.arrays, at)
                    && let Some(Value::Array(a)) = v.pointer_mut(&p)
                {
                    a.clear();
                }
            }
            Mutation::Shuffle(at, how) => {
                if let Some(p) = pick(&o.arrays, at)
                    && let Some(Value::Array(a)) = v.pointer_mut(&p)
                    && !a.is_empty()
                {
                    let k = usize::from(*how) % a.len();
                    a.rotate_left(k);
                    if how % 2 == 0 {
                        a.reverse();
                    }
                }
            }
            Mutation::Known(at, which) => known(&mut v, at.index(8), *which),
            Mutation::Truncate(_) | Mutation::Flip(_) => {}
        }
    }
    let mut bytes = serde_json::to_vec(&v).unwrap();
    for m in muts {
        match m {
            Mutation::Truncate(at) if !bytes.is_empty() => {
                let n = at.index(bytes.len());
                bytes.truncate(n);
            }
            Mutation::Flip(flips) if !bytes.is_empty() => {
                for (at, x) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] ^= x;
                }
            }
            _ => {}
        }
    }
    bytes
}

/// Loads, checks and renders `bytes` as `check --from` would; `Err` with the panic message
/// if anything panicked. A recording refused on load is fine (that is a clear error).
fn replay(bytes: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| {
        let Ok(rec) = Recording::from_slice("mutated.json", bytes) else {
            return;
        };
        let history = History::new(&rec.samples).expect("a loaded recording has samples");
        let all: Vec<_> = checks::all().iter().collect();
        let report = checks::run(&all, &history, &Config::default());
        let view = CheckView::new(&history, &report);
        let doc = json::render(&view);
        serde_json::from_str::<Value>(&doc).expect("the JSON report is JSON");
        human::render(&view, &human::Style { color: true });
        human::render(&view, &human::Style { color: false });
    }))
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

fn config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x006e_6f64_6564_6f63);
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(cases),
        rng_seed: RngSeed::Fixed(seed),
        // Found cases are kept as plain tests below, not in a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// (a) In process: load, every check, both renderers; no panic.
    #[test]
    fn damaged_recordings_never_panic_in_process(
        which in any::<Index>(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let o = which.get(originals());
        let bytes = damage(o, &muts);
        if let Err(panic) = replay(&bytes) {
            prop_assert!(false, "{}: {muts:?} panicked: {panic}", o.name);
        }
    }
}

proptest! {
    #![proptest_config(config(40))]

    /// (b) Through the binary: `check --from` exits 0, 1 or 2 and never panics.
    #[test]
    fn damaged_recordings_never_panic_the_binary(
        which in any::<Index>(),
        muts in prop::collection::vec(mutation(), 1..4),
        as_json in any::<bool>(),
    ) {
        let o = which.get(originals());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mutated.json");
        std::fs::write(&file, damage(o, &muts)).unwrap();
        let out = node_doctor()
            .args(["check", "--from"])
            .arg(&file)
            .args(["--format", if as_json { "json" } else { "human" }])
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{}: {muts:?}: exit {:?}: {stderr}", o.name, out.status
        );
        prop_assert!(!stderr.contains("panicked"), "{}: {muts:?}: {stderr}", o.name);
        if as_json && out.status.code() != Some(2) {
            prop_assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok());
        }
    }
}

// ---- The cases issue 10 reproduced, as plain tests ---------------------------------------

/// Incident 1's recording as JSON, to edit.
fn incident_1() -> Value {
    originals()[0].value.clone()
}

/// The two-sample snapshot of a fixture tree, to edit.
fn snapshot_of_fixture(name: &str) -> Value {
    originals()
        .iter()
        .find(|o| o.name == format!("snapshot of {name}"))
        .unwrap()
        .value
        .clone()
}

fn report_of(v: &Value) -> Report {
    let rec = Recording::from_slice("edited", &serde_json::to_vec(v).unwrap()).unwrap();
    run_checks(&rec.samples, &[])
}

fn check_from(v: &Value) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edited.json");
    std::fs::write(&file, serde_json::to_vec(v).unwrap()).unwrap();
    let out = node_doctor()
        .args(["check", "--format", "json", "--from"])
        .arg(&file)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Guards: a filesystem with `"paths": []` made `check --from` exit 101 (an index panic in
/// disk-pressure). Such entries are dropped on load; the rest of the recording is checked.
#[test]
fn a_filesystem_without_paths_is_dropped_not_a_panic() {
    let mut v = snapshot_of_fixture("healthy");
    let last = v["samples"].as_array().unwrap().len() - 1;
    let fss = v["samples"][last]["filesystems"].as_array_mut().unwrap();
    assert!(!fss.is_empty(), "the healthy tree measures /");
    for f in fss.iter_mut() {
        f["paths"] = json!([]);
    }
    assert_eq!(replay(&serde_json::to_vec(&v).unwrap()), Ok(()));
    let (code, stdout, stderr) = check_from(&v);
    assert_eq!(code, Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        doc["unknown"]
            .to_string()
            .contains("no watched filesystem was measured"),
        "{doc:#}"
    );
}

/// Guards: `collected_at_ms` past the year 9999 panicked the renderer. It is refused on load
/// with a clear message (exit 2), naming the sample.
#[test]
fn a_time_past_year_9999_is_refused_clearly() {
    for t in [253_402_300_800_000u64, u64::MAX] {
        let mut v = incident_1();
        v["samples"][0]["collected_at_ms"] = json!(t);
        assert_eq!(replay(&serde_json::to_vec(&v).unwrap()), Ok(()));
        let (code, _, stderr) = check_from(&v);
        assert_eq!(code, Some(2));
        assert!(
            stderr.contains("sample 0 is invalid") && stderr.contains("past the year 9999"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

/// Guards: `kernel.hung_task_timeout_secs` near its maximum overflowed `secs * 1000` (a panic
/// in debug, a wrapped product and so the wrong severity in release). A task stuck for one
/// second is critical past a 1 s timeout and a warning under a huge one.
#[test]
fn a_huge_hung_task_timeout_neither_panics_nor_changes_the_severity() {
    // The 5.4 node's rsync is in D with SIGKILL pending (critical whatever the timeout):
    // with no signal pending only the timeout decides.
    let mut base = snapshot_of_fixture("kernel-5.4");
    for s in base["samples"].as_array_mut().unwrap() {
        for p in s["processes"].as_array_mut().unwrap() {
            if p["state"] == "D" {
                p["sig_pending"] = json!(0);
                p["shared_sig_pending"] = json!(0);
            }
        }
    }
    let severity_with = |timeout: &str| {
        let mut v = base.clone();
        for s in v["samples"].as_array_mut().unwrap() {
            s["sysctls"]["kernel.hung_task_timeout_secs"] = json!(timeout);
        }
        let r = report_of(&v);
        let d: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.check == "d-state-processes")
            .collect();
        assert_eq!(
            d.len(),
            1,
            "the 5.4 node's rsync stays in D: {:#?}",
            r.findings
        );
        let stuck = d[0].measure("stuck").unwrap();
        assert!(stuck.value >= 1.0, "{stuck:?}");
        (d[0].severity, stuck.limit)
    };
    assert_eq!(severity_with("1"), (Severity::Critical, Some(1.0)));
    for huge in [
        "92233720368547758",
        "18446744073709551615",
        "18446744073709551",
    ] {
        let (sev, limit) = severity_with(huge);
        assert_eq!(sev, Severity::Warning, "timeout {huge}");
        assert_eq!(limit, Some(huge.parse::<f64>().unwrap()));
    }
}

/// Guards: a huge `fs.pipe-user-pages-soft` overflowed the pipe-quota finding's arithmetic
/// while it fired (incident 1's shrunk pipes are critical whatever the soft limit).
#[test]
fn a_huge_pipe_soft_limit_while_pipe_quota_fires() {
    let mut v = incident_1();
    let before = report_of(&v);
    let pq = |r: &Report| {
        r.findings
            .iter()
            .filter(|f| f.check == "pipe-quota")
            .map(|f| (f.key.clone(), f.severity))
            .collect::<Vec<_>>()
    };
    assert!(!pq(&before).is_empty());
    for huge in [
        "18446744073709551615",
        "9223372036854775807",
        "4611686018427387904",
    ] {
        v["samples"][0]["sysctls"]["fs.pipe-user-pages-soft"] = json!(huge);
        v["samples"][0]["sysctls"]["fs.pipe-user-pages-hard"] = json!(huge);
        let bytes = serde_json::to_vec(&v).unwrap();
        assert_eq!(replay(&bytes), Ok(()));
        let after = report_of(&v);
        assert_eq!(pq(&after), pq(&before), "soft limit {huge}");
        let f = after
            .findings
            .iter()
            .find(|f| f.check == "pipe-quota")
            .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.measure("pipe_pages").unwrap().limit,
            Some(huge.parse::<f64>().unwrap())
        );
    }
}

/// Guards: a recording whose processes were not sorted by pid silently changed findings
/// (lookups by pid are binary searches). Shuffled, the findings are identical.
#[test]
fn unsorted_processes_give_the_same_findings() {
    for original in [incident_1(), snapshot_of_fixture("kernel-5.4")] {
        let want = serde_json::to_value(&report_of(&original).findings).unwrap();
        assert!(!want.as_array().unwrap().is_empty());
        for how in 0..3usize {
            let mut v = original.clone();
            for s in v["samples"].as_array_mut().unwrap() {
                let ps = s["processes"].as_array_mut().unwrap();
                match how {
                    0 => ps.reverse(),
                    1 => {
                        let half = ps.len() / 2;
                        ps.rotate_left(half);
                    }
                    _ => {
                        ps.rotate_left(1);
                        ps.swap(0, 2);
                    }
                }
            }
            let got = serde_json::to_value(&report_of(&v).findings).unwrap();
            assert_eq!(got, want, "shuffle {how}");
        }
        // The binary says the file was repaired.
        let mut v = original.clone();
        v["samples"][0]["processes"]
            .as_array_mut()
            .unwrap()
            .reverse();
        let (code, _, stderr) = check_from(&v);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("repaired on load: sample 0: processes sorted by pid"),
            "{stderr}"
        );
    }
}
