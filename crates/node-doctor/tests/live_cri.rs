//! The container runtime over the CRI, live: Debian's containerd on a private socket with
//! its CRI plugin, pods and containers created over CRI the way a kubelet does (sandbox
//! image imported locally, kubelet's log layout under /var/log/pods), a kubelet-shaped
//! process naming the socket.
//!
//! - A fault in a pod (zombies under the container's init) is named with namespace, pod and
//!   container; with containerd killed, /var/log/pods still names them and runtime-health
//!   says the CRI is unreachable.
//! - A real image pull from a local registry (Debian's docker-registry on loopback) through a
//!   throttling proxy: the slow pull is seen in progress, named, and the pod waiting behind
//!   it too.
//!
//! Root, packages (scripts/deps.sh): `--features live`.
#![cfg(feature = "live")]

mod common;
#[path = "common/containerd.rs"]
mod containerd;
#[path = "common/cri.rs"]
mod cri;
#[path = "common/kubelet.rs"]
mod kubelet;

use common::faults::*;
use common::*;
use containerd::{BUSYBOX, Containerd, helper};
use cri::{Cri, PodLogs, PodSpec, pull_in_background, top_cgroup};
use kubelet::FakeKubelet;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn endpoint_flag(c: &Containerd) -> String {
    format!(
        "--container-runtime-endpoint=unix://{}",
        c.socket().display()
    )
}

/// The pid of the process of container `id` whose parent is its shim (its init).
fn container_init(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let comm = stat.split('(').nth(1)?.split(')').next()?;
        (cg.contains(id) && comm == "sleep" && proc_state(pid) != Some('Z')).then_some(pid)
    })
}

fn zombies_of(ppid: i32) -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                        let rest = s.rsplit(')').next().unwrap_or("");
                        let f: Vec<&str> = rest.split_whitespace().collect();
                        f.first() == Some(&"Z") && f.get(1) == Some(&ppid.to_string().as_str())
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

fn named_container<'a>(f: &'a Value, id: &str) -> &'a Value {
    f["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "container" && s["container_id"] == id)
        .unwrap_or_else(|| panic!("no container subject for {id}: {f:#}"))
}

#[test]
fn a_fault_in_a_cri_pod_names_its_pod_and_container_also_with_the_cri_down() {
    assert_root();
    let _g = serialize();
    let mut c = Containerd::start();
    c.import_busybox();
    let tag = "crinames";
    c.own_cgroup(&top_cgroup(tag));
    let (_, uid, _) = container_shaped(tag);
    let pod = PodSpec::new(tag, "shop", "cart-7d9f4c-x2x8p", &uid);
    let mut logs = PodLogs::new();
    logs.own(&pod);
    let _k = FakeKubelet::start("kind: KubeletConfiguration\n", &[&endpoint_flag(&c)]);
    let mut cri = Cri::connect(&c.socket());
    let sandbox = cri.run_sandbox(&pod);
    // The container's init forks 25 children and execs a sleep that never reaps them.
    let id = cri.start_container(
        &sandbox,
        &pod,
        "cart",
        BUSYBOX,
        &[
            "/bin/sh",
            "-c",
            "for i in $(seq 25); do sleep 0 & done; exec sleep 1000",
        ],
    );
    let mut init = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            init = container_init(&id);
            init.is_some_and(|p| zombies_of(p) >= 25)
        }),
        "the container's init holds 25 zombies: {}",
        c.log()
    );
    let init = init.unwrap();

    let (_, doc) = check_json(&[
        "--only",
        "zombie-processes",
        "--only",
        "runtime-health",
        "--window",
        "0",
    ]);
    let z = findings_naming(&doc, "zombie-processes", init);
    assert_eq!(z.len(), 1, "{doc:#}");
    let s = named_container(z[0], &id);
    assert_eq!(s["namespace"], "shop");
    assert_eq!(s["pod_name"], "cart-7d9f4c-x2x8p");
    assert_eq!(s["container_name"], "cart");
    assert_eq!(s["pod"], uid.as_str());
    let parent = &z[0]["subjects"][0];
    assert_eq!(parent["pid"], init);
    assert_eq!(
        parent["container_name"], "cart",
        "the process subject is named too"
    );
    // The CRI answered: no call problem (the CNI is not configured: NetworkReady false is
    // a warning of its own).
    let rh = findings_of(&doc, "runtime-health");
    assert!(
        rh.iter()
            .all(|f| !f["key"].as_str().unwrap().ends_with(":calls")),
        "{doc:#}"
    );
    assert!(
        rh.iter()
            .any(|f| f["key"].as_str().unwrap().ends_with(":NetworkReady")),
        "{doc:#}"
    );

    // containerd dies (its shims and the container keep running): the names come from the
    // kubelet's log directories, and the CRI is reported unreachable.
    c.kill_daemon();
    let (_, doc) = check_json(&[
        "--only",
        "zombie-processes",
        "--only",
        "runtime-health",
        "--window",
        "0",
    ]);
    let z = findings_naming(&doc, "zombie-processes", init);
    assert_eq!(z.len(), 1, "{doc:#}");
    let s = named_container(z[0], &id);
    assert_eq!(s["namespace"], "shop", "{s:#}");
    assert_eq!(s["pod_name"], "cart-7d9f4c-x2x8p");
    assert_eq!(s["container_name"], "cart");
    let calls = findings_of(&doc, "runtime-health")
        .into_iter()
        .find(|f| f["key"].as_str().unwrap().ends_with(":calls"))
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(calls["severity"], "critical");
    assert!(
        calls["summary"]
            .as_str()
            .unwrap()
            .contains("does not answer"),
        "{calls:#}"
    );
    c.restart_daemon();
    cri = Cri::connect(&c.socket());
    cri.remove_sandbox(&sandbox);
}

