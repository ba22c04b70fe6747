//! The sysctl knowledge checked on this machine's kernel (root): namespaced names written in
//! a fresh `unshare` namespace leave the host's value alone; global ones written there
//! change it (restored at once by a guard, under `serialize()`); global `net.*` entries are
//! absent in a new network namespace and rmem/wmem are read-only there. And `sysctl-drift`
//! on a drift made "from a pod" (a write from such a namespace).
#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use node_doctor_core::knowledge::Version;
use node_doctor_core::knowledge::sysctl::{ChildNetns, Namespace, knowledge};
use std::process::Command;

fn kernel() -> Version {
    Version::parse(&std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap()).unwrap()
}

fn host_value(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/")))
        .unwrap()
        .trim()
        .to_string()
}

/// Writes `value` to `name` inside new net, ipc, uts, mount and pid namespaces (with their
/// own /proc) and returns what the namespace reads back.
fn write_in_fresh_namespaces(name: &str, value: &str) -> String {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let out = Command::new("unshare")
        .args([
            "-n",
            "-i",
            "-u",
            "-m",
            "-p",
            "-f",
            "--mount-proc",
            "sh",
            "-c",
        ])
        .arg(format!("echo '{value}' > {path} && cat {path}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn same(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

#[test]
fn namespaced_sysctls_written_in_a_fresh_namespace_leave_the_host_alone() {
    assert_root();
    let k = knowledge().unwrap();
    let kernel = kernel();
    let mut samples = vec![
        ("net.ipv4.ip_local_port_range", "20000 40000"),
        ("net.core.somaxconn", "1234"),
        ("net.ipv4.tcp_keepalive_time", "1111"),
        ("net.ipv4.ip_unprivileged_port_start", "80"),
        ("kernel.shmmax", "123456789"),
        ("kernel.msgmax", "12345"),
        ("kernel.sem", "250 32000 32 129"),
        ("fs.mqueue.msg_max", "20"),
        ("kernel.hostname", "nd-sysctl-test"),
    ];
    if kernel >= Version(6, 14, 0) {
        samples.push(("kernel.pid_max", "50000"));
    }
    for (name, value) in samples {
        let ns = k.namespacing(name, Some(kernel));
        assert_ne!(
            ns.namespace,
            Namespace::Global,
            "{name}: the data says namespaced"
        );
        let before = host_value(name);
        assert!(
            !same(&before, value),
            "{name}: pick a value the host does not have"
        );
        let inside = write_in_fresh_namespaces(name, value);
        assert!(
            same(&inside, value),
            "{name}: the namespace has its own copy: {inside:?}"
        );
        assert_eq!(
            host_value(name),
            before,
            "{name}: the host's value is untouched"
        );
    }
}

#[test]
fn global_sysctls_written_in_a_fresh_namespace_change_the_host() {
    assert_root();
    let _g = serialize();
    let k = knowledge().unwrap();
    let kernel = kernel();
    for name in [
        "vm.swappiness",
        "fs.inotify.max_user_instances",
        "kernel.threads-max",
    ] {
        assert_eq!(
            k.namespacing(name, Some(kernel)).namespace,
            Namespace::Global,
            "{name}"
        );
        let before = host_value(name);
        // Restores `before` on drop, also if an assertion fails.
        let _restore = SysctlGuard::set(name, &before);
        let n: u64 = before.parse().unwrap();
        let other = if name == "vm.swappiness" {
            (n + 1) % 100
        } else {
            n + 1
        }
        .to_string();
        let inside = write_in_fresh_namespaces(name, &other);
        assert_eq!(inside, other);
        assert_eq!(
            host_value(name),
            other,
            "{name}: the write reached the host"
        );
    }
}

#[test]
fn global_net_entries_are_absent_and_buffers_read_only_in_a_new_netns() {
    assert_root();
    let k = knowledge().unwrap();
    let kernel = kernel();
    // Every global net.* name of the data that this host has: absent in a new netns.
    let present: Vec<String> = [
        "net.core.netdev_max_backlog",
        "net.core.default_qdisc",
        "net.core.bpf_jit_limit",
        "net.ipv4.tcp_mem",
        "net.ipv4.udp_mem",
        "net.ipv4.tcp_max_orphans",
        "net.ipv4.route.gc_timeout",
        "net.core.rmem_max",
        "net.core.wmem_default",
        "net.core.somaxconn",
    ]
    .iter()
    .filter(|n| std::path::Path::new(&format!("/proc/sys/{}", n.replace('.', "/"))).exists())
    .map(|s| s.to_string())
    .collect();
    assert!(present.len() >= 8, "{present:?}");
    let script: String = present
        .iter()
        .map(|n| {
            let p = format!("/proc/sys/{}", n.replace('.', "/"));
            format!("if [ -e {p} ]; then stat -c '{n} %a' {p}; else echo '{n} absent'; fi; ")
        })
        .collect();
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for line in text.lines() {
        let (name, seen) = line.split_once(' ').unwrap();
        let want = match k.child_netns(name, Some(kernel)) {
            Some(ChildNetns::Absent) => "absent",
            Some(ChildNetns::ReadOnly) => "444",
            Some(ChildNetns::Writable) => "644",
            None => "not net",
        };
        assert_eq!(seen, want, "{name} in a new netns");
    }
}

#[test]
fn a_global_sysctl_changed_from_a_namespace_is_drift_against_the_nodes_file() {
    assert_root();
    let _g = serialize();
    // The node's files say vm.swappiness is what it is now; a "pod" (fresh namespaces, as a
    // privileged container would) then changes it.
    let fs = tmpfs_root("etc/sysctl.d", "size=1m");
    let before = host_value("vm.swappiness");
    std::fs::write(
        fs.mount.join("60-node.conf"),
        format!("# the node image\nvm.swappiness = {before}\n"),
    )
    .unwrap();
    let _restore = SysctlGuard::set("vm.swappiness", &before);
    let n: u64 = before.parse().unwrap();
    let other = ((n + 7) % 100).to_string();
    write_in_fresh_namespaces("vm.swappiness", &other);

    let (_, doc) = check_json(&[
        "--root",
        fs.root().to_str().unwrap(),
        "--window",
        "0",
        "--only",
        "sysctl-drift",
    ]);
    let f: Vec<&serde_json::Value> = findings_of(&doc, "sysctl-drift")
        .into_iter()
        .filter(|f| f["key"] == "sysctl-drift/sysctl:vm.swappiness")
        .collect();
    assert_eq!(f.len(), 1, "{doc:#}");
    assert_eq!(f[0]["severity"], "warning");
    assert_eq!(measure(f[0], "value"), Some(other.parse::<f64>().unwrap()));
    assert_eq!(
        measure_limit(f[0], "value"),
        Some(before.parse::<f64>().unwrap())
    );
    assert!(
        f[0]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "/etc/sysctl.d/60-node.conf:2")
    );
}
