//! The agent end to end: the real `node-doctor agent` process on this host, publishing to a
//! fake API server on loopback (tests/common/fake_apiserver.rs, strict about server-side
//! apply's ownership), while a real fault comes and goes: a parent that leaks zombies.
//! Condition True with its reason → restart in between (no flap: adopted, same
//! lastTransitionTime) → fault removed → False after the hysteresis. kubelet's Ready is
//! never touched. Also: /metrics passes `promtool check metrics`, and a real Prometheus
//! scrapes the agent.
#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

#[path = "common/fake_apiserver.rs"]
mod fake_apiserver;
use fake_apiserver::FakeApiServer;
#[path = "common/containerd.rs"]
mod containerd;
#[path = "common/kubelet.rs"]
mod kubelet;
use containerd::Containerd;
use kubelet::{FakeKubelet, JournalLines};

const LEAKER: &str = r#"
import os, sys
for _ in range(30):
    if os.fork() == 0:
        os._exit(0)
print("leaking", flush=True)
sys.stdin.readline()
for _ in range(30):
    os.wait()
print("reaped", flush=True)
sys.stdin.readline()
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent_config(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("agent.toml");
    std::fs::write(
        &p,
        "[agent]\ninterval = \"1s\"\nprocesses_interval = \"1s\"\nfds_interval = \"1s\"\npipes_interval = \"1s\"\ncollect_budget_percent = 100\n\
         clear_after = 2\ncondition_on_warning = true\n[logs]\nsources = []\n",
    )
    .unwrap();
    p
}

fn start_agent(api: &FakeApiServer, dir: &std::path::Path, port: u16) -> Spawned {
    start_agent_in(api, dir, port, std::path::Path::new("/"))
}

fn start_agent_in(
    api: &FakeApiServer,
    dir: &std::path::Path,
    port: u16,
    root: &std::path::Path,
) -> Spawned {
    let config = agent_config(dir);
    start_agent_with(api, dir, port, root, &config)
}

fn start_agent_with(
    api: &FakeApiServer,
    dir: &std::path::Path,
    port: u16,
    root: &std::path::Path,
    config: &std::path::Path,
) -> Spawned {
    let kubeconfig = api.kubeconfig(dir);
    let state = dir.join("state");
    Spawned::start(&[
        "agent",
        "--root",
        root.to_str().unwrap(),
        "--node-name",
        "n1",
        "--pod-name",
        "node-doctor-test",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
}

fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: not within {limit:?}");
}

fn zombie_condition(api: &FakeApiServer) -> Option<(String, String, String)> {
    let c = api.condition("ZombieProcesses")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["lastTransitionTime"].as_str()?.to_string(),
    ))
}

