//! The kubelet side, live: a kubelet-shaped process (a program named `kubelet` with real
//! kubelet flags and a KubeletConfiguration file) found by process, kubelet journal lines
//! written with systemd-journal-remote into the host's journal, a CRI socket that accepts
//! and never answers, and incident 1's chain (a `runc:[2:INIT]` blocked on a shrunk pipe,
//! PLEG lines) rooted at `pipe-quota`. Root: `--features live`.
#![cfg(feature = "live")]

mod common;
#[path = "common/kubelet.rs"]
mod kubelet;

use common::faults::*;
use common::*;
use kubelet::{FakeKubelet, JournalLines};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn by_key<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
}

const THROTTLED: &str = "I1122 10:21:33.123456    4242 request.go:697] Waited for 1.19s due to client-side throttling, not priority and fairness, request: GET:https://10.0.0.1:6443/api/v1/namespaces/shop/pods/cart-1";

#[test]
fn a_kubelet_process_its_flags_config_and_journal_lines_are_read() {
    assert_root();
    let _g = serialize();
    let config = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                  kubeAPIBurst: 10\nevictionHard:\n  memory.available: 200Mi\n\
                  allowedUnsafeSysctls: [\"net.core.somaxconn\", \"vm.max_map_count\"]\n";
    let k = FakeKubelet::start(config, &["--kube-api-qps=5", "--v=2"]);
    let mut lines: Vec<(&str, &str, u64)> = vec![(
        "kubelet.service",
        r#"I1122 10:00:00.000000    4242 server.go:487] "Kubelet version" kubeletVersion="v1.26.5""#,
        300,
    )];
    for i in 0..12 {
        lines.push(("kubelet.service", THROTTLED, 60 + i));
    }
    let _journal = JournalLines::write(&lines);

    let (code, doc) = check_json(&[
        "--only",
        "kubelet-config",
        "--only",
        "kubelet-api-throttling",
        "--window",
        "0",
    ]);
    assert_eq!(code, 1, "{doc:#}");
    let qps = by_key(&doc, "kubelet-config/setting:kubeAPIQPS").expect("QPS reported");
    assert_eq!(measure(qps, "kube_api_qps"), Some(5.0));
    assert_eq!(qps["subjects"][0]["pid"], k.pid());
    let summary = qps["summary"].as_str().unwrap();
    assert!(summary.contains("flag --kube-api-qps"), "{summary}");
    let ev = qps["evidence"].to_string();
    assert!(
        ev.contains("1.26 (from kubelet log"),
        "version from the journal line: {ev}"
    );
    assert!(ev.contains(k.config.to_str().unwrap()), "{ev}");
    let eviction =
        by_key(&doc, "kubelet-config/setting:evictionHard").expect("partial evictionHard");
    assert_eq!(measure(eviction, "eviction_signals_dropped"), Some(3.0));
    let sysctls = by_key(&doc, "kubelet-config/setting:allowedUnsafeSysctls").unwrap();
    assert_eq!(sysctls["severity"], "critical");
    assert_eq!(measure(sysctls, "not_namespaced"), Some(1.0));

    let t = by_key(&doc, "kubelet-api-throttling/node").expect("throttling reported");
    assert_eq!(t["severity"], "warning");
    assert_eq!(measure(t, "throttled_lines"), Some(12.0));
    assert_eq!(measure(t, "kube_api_qps"), Some(5.0));
    assert_eq!(t["log"]["source"], "journal:kubelet.service");
    assert_eq!(
        t["caused_by"],
        serde_json::json!(["kubelet-config/setting:kubeAPIQPS"]),
        "{t:#}"
    );
    assert_eq!(
        qps["explains"],
        serde_json::json!(["kubelet-api-throttling/node"])
    );
}

/// A socket that accepts connections and never answers (a runtime wedged behind its shims):
/// runtime-health is critical within the per-call deadline, and node-doctor ends.
#[test]
fn a_cri_socket_that_accepts_and_never_answers_is_critical_within_the_deadline() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hung.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // Accept, hold every connection open, read nothing, answer nothing.
    let holder = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut held = Vec::new();
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        held.len()
    });
    let _g = serialize();
    let _k = FakeKubelet::start(
        "kind: KubeletConfiguration\n",
        &[&format!(
            "--container-runtime-endpoint=unix://{}",
            sock.display()
        )],
    );
    let t = Instant::now();
    let (code, doc) = check_json(&["--only", "runtime-health", "--window", "0"]);
    let took = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let accepted = holder.join().unwrap();
    assert!(accepted >= 1, "node-doctor connected");
    assert_eq!(code, 1, "{doc:#}");
    let f = findings_of(&doc, "runtime-health");
    let calls = f
        .iter()
        .find(|f| f["key"].as_str().unwrap().ends_with(":calls"))
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(calls["severity"], "critical");
    assert!(measure(calls, "cri_timeouts").unwrap() >= 1.0);
    assert_eq!(measure_limit(calls, "cri_call"), Some(2.0));
    assert!(
        calls["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("{} accepted the connection", sock.display())),
        "{calls:#}"
    );
    assert!(
        took < Duration::from_secs(15),
        "bounded by the deadline, not by the socket: {took:?}"
    );
}

