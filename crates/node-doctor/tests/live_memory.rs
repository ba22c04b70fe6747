//! Live tests of the memory checks, as root, on this host's cgroup v1 memory controller: a
//! container-shaped memory cgroup thrashing at its limit (and fine once it is lifted), real
//! OOM kills at a container's and at a pod's limit, and 500 memory cgroups left dying by
//! page cache. Each test holds `serialize()`: node PSI and the dying count are host-wide,
//! and this host leaves dying memcgs of its own, so the dying test asserts on a delta.
//! Guards kill the helpers and remove the cgroups, also when an assertion fails.

#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn memory_base() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup/memory")
}

/// Writes a file (argv[2]) larger than the limit, drops it from the page cache (pages stay
/// charged to the cgroup that first read them: evicted, the next read charges them to the
/// cgroup in argv[1]), joins the cgroup, then re-reads the file in a loop: every pass evicts
/// what the next one needs, all refaults.
const THRASHER: &str = r#"
import os, sys
cg, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
chunk = b"x" * (1 << 20)
with open(path, "wb") as f:
    for _ in range(size >> 20):
        f.write(chunk)
    f.flush()
    os.fsync(f.fileno())
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
with open(os.path.join(cg, "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
first = True
while True:
    os.lseek(fd, 0, os.SEEK_SET)
    while os.read(fd, 1 << 20):
        pass
    if first:
        print("ready", flush=True)
        first = False
"#;

fn finding_with_key<'a>(doc: &'a Value, check: &str, key: &str) -> Option<&'a Value> {
    findings_of(doc, check)
        .into_iter()
        .find(|f| f["key"] == key)
}

#[test]
fn a_container_thrashing_at_its_memory_limit_is_named_until_the_limit_is_lifted() {
    assert_root();
    let _g = serialize();
    let (rel, pod, id) = container_shaped("thrash");
    let cg = make_cgroup(&memory_base(), &rel);
    let limit = cg.leaf().join("memory.limit_in_bytes");
    std::fs::write(&limit, (64u64 << 20).to_string()).unwrap();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let file = dir.path().join("working-set");
    let mut helper = Helper::spawn(Command::new(python3()).args([
        "-c",
        THRASHER,
        cg.leaf().to_str().unwrap(),
        file.to_str().unwrap(),
        &(160u64 << 20).to_string(),
    ]));
    helper.expect("ready");

    let key = format!("memory-thrashing/cgroup:v1:/{rel}");
    let (_, doc) = check_json(&["--only", "memory-thrashing", "--window", "2s"]);
    let f = finding_with_key(&doc, "memory-thrashing", &key)
        .unwrap_or_else(|| panic!("no finding {key}: {doc:#}"));
    let s = &f["subjects"][0];
    assert_eq!(s["kind"], "container");
    assert_eq!(s["container_id"], id.as_str());
    assert_eq!(s["pod"], pod.as_str());
    assert_eq!(
        f["subjects"][1]["pid"],
        helper.pid(),
        "the thrashing process"
    );
    assert!(
        measure(f, "refaults_per_sec").is_some_and(|r| r >= 500.0),
        "{f:#}"
    );
    assert!(measure(f, "limit_hits").is_some_and(|n| n > 0.0), "{f:#}");
    assert_eq!(measure_limit(f, "usage_bytes"), Some((64u64 << 20) as f64));

    // Lift the limit: the file fits in the page cache, nothing is re-read from disk.
    std::fs::write(&limit, "-1").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (_, doc) = check_json(&["--only", "memory-thrashing", "--window", "2s"]);
    assert!(
        finding_with_key(&doc, "memory-thrashing", &key).is_none(),
        "{doc:#}"
    );
    drop(helper);
}

/// The oom-kills finding whose victim is `pid`.
fn oom_finding(pid: i64) -> Value {
    let (_, doc) = check_json(&["--only", "oom-kills", "--window", "0"]);
    let found = findings_about(&doc, "oom-kills", "pid", &Value::from(pid));
    assert_eq!(found.len(), 1, "{doc:#}");
    found[0].clone()
}

#[test]
fn an_oom_kill_at_the_containers_own_limit_says_container_limit() {
    assert_root();
    let _g = serialize();
    let (rel, pod, id) = container_shaped("oomc");
    let mut cg = make_cgroup(&memory_base(), &rel);
    let leaf = cg.leaf().to_path_buf();
    let pid = oom_kill_in(&mut cg, &leaf, 32 << 20);

    let f = oom_finding(pid);
    assert_eq!(f["key"], format!("oom-kills/container:{id}"));
    assert_eq!(f["severity"], "warning");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("container's own memory limit"),
        "{f:#}"
    );
    let victim = &f["subjects"][0];
    assert_eq!(victim["pid"], pid);
    assert_eq!(victim["container_id"], id.as_str());
    assert_eq!(victim["pod"], pod.as_str());
    assert_eq!(f["subjects"][1]["kind"], "container");
    assert_eq!(measure(&f, "victim_pid"), Some(pid as f64));
    assert_eq!(measure_limit(&f, "usage_bytes"), Some((32u64 << 20) as f64));
}