#[test]
fn a_zombie_leak_sets_the_condition_survives_a_restart_and_clears_after_the_hysteresis() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApiServer::start("n1");
    let port = free_port();
    let mut leaker = Helper::python(LEAKER);
    leaker.expect("leaking");

    let mut agent = start_agent(&api, dir.path(), port);
    wait_for(Duration::from_secs(40), "ZombieProcesses True", || {
        zombie_condition(&api).is_some_and(|(s, r, _)| s == "True" && r == "UnreapedZombies")
    });
    let (_, _, since) = zombie_condition(&api).unwrap();
    // The finding behind it names the parent (typed: its subject's pid).
    let findings: Value = serde_json::from_str(&http_get(port, "/findings").unwrap()).unwrap();
    let about = findings_about(
        &findings,
        "zombie-processes",
        "pid",
        &Value::from(leaker.pid()),
    );
    assert_eq!(about.len(), 1, "the leaker's finding: {findings:#}");
    assert_eq!(measure(about[0], "zombies"), Some(30.0), "{:#}", about[0]);
    // Every write so far went through server-side apply as node-doctor, forced, and left
    // kubelet's condition alone.
    let patches: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(!patches.is_empty());
    assert!(
        patches
            .iter()
            .all(|r| r.content_type == "application/apply-patch+yaml")
    );
    assert!(patches.iter().any(|r| r.query.contains("fieldManager=node-doctor") && r.query.contains("force=true")));
    assert_eq!(api.condition("Ready").unwrap()["reason"], "KubeletReady");
    // The first write came after a GET of the Node (adoption) and carried every own type.
    let reqs = api.requests();
    let first_patch = reqs.iter().position(|r| r.method == "PATCH").unwrap();
    assert!(
        reqs[..first_patch]
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v1/nodes/n1")
    );
    let types: Vec<&str> = reqs[first_patch].body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"ZombieProcesses") && types.contains(&"PIDExhaustion"),
        "{types:?}"
    );

    // SIGTERM: a clean exit within 5 s.
    assert_eq!(agent.terminate(), Some(0), "exits cleanly on SIGTERM");
    let writes_before = api.requests().len();

    // Restarted while the fault persists: adopted, no flap, the same transition time.
    let mut agent = start_agent(&api, dir.path(), port);
    wait_for(Duration::from_secs(30), "a write after the restart", || {
        api.requests()
            .iter()
            .skip(writes_before)
            .any(|r| r.method == "PATCH")
    });
    std::thread::sleep(Duration::from_secs(3));
    for r in api
        .requests()
        .iter()
        .skip(writes_before)
        .filter(|r| r.method == "PATCH")
    {
        for c in r.body["status"]["conditions"].as_array().unwrap() {
            if c["type"] == "ZombieProcesses" {
                assert_eq!(c["status"], "True", "no flap after the restart: {c}");
                assert_eq!(
                    c["lastTransitionTime"],
                    Value::from(since.clone()),
                    "the clock is kept"
                );
            }
        }
    }

    // The fault goes: False after the hysteresis, with a new transition time.
    leaker.say("reap");
    leaker.expect("reaped");
    wait_for(Duration::from_secs(40), "ZombieProcesses False", || {
        zombie_condition(&api).is_some_and(|(s, _, _)| s == "False")
    });
    let (_, reason, cleared_at) = zombie_condition(&api).unwrap();
    assert_eq!(reason, "NoZombiePileUp");
    assert_ne!(cleared_at, since);
    // Events: the detection and the clearing, on the Node.
    wait_for(Duration::from_secs(20), "the Cleared event", || {
        api.events().iter().any(|e| {
            e["action"] == "Cleared"
                && e["note"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("ZombieProcesses")
        })
    });
    let evs = api.events();
    assert!(evs.iter().any(|e| e["action"] == "Detected"
        && e["reason"] == "UnreapedZombies"
        && e["regarding"]["name"] == "n1"));
    // The flight recorder wrote the samples of the moment it turned True.
    // (PIDExhaustion turns True too and is recorded beside it: the zombie one is replayed.)
    let recs: Vec<_> = std::fs::read_dir(dir.path().join("state/recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-ZombieProcesses.json"))
        .collect();
    assert!(!recs.is_empty(), "a recording");
    let rec = recs[0].clone();
    let (code, doc) = check_json(&[
        "--from",
        rec.to_str().unwrap(),
        "--only",
        "zombie-processes",
    ]);
    assert_eq!(code, 1, "the recording replays the evidence");
    assert!(!findings_naming(&doc, "zombie-processes", leaker.pid()).is_empty());
    assert_eq!(agent.terminate(), Some(0));
}

#[test]
fn the_api_server_down_for_a_while_delays_publishing_and_nothing_else() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApiServer::start("n1");
    // node-problem-detector already owns one of the NPD-named types.
    api.owned_by_other("KernelDeadlock");
    api.set_down(true);
    let port = free_port();
    let mut agent = start_agent(&api, dir.path(), port);
    // Metrics are served meanwhile, and say publishing fails.
    wait_for(
        Duration::from_secs(30),
        "metrics while the API server is down",
        || {
            http_get(port, "/metrics").is_some_and(|m| {
                m.contains(r#"node_doctor_publish_requests_total{target="node",result="error"}"#)
            })
        },
    );
    assert!(
        api.condition("PIDExhaustion").is_none(),
        "nothing written while down"
    );
    api.set_down(false);
    wait_for(
        Duration::from_secs(90),
        "published once the API server is back",
        || api.condition("PIDExhaustion").is_some(),
    );
    // NPD-named types go without force: the one NPD owns is left to it (409), the rest of
    // the conditions are published anyway.
    wait_for(
        Duration::from_secs(30),
        "an apply as node-doctor-npd",
        || {
            api.requests()
                .iter()
                .any(|r| r.method == "PATCH" && r.query.contains("fieldManager=node-doctor-npd"))
        },
    );
    assert!(
        api.requests()
            .iter()
            .all(|r| !(r.query.contains("fieldManager=node-doctor-npd")
                && r.query.contains("force")))
    );
    assert_eq!(
        api.condition("KernelDeadlock").unwrap()["reason"],
        "NPDSaysFine"
    );
    assert_eq!(api.condition("Ready").unwrap()["reason"], "KubeletReady");
    assert_eq!(agent.terminate(), Some(0));
}

