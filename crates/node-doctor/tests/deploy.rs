//! The manifests in deploy/ say what issue 11 and docs/agent.md promise: the pod's
//! privileges (no more, no less), the RBAC verbs the agent uses, a config the agent accepts,
//! alert rules that only name metrics the agent exports, and the PrometheusRule carrying
//! exactly the plain rule file's groups (which `promtool test rules` tests in the live tier).

mod common;

use node_doctor_agent::settings::AgentSettings;
use node_doctor_core::config::{Config, Format};
use node_doctor_core::model::log::Source;
use serde_json::{Value, json};
use std::path::PathBuf;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn docs(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn doc(file: &str, kind: &str) -> Value {
    docs(file)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("{file} has no {kind}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn the_prometheusrule_carries_exactly_the_tested_rule_groups() {
    let plain = docs("alerts.rules.yaml").remove(0);
    let operator = doc("prometheusrule.yaml", "PrometheusRule");
    assert_eq!(operator["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(operator["spec"]["groups"], plain["groups"]);
}

#[test]
fn alerts_name_only_metrics_the_agent_exports() {
    // A family shows only once it has a series: exercise each once, as the agent does.
    let m = node_doctor_agent::metrics::Metrics::new("0", "x");
    m.check_run("zombie-processes", &[], false, 1.0, 1);
    m.log_source("kmsg", true, 1);
    m.log_match("kmsg", "oom-kill", 1);
    m.publish("conditions", "ok", 1);
    m.events(0, 1);
    let exported = m.encode();
    let families: Vec<&str> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let rules = docs("alerts.rules.yaml").remove(0);
    let re = regex::Regex::new(r"node_doctor_[a-z_]+").unwrap();
    let mut named = 0;
    for rule in rules["groups"][0]["rules"].as_array().unwrap() {
        let expr = rule["expr"].as_str().unwrap();
        for m in re.find_iter(expr) {
            named += 1;
            // A counter's family is exported as `x` with samples `x_total`.
            let name = m.as_str();
            let family = name.strip_suffix("_total").unwrap_or(name);
            assert!(
                families.contains(&family) || families.contains(&name),
                "{}: {name} is not exported (families: {families:?})",
                rule["alert"]
            );
        }
    }
    assert!(named >= 6, "the alerts name the agent's metrics");
    let alerts: Vec<&str> = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    // The meta-alerts issue 11 asks for: publish stale, log source down, check unknown.
    for meta in [
        "NodeDoctorPublishStale",
        "NodeDoctorLogSourceDown",
        "NodeDoctorCheckUnknown",
    ] {
        assert!(alerts.contains(&meta), "{meta} in {alerts:?}");
    }
}

#[test]
fn the_daemonset_has_the_privileges_it_needs_and_no_more() {
    let ds = doc("daemonset.yaml", "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["tolerations"], json!([{"operator": "Exists"}]));
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(pod.get("hostNetwork").is_none(), "no host network");
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert!(sc.get("privileged").is_none_or(|p| p == false));
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    let mut add = strings(&sc["capabilities"]["add"]);
    add.sort_unstable();
    assert_eq!(add, ["DAC_READ_SEARCH", "SYSLOG", "SYS_PTRACE"]);
    let res = &c["resources"];
    assert_eq!(res["requests"], json!({"cpu": "10m", "memory": "40Mi"}));
    assert_eq!(res["limits"], json!({"memory": "128Mi"}), "no CPU limit");
    // The downward API names the node and the pod.
    for (var, field) in [
        ("NODE_NAME", "spec.nodeName"),
        ("POD_NAME", "metadata.name"),
    ] {
        let env = c["env"].as_array().unwrap();
        let e = env.iter().find(|e| e["name"] == var).unwrap();
        assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], field);
    }
    // The host's / read-only at /host, recursively where the runtime can.
    let host_mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/host")
        .unwrap();
    assert_eq!(host_mount["readOnly"], true);
    assert_eq!(host_mount["recursiveReadOnly"], "IfPossible");
    let host_vol = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == host_mount["name"])
        .unwrap();
    assert_eq!(host_vol["hostPath"]["path"], "/");
    // The probes hit the agent's own endpoints, on the port it listens on.
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
}

#[test]
fn the_daemonsets_arguments_are_flags_the_agent_takes() {
    let ds = doc("daemonset.yaml", "DaemonSet");
    let args = strings(&ds["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert_eq!(args.first(), Some(&"agent"));
    let help = common::node_doctor()
        .args(["agent", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in args.iter().skip(1) {
        let flag = arg.split('=').next().unwrap();
        assert!(flag.starts_with("--"), "{arg}");
        assert!(help.contains(flag), "`agent --help` has no {flag}");
    }
}

#[test]
fn the_configmaps_settings_are_accepted_by_the_agent() {
    let cm = doc("configmap.yaml", "ConfigMap");
    let text = cm["data"]["node-doctor.toml"].as_str().unwrap();
    let cfg = Config::parse("node-doctor.toml", text, Format::Toml).unwrap();
    let settings = AgentSettings::from_config(&cfg).unwrap();
    assert!(!settings.logs.sources.is_empty());
    for s in &settings.logs.sources {
        Source::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    // The daemonset mounts the ConfigMap where --config points.
    let ds = doc("daemonset.yaml", "DaemonSet");
    let args = strings(&ds["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(args.contains(&"--config=/etc/node-doctor/node-doctor.toml"));
}

#[test]
fn rbac_grants_exactly_what_the_agent_calls() {
    let role = doc("rbac.yaml", "ClusterRole");
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
        ])
    );
    // Events of a cluster-scoped Node go to "default", where the agent posts them.
    let events = doc("rbac.yaml", "Role");
    assert_eq!(events["metadata"]["namespace"], "default");
    assert_eq!(
        events["rules"],
        json!([{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}])
    );
    let ns = doc("namespace.yaml", "Namespace");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
}

/// docs/conditions.md is the remediation tools' contract: every type the agent can write,
/// with the reasons it writes, must be there.
#[test]
fn docs_conditions_names_every_type_and_reason_the_agent_writes() {
    use node_doctor_agent::catalog::{self, Owner};
    let doc = std::fs::read_to_string(deploy_dir().join("../docs/conditions.md")).unwrap();
    let checks: Vec<&'static node_doctor_core::checks::CheckDef> =
        node_doctor_core::checks::all().iter().collect();
    let rules = node_doctor_core::rules::pack::default_rules();
    let types = catalog::types(&checks, &rules, 3);
    assert!(types.len() >= 20, "{} types", types.len());
    for c in &checks {
        let Some(d) = c.condition else { continue };
        let row = format!(
            "| `{}` | `{}` | `{}` | `{}` |",
            d.type_, c.id, d.true_reason, d.false_reason
        );
        assert!(doc.contains(&row), "docs/conditions.md lacks the row {row}");
    }
    for t in types.iter().filter(|t| t.owner == Owner::Npd) {
        let line = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", t.type_)))
            .unwrap_or_else(|| panic!("docs/conditions.md lacks {}", t.type_));
        let clear = catalog::npd_clear_reason(&t.type_);
        assert!(line.contains(&format!("`{clear}`")), "{line}: {clear}");
        for r in rules
            .iter()
            .filter(|r| r.condition.as_deref() == Some(t.type_.as_str()))
        {
            assert!(
                line.contains(&format!("`{}`", r.reason)),
                "{line}: the True reason {}",
                r.reason
            );
        }
    }
}

#[test]
fn docs_agent_metrics_table_is_what_the_agent_exports() {
    use node_doctor_core::model::{Kind, Snapshot, Unavailable};
    // Every family, exercised once as the agent does.
    let m = node_doctor_agent::metrics::Metrics::new("0", "x");
    m.check_run("zombie-processes", &[], false, 1.0, 1);
    let mut s = Snapshot {
        loadavg: Some(node_doctor_core::model::LoadAverage {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
            cur: 1,
            max: 100,
            latest_pid: 1,
        }),
        ..Snapshot::default()
    };
    s.timings.insert("processes".into(), 3.0);
    s.timings.insert("mounts".into(), 1.0);
    s.incomplete_collectors.push("mounts".into());
    s.incomplete_collectors.push("kubelet".into());
    s.unavailable
        .push(Unavailable::new("proc/1/stat", Kind::Timeout, "timed out"));
    m.sample(&s);
    m.log_source("kmsg", true, 1);
    m.log_match("kmsg", "oom-kill", 1);
    m.publish("conditions", "ok", 1);
    m.events(0, 1);
    m.condition("ZombieProcesses", "False");
    m.history(1);
    let exported = m.encode();

    // What the encoder says: family -> (type, label names).
    let mut families: std::collections::BTreeMap<
        String,
        (String, std::collections::BTreeSet<String>),
    > = Default::default();
    for line in exported.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let mut w = t.split_whitespace();
            let (name, ty) = (w.next().unwrap(), w.next().unwrap());
            families.insert(name.to_string(), (ty.to_string(), Default::default()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = families
                .keys()
                .find(|f| name == f.as_str())
                .cloned()
                .unwrap_or_else(|| panic!("{name}: no family"));
            if let Some(labels) = line.split_once('{').and_then(|(_, r)| r.split_once('}')) {
                for kv in labels.0.split(',') {
                    let k = kv.split('=').next().unwrap().to_string();
                    families.get_mut(&family).unwrap().1.insert(k);
                }
            }
        }
    }

    // What docs/agent.md says.
    let doc = std::fs::read_to_string(deploy_dir().join("../docs/agent.md")).unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for row in doc.lines().filter(|l| l.starts_with("| `node_doctor_")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        let ty = cells[2];
        let labels: std::collections::BTreeSet<String> = cells[3]
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        // Text format 0.0.4 names a counter's family with its `_total`, as the docs do.
        assert!(
            ty != "counter" || name.ends_with("_total"),
            "{name}: a counter ends in _total"
        );
        let family = name;
        let (have_ty, have_labels) = families
            .get(family)
            .unwrap_or_else(|| panic!("docs/agent.md names {name}, which is not exported"));
        assert_eq!(have_ty, ty, "{name}: type");
        assert_eq!(have_labels, &labels, "{name}: labels");
        documented.insert(family.to_string());
    }
    let exported: std::collections::BTreeSet<String> = families.keys().cloned().collect();
    assert_eq!(
        documented, exported,
        "docs/agent.md's metrics table and the exported families"
    );
    // A collector that did not read everything is 0; one that did, 1.
    assert!(
        m.encode()
            .contains("node_doctor_collector_success{collector=\"kubelet\"} 0")
    );
    assert!(
        m.encode()
            .contains("node_doctor_collector_success{collector=\"mounts\"} 0")
    );
    assert!(
        m.encode()
            .contains("node_doctor_collector_success{collector=\"processes\"} 1")
    );
}