/// As `uid`: fill the quota with three full pipes, make the "bootstrap" pipe (shrunk),
/// rename itself `runc:[2:INIT]` and write 16 KiB into it in one go: the write blocks.
const RUNC_INIT: &str = r#"
import ctypes, fcntl, os, sys
F_GETPIPE_SZ, PR_SET_NAME = 1032, 15
uid = int(sys.argv[1])
os.setgid(uid)
os.setuid(uid)
held = [os.pipe() for _ in range(3)]
r, w = os.pipe()
size = fcntl.fcntl(w, F_GETPIPE_SZ)
ctypes.CDLL(None).prctl(PR_SET_NAME, b"runc:[2:INIT]", 0, 0, 0)
print("blocking", size, flush=True)
os.write(w, b"x" * 16384)
"#;

/// Incident 1's chain on this machine: uid 4245 over a lowered fs.pipe-user-pages-soft, its
/// `runc:[2:INIT]` blocked writing a 2-page pipe, and the kubelet logging PLEG not healthy:
/// one chain, pipe-quota → runc-init-hang → pleg-unhealthy, shown root first.
#[test]
fn a_runc_init_on_a_shrunk_pipe_and_pleg_lines_are_one_chain_rooted_at_the_pipe_quota() {
    assert_root();
    let _g = serialize();
    let _soft = SysctlGuard::set("fs.pipe-user-pages-soft", "48");
    let mut init = Helper::spawn(Command::new(python3()).args(["-c", RUNC_INIT, "4245"]));
    let line = init.expect("blocking");
    assert!(line.ends_with(" 8192"), "{line}");
    let pid = init.pid();
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|w| w.contains("pipe_write"))
    }));
    let _k = FakeKubelet::start("kind: KubeletConfiguration\n", &[]);
    let pleg = r#"E1122 10:00:00.000000    4242 kubelet.go:2359] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m5.5s ago; threshold is 3m0s""#;
    let _journal = JournalLines::write(&[
        ("kubelet.service", pleg, 30),
        ("kubelet.service", pleg, 20),
        ("kubelet.service", pleg, 10),
    ]);
    std::thread::sleep(Duration::from_millis(2100));
    let args = [
        "--only",
        "pipe-quota",
        "--only",
        "runc-init-hang",
        "--only",
        "pleg-unhealthy",
        "--window",
        "0",
        "--set",
        "runc-init-hang.threshold=1s",
        "--set",
        "pleg-unhealthy.runc_age=1s",
    ];
    let (code, doc) = check_json(&args);
    assert_eq!(code, 1, "{doc:#}");
    let runc = findings_naming(&doc, "runc-init-hang", pid);
    assert_eq!(runc.len(), 1, "{doc:#}");
    let quota = by_key(&doc, "pipe-quota/user:4245").expect("the uid's quota");
    assert_eq!(runc[0]["caused_by"], serde_json::json!([quota["key"]]));
    let p = by_key(&doc, "pleg-unhealthy/node").expect("PLEG reported");
    assert_eq!(p["severity"], "critical");
    assert_eq!(measure(p, "pleg_unhealthy_lines"), Some(3.0));
    assert!(
        p["caused_by"].as_array().unwrap().contains(&runc[0]["key"]),
        "{p:#}"
    );
    assert!(p["cause"].as_str().unwrap().contains("runc:[2:INIT]"));

    // Human output: the chain with the root cause first.
    let out = node_doctor().arg("check").args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let chains = text
        .split("Causal chains (root cause first):")
        .nth(1)
        .expect("a chain section")
        .split("\n\n")
        .next()
        .unwrap()
        .to_string();
    let ours: Vec<&str> = chains.lines().collect();
    let q = ours
        .iter()
        .position(|l| l.contains("pipe-quota") && l.contains("uid 4245"))
        .unwrap_or_else(|| panic!("{chains}"));
    assert!(ours[q + 1].contains("runc-init-hang"), "{chains}");
    assert!(ours[q + 2].contains("pleg-unhealthy"), "{chains}");
}
