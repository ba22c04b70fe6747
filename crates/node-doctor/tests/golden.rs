//! Golden JSON per fixture scenario (node_exporter's end-to-end pattern): `check --root
//! <tree> --window 0 --format json` is compared whole with `tests/fixtures/<scenario>/
//! golden.json`, so any change of the contract or of a finding shows as a diff.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files after a deliberate change.
//!
//! Normalized: the tree's absolute path (it depends on the checkout) and the timings (they
//! depend on the machine).

mod common;
use common::*;
use serde_json::Value;

const SCENARIOS: &[&str] = &[
    "healthy",
    "pid-exhaustion",
    "fd-exhaustion",
    "bad-input",
    "kernel-5.4",
    "cgroup-v2-pids",
    "incident-1-runc-init",
    "cgroup-v2-memory",
    "mount-leak",
    "incident-3-coredumps",
];

fn normalized(scenario: &str) -> Value {
    let root = fixture(scenario);
    let root_s = root.to_str().unwrap();
    let (_, mut doc) = check_json(&["--root", root_s, "--window", "0"]);
    doc["host"]["root"] = Value::from("<fixture root>");
    doc.as_object_mut().unwrap().remove("timings");
    doc
}

#[test]
fn every_scenario_matches_its_golden_document() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut differ = Vec::new();
    for s in SCENARIOS {
        let got = normalized(s);
        let path = fixture(s).with_file_name("golden.json");
        if update {
            let mut text = serde_json::to_string_pretty(&got).unwrap();
            text.push('\n');
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display())),
        )
        .unwrap();
        if got != want {
            differ.push(format!(
                "{s}: differs from {}\n--- got:\n{}",
                path.display(),
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{}\n(after a deliberate change: UPDATE_GOLDEN=1 cargo test --test golden)",
        differ.join("\n")
    );
}

/// The documents' own shape, checked against a test-side mirror of the contract (ripgrep's
/// tests/json.rs pattern): every field the contract documents is there with its type, and
/// nothing undocumented appears.
#[test]
fn the_documents_follow_the_contract() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        schema: String,
        host: Host,
        findings: Vec<Finding>,
        unknown: Vec<Unknown>,
        coverage: Coverage,
        timings: Timings,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Host {
        hostname: Option<String>,
        kernel_release: Option<String>,
        root: String,
        collected_at: String,
        collected_at_ms: u64,
        uptime_secs: Option<f64>,
        samples: usize,
        window_ms: u64,
        processes: usize,
        checks_run: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Finding {
        check: String,
        key: String,
        severity: String,
        summary: String,
        cause: String,
        remedy: String,
        evidence: Vec<Value>,
        subjects: Vec<Value>,
        measures: Vec<Measure>,
        log: Option<Value>,
        caused_by: Option<Vec<String>>,
        explains: Option<Vec<String>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Measure {
        name: String,
        value: f64,
        limit: Option<f64>,
        unit: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Unknown {
        check: String,
        reason: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Coverage {
        complete: bool,
        notes: Vec<String>,
        inconclusive: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Timings {
        collectors: Vec<Value>,
        checks: Vec<Value>,
    }
    for s in SCENARIOS {
        let (_, doc) = check_json(&["--root", fixture(s).to_str().unwrap(), "--window", "0"]);
        let parsed: Result<Doc, _> = serde_json::from_value(doc.clone());
        assert!(parsed.is_ok(), "{s}: {:?}\n{doc:#}", parsed.err());
        for f in doc["findings"].as_array().unwrap() {
            assert!(
                f["key"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{}/", f["check"].as_str().unwrap())),
                "{s}: a key starts with its check id: {f:#}"
            );
        }
    }
}