#[test]
fn an_oom_kill_at_the_pod_level_limit_says_pod_limit() {
    assert_root();
    let _g = serialize();
    let (rel, pod, id) = container_shaped("oomp");
    let mut cg = make_cgroup(&memory_base(), &rel);
    // The limit on the pod's cgroup, none on the container's: the kernel names the pod.
    let pod_dir = cg.leaf().parent().unwrap().to_path_buf();
    let pid = oom_kill_in(&mut cg, &pod_dir, 32 << 20);

    let f = oom_finding(pid);
    assert_eq!(f["key"], format!("oom-kills/pod:{pod}"));
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("pod's memory limit"),
        "{f:#}"
    );
    let victim = &f["subjects"][0];
    assert_eq!(victim["pid"], pid);
    assert_eq!(victim["container_id"], id.as_str());
    assert_eq!(victim["pod"], pod.as_str());
    assert_eq!(f["subjects"][1]["kind"], "pod");
    assert_eq!(f["subjects"][1]["pod"], pod.as_str());
    // v1 counts the kill in the victim's own cgroup only, not in the pod's.
    assert!(
        f["evidence"].as_array().unwrap().iter().any(|e| {
            e["source"]
                .as_str()
                .is_some_and(|s| s.ends_with(&format!("{id}/memory.oom_control")))
                && e["observed"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("oom_kill 1"))
        }),
        "{f:#}"
    );
}

/// 500 cycles of: a memory cgroup made, joined, a 64 KiB file written (its page cache is
/// charged to the cgroup), left, removed. The files stay, so each cgroup stays dying.
const DYING: &str = r#"
import os, sys
parent, files, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mine = [l.split(":", 2)[2].strip() for l in open("/proc/self/cgroup") if l.split(":")[1] == "memory"][0]
home = os.path.join("/sys/fs/cgroup/memory" + mine, "cgroup.procs")
me = str(os.getpid())
data = b"y" * 65536
for i in range(n):
    d = os.path.join(parent, f"ndz{i}")
    os.mkdir(d)
    with open(os.path.join(d, "cgroup.procs"), "w") as f:
        f.write(me)
    with open(os.path.join(files, f"f{i}"), "wb") as f:
        f.write(data)
    with open(home, "w") as f:
        f.write(me)
    os.rmdir(d)
print("done", flush=True)
"#;

fn snapshot_to(path: &Path) {
    node_doctor()
        .args(["snapshot", "--only", "dying-memcgs", "--window", "0", "-o"])
        .arg(path)
        .assert()
        .success();
}

#[test]
fn five_hundred_memory_cgroups_left_dying_by_page_cache_are_reported_as_growth() {
    assert_root();
    let _g = serialize();
    let (rel, _, _) = container_shaped("dying");
    let parent = make_cgroup(&memory_base(), rel.split('/').next().unwrap());
    let files = tempfile::tempdir_in("/var/tmp").unwrap();
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("a.json"), out.path().join("b.json"));

    snapshot_to(&a);
    let mut churn = Helper::spawn(Command::new(python3()).args([
        "-c",
        DYING,
        parent.leaf().to_str().unwrap(),
        files.path().to_str().unwrap(),
        "500",
    ]));
    churn.expect("done");
    snapshot_to(&b);

    // The two runs' samples as one recording: `check --from` compares them.
    let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let mut rec = read(&a);
    let later = read(&b)["samples"].as_array().unwrap().clone();
    rec["samples"].as_array_mut().unwrap().extend(later);
    let both = out.path().join("both.json");
    std::fs::write(&both, serde_json::to_vec(&rec).unwrap()).unwrap();
    let (_, doc) = check_json(&["--from", both.to_str().unwrap(), "--only", "dying-memcgs"]);
    let f = findings_of(&doc, "dying-memcgs");
    assert_eq!(f.len(), 1, "{doc:#}");
    assert_eq!(f[0]["key"], "dying-memcgs/node");
    assert_ne!(f[0]["severity"], "info");
    // This host makes and frees dying memcgs of its own meanwhile: a delta, with slack.
    let growth = measure(f[0], "dying_growth").unwrap();
    assert!((400.0..=2000.0).contains(&growth), "{growth}: {doc:#}");
    let first = measure(f[0], "dying_memcgs_earliest").unwrap();
    assert_eq!(measure(f[0], "dying_memcgs"), Some(first + growth));
    assert!(measure(f[0], "memory_stat_read_seconds").is_some());
    drop(churn);
    // The files go first: their page cache is what pins the dying cgroups.
    drop(files);
}
