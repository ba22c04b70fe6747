//! `node-doctor sysctl explain` and `lint` through the binary: typed JSON against the
//! kubelet's safe-list history and the kernel facts (the knowledge's own unit tests pin the
//! data; these pin the command line: defaults from the node, flags, exit codes).

mod common;
use common::*;
use serde_json::Value;
use std::io::Write;

fn explain(args: &[&str]) -> Value {
    let out = node_doctor()
        .args(["sysctl", "explain", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "node-doctor.sysctl-explain/v1");
    doc
}

#[test]
fn explain_judges_for_the_flags_release_and_kernel() {
    let doc = explain(&[
        "kernel.pid_max",
        "vm.max_map_count",
        "net.ipv4.tcp_rmem",
        "--kernel-version",
        "6.13",
        "--kubernetes-version",
        "v1.31.4",
    ]);
    assert_eq!(doc["kernel"]["version"], "6.13");
    assert_eq!(doc["kubernetes"]["source"], "--kubernetes-version");
    let s = &doc["sysctls"];
    assert_eq!(s[0]["namespace"], "global", "kernel.pid_max before 6.14");
    assert_eq!(s[0]["family"], "pid");
    assert_eq!(s[0]["runc"]["allowed"], false);
    assert_eq!(s[1]["namespace"], "global");
    assert_eq!(s[1]["kubelet"]["admission"], "forbidden");
    assert_eq!(s[1]["kubelet"]["allowed_unsafe_accepted"], false);
    assert_eq!(s[2]["namespace"], "net");
    assert_eq!(s[2]["child_netns"], "writable");
    assert_eq!(s[2]["kubelet"]["admission"], "needs-allowed-unsafe");
    assert_eq!(s[2]["kubelet"]["safe"]["since"], "1.32");
    assert_eq!(
        s[2]["kubelet"]["safe"]["pr"],
        "kubernetes/kubernetes#127489"
    );
    assert_eq!(s[2]["kubelet"]["safe"]["in_release"], false);
}

#[test]
fn the_safe_list_history_through_the_command_line() {
    // (release, sysctl, admitted as safe)
    let cases = [
        ("1.17", "net.ipv4.ping_group_range", false),
        ("1.18", "net.ipv4.ping_group_range", true),
        ("1.21", "net.ipv4.ip_unprivileged_port_start", false),
        ("1.22", "net.ipv4.ip_unprivileged_port_start", true),
        ("1.26", "net.ipv4.ip_local_reserved_ports", false),
        ("1.27", "net.ipv4.ip_local_reserved_ports", true),
        ("1.28", "net.ipv4.tcp_keepalive_time", false),
        ("1.29", "net.ipv4.tcp_fin_timeout", true),
        ("1.36", "net.ipv4.tcp_notsent_lowat", false),
        ("1.37", "net.ipv4.tcp_slow_start_after_idle", true),
        ("1.4", "kernel.shm_rmid_forced", true),
    ];
    for (release, name, safe) in cases {
        let doc = explain(&[
            name,
            "--kernel-version",
            "6.18",
            "--kubernetes-version",
            release,
        ]);
        let k = &doc["sysctls"][0]["kubelet"];
        assert_eq!(k["admission"] == "safe", safe, "{name} in {release}: {k:#}");
    }
    // The kernel gate: tcp_keepalive_time needs 4.5; on 4.4 the kubelet drops it.
    let doc = explain(&[
        "net.ipv4.tcp_keepalive_time",
        "--kernel-version",
        "4.4",
        "--kubernetes-version",
        "1.30",
    ]);
    let e = &doc["sysctls"][0];
    assert_eq!(e["kubelet"]["safe"]["kernel"], "4.5");
    assert_eq!(e["kubelet"]["safe"]["kernel_ok"], false);
    assert_eq!(e["kubelet"]["admission"], "needs-allowed-unsafe");
    assert_eq!(e["namespace"], "global");
    assert_eq!(e["child_netns"], "absent");
}

#[test]
fn explain_defaults_to_the_nodes_kernel_and_says_the_kubelet_is_unknown() {
    let root = fixture("healthy");
    let doc = explain(&["net/core/somaxconn", "--root", root.to_str().unwrap()]);
    assert_eq!(doc["kernel"]["version"], "6.18.44");
    assert!(
        doc["kernel"]["source"]
            .as_str()
            .unwrap()
            .contains("6.18.44-fc-v657")
    );
    assert!(doc["kubernetes"].get("version").is_none());
    let e = &doc["sysctls"][0];
    assert_eq!(e["name"], "net.core.somaxconn");
    assert_eq!(e["present_on_node"], true);
    assert!(e["kubelet"].get("admission").is_none());
    // A name the tree lacks.
    let doc = explain(&[
        "net.netfilter.nf_conntrack_max",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(doc["sysctls"][0]["present_on_node"], false);
    // Human output names what it judged.
    let out = node_doctor()
        .args([
            "sysctl",
            "explain",
            "vm.swappiness",
            "--kernel-version",
            "6.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("global: one value for the node on kernel 6.1"),
        "{text}"
    );
    assert!(
        text.contains("not in a separate kernel namespace"),
        "{text}"
    );
}

const KUBELET: &str = "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
allowedUnsafeSysctls: [net.core.somaxconn]
";

const ES: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: elasticsearch-master}
spec:
  template:
    spec:
      securityContext:
        sysctls: [{name: net.core.somaxconn, value: '1024'}]
      initContainers:
        - name: configure-sysctl
          securityContext: {runAsUser: 0, privileged: true}
          command: [sysctl, -w, vm.max_map_count=262144]
      containers: [{name: es, image: es}]
";

fn lint(args: &[&str], stdin: Option<&str>) -> (i32, Value) {
    let mut cmd = node_doctor();
    cmd.args([
        "sysctl",
        "lint",
        "--format",
        "json",
        "--kernel-version",
        "6.18",
    ])
    .args(args);
    if let Some(s) = stdin {
        cmd.write_stdin(s.to_string());
    }
    let out = cmd.output().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn lint_judges_files_together_and_exits_as_check() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = dir.path().join("kubelet.yaml");
    let es = dir.path().join("es.yaml");
    std::fs::write(&kubelet, KUBELET).unwrap();
    std::fs::write(&es, ES).unwrap();
    // Alone: the pod's somaxconn is forbidden (not allowed anywhere), the init container
    // changes a global sysctl.
    let (code, doc) = lint(
        &[es.to_str().unwrap(), "--kubernetes-version", "1.29"],
        None,
    );
    assert_eq!(code, 1);
    assert_eq!(doc["schema"], "node-doctor.sysctl-lint/v1");
    let codes: Vec<(&str, &str)> = doc["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sysctl"].as_str().unwrap(), i["code"].as_str().unwrap()))
        .collect();
    assert!(
        codes.contains(&("net.core.somaxconn", "sysctl-forbidden")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("vm.max_map_count", "privileged-global-write")),
        "{codes:?}"
    );
    let w = doc["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "privileged-global-write")
        .unwrap();
    assert_eq!(w["container"], "configure-sysctl");
    assert_eq!(w["name"], "elasticsearch-master");
    // With the kubelet's config in the set, somaxconn is allowed (still unsafe-allowed on
    // the config itself); --fail-on critical: only warnings, exit 0.
    let (code, doc) = lint(
        &[
            kubelet.to_str().unwrap(),
            es.to_str().unwrap(),
            "--kubernetes-version",
            "1.29",
            "--fail-on",
            "critical",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(doc["kubelet_configs"], 1);
    assert!(
        !doc["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "sysctl-forbidden")
    );
    // Standard input, multi-document.
    let both = format!("{KUBELET}---\n{ES}");
    let (code, doc) = lint(&["-", "--kubernetes-version", "1.29"], Some(&both));
    assert_eq!(code, 1);
    assert_eq!(doc["documents"], 2);
    // A clean pod: exit 0, no issues.
    let (code, doc) = lint(
        &["-", "--kubernetes-version", "1.29"],
        Some(
            "kind: Pod\nmetadata: {name: ok}\nspec:\n  securityContext:\n    sysctls: [{name: net.ipv4.tcp_keepalive_time, value: '60'}]\n  containers: []\n",
        ),
    );
    assert_eq!((code, doc["issues"].as_array().unwrap().len()), (0, 0));
}

#[test]
fn lint_fails_clearly_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let mut f = std::fs::File::create(&bad).unwrap();
    f.write_all(b"a: [unclosed\n").unwrap();
    let out = node_doctor()
        .args(["sysctl", "lint", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml: not YAML"));
    let out = node_doctor()
        .args([
            "sysctl",
            "lint",
            dir.path().join("missing.yaml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = node_doctor()
        .args([
            "sysctl",
            "explain",
            "vm.swappiness",
            "--kubernetes-version",
            "soon",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