/// docker-registry serving on loopback from a temp dir; killed on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/deps.sh)");
        let r = Registry {
            child,
            port,
            _dir: dir,
        };
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "the registry listens"
        );
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy on loopback that passes requests through and answers at `rate` bytes per
/// second: a slow registry. Stops (closing every connection) on drop.
struct Throttle {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Throttle {
    /// Listens on `port` (0: any free one), forwards to `upstream`.
    fn start_on(port: u16, upstream: u16, rate: usize) -> Throttle {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the proxy's port is free");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (stop2, conns2) = (stop.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                {
                    let mut c = conns2.lock().unwrap();
                    c.push(client.try_clone().unwrap());
                    c.push(up.try_clone().unwrap());
                }
                let (mut c_in, mut u_out) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut u_out);
                    let _ = u_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut u_in, mut c_out) = (up, client);
                let stop3 = stop2.clone();
                std::thread::spawn(move || {
                    let chunk = (rate / 10).max(1024);
                    let mut buf = vec![0u8; chunk];
                    while !stop3.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let n = match u_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        let due = Duration::from_secs_f64(n as f64 / rate as f64);
                        if let Some(rest) = due.checked_sub(t.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Throttle {
            stop,
            conns,
            accept: Some(accept),
        }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for c in self.conns.lock().unwrap().iter() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn ingest_bytes(c: &Containerd) -> u64 {
    let dir = c
        .dir
        .path()
        .join("root/io.containerd.content.v1.content/ingest");
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_slow_pull_from_a_local_registry_is_named_with_the_pod_waiting_behind_it() {
    assert_root();
    let _g = serialize();
    let registry = Registry::start();
    let st = Command::new(python3())
        .arg(helper("oci_image.py"))
        .args([
            "push",
            &format!("127.0.0.1:{}", registry.port),
            "nd/big",
            "1",
            "12",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "pushed the 12 MiB image");
    // Declared before the proxy: dropped after it (the pull fails fast once the proxy
    // closes its connections).
    let proxy_port = free_port();
    let mirror = format!(
        "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"127.0.0.1:{proxy_port}\"]\n    endpoint = [\"http://127.0.0.1:{proxy_port}\"]\n"
    );
    let mut c = Containerd::start_with("", &mirror);
    c.import_busybox();
    let tag = "slowpull";
    c.own_cgroup(&top_cgroup(tag));
    let mut logs = PodLogs::new();
    let (_, uid_a, _) = container_shaped("pulla");
    let (_, uid_b, _) = container_shaped("pullb");
    let big = PodSpec::new(tag, "shop", "web-big", &uid_a);
    let small = PodSpec::new(tag, "shop", "web-small", &uid_b);
    logs.own(&big);
    logs.own(&small);
    let _k = FakeKubelet::start("kind: KubeletConfiguration\n", &[&endpoint_flag(&c)]);
    let mut cri = Cri::connect(&c.socket());
    let _sb_big = cri.run_sandbox(&big);
    let _sb_small = cri.run_sandbox(&small);
    // The slow registry, on the port the mirror names: 96 KiB/s, so the 12 MiB layer takes
    // about two minutes.
    let throttle = Throttle::start_on(proxy_port, registry.port, 96 * 1024);
    let image = format!("127.0.0.1:{proxy_port}/nd/big:1");
    let _pull = pull_in_background(&c.socket(), &image, &big);
    // The layer's first MiB: containerd copies into an ingest's `data` through a 1 MiB
    // buffer (content.Copy), so at 96 KiB/s the layer's file stays empty for some 11 s.
    // Waiting for any bytes could see only the small manifest's and config's ingests, and a
    // check then saw a layer with nothing written (pull_rate 0: the flaky run).
    assert!(
        wait_until(Duration::from_secs(60), || ingest_bytes(&c) >= 1 << 20),
        "the pull downloaded its first MiB: {}",
        c.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    let (code, doc) = check_json(&[
        "--only",
        "image-pull-serialized",
        "--window",
        "2s",
        "--set",
        "image-pull-serialized.threshold=3s",
    ]);
    let snap = node_doctor()
        .args([
            "snapshot",
            "--only",
            "image-pull-serialized",
            "--window",
            "0",
            "-o",
            "-",
        ])
        .output()
        .unwrap();
    let snap: Value = serde_json::from_slice(&snap.stdout).unwrap_or_default();
    let s0 = &snap["samples"][0];
    drop(throttle);
    assert_eq!(
        code, 1,
        "{:#}\n{:#}\n{:#}\n{:#}",
        doc["findings"], s0["runtime"], s0["workloads"], s0["daemon_logs"]
    );
    let f = findings_of(&doc, "image-pull-serialized");
    assert_eq!(f.len(), 1, "{doc:#}");
    let f = f[0];
    assert_eq!(f["key"], format!("image-pull-serialized/image:{image}"));
    assert_eq!(f["severity"], "warning");
    assert_eq!(measure(f, "waiting_pods"), Some(1.0));
    assert_eq!(measure(f, "serialized"), Some(1.0));
    let rate = measure(f, "pull_rate").expect("a rate from the ingests");
    assert!(
        rate > 0.0 && rate < 400.0 * 1024.0,
        "about 96 KiB/s: {rate}"
    );
    assert!(f["summary"].as_str().unwrap().contains(&image), "{f:#}");
    let pods: Vec<&str> = f["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["pod_name"].as_str())
        .collect();
    assert!(pods.contains(&"web-small"), "{f:#}");
    let ev = f["evidence"].to_string();
    assert!(ev.contains("PullImage") || ev.contains("pull of"), "{ev}");
    assert!(ev.contains("ingest"), "{ev}");
}