/// Bare HTTP GET on loopback (no client crate in the test).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn tool(env: &str) -> Option<std::path::PathBuf> {
    std::env::var_os(env)
        .map(std::path::PathBuf::from)
        .filter(|p| p.exists())
}

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_them() {
    assert_root();
    let promtool = tool("ND_PROMTOOL")
        .expect("ND_PROMTOOL: scripts/deps.sh extracts promtool (Debian prometheus)");
    let prometheus =
        tool("ND_PROMETHEUS").expect("ND_PROMETHEUS: scripts/deps.sh extracts prometheus");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = agent_config(dir.path());
    let mut agent = Spawned::start(&[
        "agent",
        "--no-kubernetes",
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    wait_for(Duration::from_secs(30), "ready", || {
        http_get(port, "/readyz").is_some_and(|b| b.starts_with("ready"))
    });
    let text = http_get(port, "/metrics").unwrap();
    for name in [
        "node_doctor_check_findings",
        "node_doctor_check_up",
        "node_doctor_check_duration_seconds",
        "node_doctor_check_last_run_timestamp_seconds",
        "node_doctor_check_runs_total",
        "node_doctor_collector_duration_seconds",
        "node_doctor_collector_success",
        "node_doctor_event_queue_length",
        "node_doctor_build_info",
        "node_doctor_node",
        "node_doctor_condition",
    ] {
        assert!(
            text.contains(&format!("\n{name}")) || text.starts_with(name),
            "{name} missing:\n{text}"
        );
    }
    assert!(
        !text.contains("pid=") && !text.contains("container_id="),
        "no high-cardinality labels"
    );
    let metrics_file = dir.path().join("metrics.txt");
    std::fs::write(&metrics_file, &text).unwrap();
    let out = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&metrics_file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scraping the agent on loopback.
    let prom_port = free_port();
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: node-doctor\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n"),
    )
    .unwrap();
    let mut prom = std::process::Command::new(&prometheus)
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prom = Kill(&mut prom);
    wait_for(
        Duration::from_secs(60),
        "Prometheus has scraped the agent",
        || {
            http_get(prom_port, "/api/v1/query?query=node_doctor_build_info").is_some_and(|b| {
                serde_json::from_str::<Value>(&b).is_ok_and(|v| {
                    v["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
                })
            })
        },
    );
    let up = http_get(
        prom_port,
        "/api/v1/query?query=up%7Bjob%3D%22node-doctor%22%7D",
    )
    .unwrap();
    let v: Value = serde_json::from_str(&up).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    assert_eq!(agent.terminate(), Some(0));
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = tool("ND_PROMTOOL")
        .expect("ND_PROMTOOL: scripts/deps.sh extracts promtool (Debian prometheus)");
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    for args in [
        &["check", "rules", "alerts.rules.yaml"][..],
        &["test", "rules", "alerts.test.yaml"][..],
    ] {
        let out = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(&deploy)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn remove_conditions_takes_off_only_node_doctors_conditions() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApiServer::start("n1");
    let port = free_port();
    let mut agent = start_agent(&api, dir.path(), port);
    wait_for(Duration::from_secs(60), "conditions published", || {
        ["PIDExhaustion", "ZombieProcesses", "FileDescriptorLeak"]
            .iter()
            .all(|t| api.condition(t).is_some())
    });
    assert_eq!(agent.terminate(), Some(0));
    let kubeconfig = api.kubeconfig(dir.path());
    node_doctor()
        .args([
            "agent",
            "--remove-conditions",
            "--node-name",
            "n1",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .assert()
        .success();
    for t in ["PIDExhaustion", "ZombieProcesses", "FileDescriptorLeak"] {
        assert!(api.condition(t).is_none(), "{t} removed");
    }
    // kubelet's stay, and the removal went through server-side apply as node-doctor.
    assert_eq!(api.condition("Ready").unwrap()["reason"], "KubeletReady");
    assert!(api.requests().iter().any(|r| r.method == "PATCH"
        && r.query.contains("fieldManager=node-doctor")
        && !r.query.contains("force")));
}

/// Bind mounts made by a test, lazily unmounted (last first) on drop, also when it fails.
struct Binds(Vec<std::path::PathBuf>);

impl Binds {
    fn bind(&mut self, from: &std::path::Path, to: &std::path::Path, read_only: bool) {
        std::fs::create_dir_all(to).unwrap();
        let st = std::process::Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "mount --bind {} {}",
            from.display(),
            to.display()
        );
        self.0.push(to.to_path_buf());
        if read_only {
            let st = std::process::Command::new("mount")
                .args(["-o", "remount,bind,ro"])
                .arg(to)
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
}

impl Drop for Binds {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(m)
                .status();
        }
    }
}

fn condition_is(api: &FakeApiServer, type_: &str, status: &str, reason: &str) -> bool {
    api.condition(type_)
        .is_some_and(|c| c["status"] == status && c["reason"] == reason)
}

/// The agent as a DaemonSet runs it, its host's `/` under a directory (`--root`, /host in
/// the pod), read-only: the kubelet's CRI endpoint is `unix:///var/run/...` and the host's
/// `/var/run` a link to `/run`, so the socket is reached inside the root (resolved there,
/// not in the agent's own /run) and connected to through a read-only bind mount — a real
/// containerd answers (its only complaint its own NetworkReady false). The kubelet's journal lines are
/// followed from tick to tick: no PLEG line, PLEGUnhealthy False; PLEG lines written while
/// the agent runs (a new journal file) turn it True, each line counted once.
#[test]
fn the_agent_probes_the_cri_through_the_host_root_and_follows_the_kubelets_journal() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir_all(host.join("var")).unwrap();
    std::os::unix::fs::symlink("/run", host.join("var/run")).unwrap();
    let c = Containerd::start();
    let endpoint = "--container-runtime-endpoint=unix:///var/run/nd-cri-test/containerd.sock";
    let _k = FakeKubelet::start("kind: KubeletConfiguration\n", &[endpoint]);
    let version = r#"I1122 10:00:00.000000    4242 server.go:487] "Kubelet version" kubeletVersion="v1.29.4""#;
    let _first = JournalLines::write_under(&host, &[("kubelet.service", version, 20)]);
    let mut binds = Binds(Vec::new());
    binds.bind(std::path::Path::new("/proc"), &host.join("proc"), false);
    binds.bind(c.dir.path(), &host.join("run/nd-cri-test"), true);

    let api = FakeApiServer::start("n1");
    let port = free_port();
    let mut agent = start_agent_in(&api, dir.path(), port, &host);
    // The runtime answered through the root: what it reports is its own NetworkReady false
    // (the test's containerd has no CNI configured; a warning, and this config sets
    // conditions on warnings), no call that failed.
    wait_for(Duration::from_secs(40), "the runtime's own answer", || {
        api.condition("ContainerRuntimeUnhealthy").is_some_and(|c| {
            c["message"]
                .as_str()
                .is_some_and(|m| m.contains("reports NetworkReady false"))
        })
    });
    let findings: Value = serde_json::from_str(&http_get(port, "/findings").unwrap()).unwrap();
    let rh = findings_of(&findings, "runtime-health");
    assert!(!rh.is_empty(), "{findings:#}");
    assert!(
        rh.iter()
            .all(|f| f["key"].as_str().unwrap().ends_with(":NetworkReady")),
        "{findings:#}"
    );
    wait_for(Duration::from_secs(20), "PLEGUnhealthy False", || {
        condition_is(&api, "PLEGUnhealthy", "False", "PLEGHealthy")
    });

    let pleg = r#"E1122 10:00:00.000000    4242 kubelet.go:2359] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m5.5s ago; threshold is 3m0s""#;
    let _second = JournalLines::write_under(
        &host,
        &[
            ("kubelet.service", pleg, 3),
            ("kubelet.service", pleg, 2),
            ("kubelet.service", pleg, 1),
        ],
    );
    wait_for(Duration::from_secs(30), "PLEGUnhealthy True", || {
        condition_is(&api, "PLEGUnhealthy", "True", "PLEGNotHealthy")
    });
    // Ticks later, the same three lines: read once, not again at every collection.
    std::thread::sleep(Duration::from_secs(4));
    let findings: Value = serde_json::from_str(&http_get(port, "/findings").unwrap()).unwrap();
    let p = findings_of(&findings, "pleg-unhealthy");
    assert_eq!(p.len(), 1, "{findings:#}");
    assert_eq!(
        measure(p[0], "pleg_unhealthy_lines"),
        Some(3.0),
        "{:#}",
        p[0]
    );
    assert!(
        p[0]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"]
                .as_str()
                .unwrap()
                .starts_with("journal:kubelet.service")),
        "{:#}",
        p[0]
    );
    assert_eq!(agent.terminate(), Some(0));
    drop(binds);
    assert!(mounts_below(dir.path()).is_empty());
}

/// Guards two gaps of the agent at its default cadence (10 s ticks, no check due before
/// 30 s): NPD-named conditions were judged only at ticks where a check ran, and counted only
/// lines of the last tick, so a hung-task line logged between two check runs never set
/// `KernelDeadlock`; and `oom-kills` saw no kernel lines at all (the agent follows kmsg with
/// its log monitor and does not read the ring into samples), so a real OOM kill was never
/// named. Now the log conditions are judged at every tick, and the monitor keeps the kmsg
/// lines `oom-kills` and `coredump-storm` read for them.
#[test]
fn at_the_default_cadence_a_deadlock_line_sets_its_condition_and_a_real_oom_kill_is_named() {
    assert_root();
    let _g = serialize();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("[logs]\nsources = [\"kmsg\", \"file:{}\"]\n", log.display()),
    )
    .unwrap();
    let api = FakeApiServer::start("n1");
    let port = free_port();
    let mut agent = start_agent_with(&api, dir.path(), port, std::path::Path::new("/"), &config);
    wait_for(Duration::from_secs(30), "KernelDeadlock False", || {
        condition_is(&api, "KernelDeadlock", "False", "KernelHasNoDeadlock")
    });
    // Between two check runs (the first ran at start; the next is 30 s later).
    let line = "Dec  2 01:00:00 node1 kernel: [ 4242.000000] INFO: task dockerd:4321 blocked for more than 120 seconds.\n";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    wait_for(Duration::from_secs(20), "KernelDeadlock True", || {
        condition_is(&api, "KernelDeadlock", "True", "DockerHung")
    });

    // A real OOM kill at a container's own limit: named by the agent's oom-kills.
    let (rel, _pod, id) = container_shaped("agentoom");
    let mut cg = make_cgroup(std::path::Path::new("/sys/fs/cgroup/memory"), &rel);
    let leaf = cg.leaf().to_path_buf();
    let pid = oom_kill_in(&mut cg, &leaf, 32 << 20);
    let mut seen = Value::Null;
    wait_for(
        Duration::from_secs(45),
        "oom-kills names the victim",
        || {
            let Some(body) = http_get(port, "/findings") else {
                return false;
            };
            let Ok(doc) = serde_json::from_str::<Value>(&body) else {
                return false;
            };
            let found = !findings_about(&doc, "oom-kills", "pid", &Value::from(pid)).is_empty();
            seen = doc;
            found
        },
    );
    let f = findings_about(&seen, "oom-kills", "pid", &Value::from(pid))[0].clone();
    assert_eq!(f["key"], format!("oom-kills/container:{id}"), "{f:#}");
    assert_eq!(agent.terminate(), Some(0), "exits cleanly on SIGTERM");
}
