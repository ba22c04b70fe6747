//! Incident 3 made for real on this host (root): `kernel.core_pattern` piped to a handler, a
//! process in a container-shaped cgroup with an unlimited RLIMIT_CORE crashing into it, and a
//! crash over `core_pipe_limit`. Every sysctl is restored by its guard (also when a test
//! fails), under `serialize()`.
#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A python process that fills `MIB` MiB of anonymous memory, says "ready", and on "crash"
/// dereferences NULL (a real SIGSEGV, logged by the kernel as a segfault).
const CRASHER: &str = r#"
import ctypes, sys
buf = bytearray(24 << 20)
for i in range(0, len(buf), 4096):
    buf[i] = 1
print("ready", flush=True)
sys.stdin.readline()
ctypes.string_at(0)
"#;

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .replace('-', "")
}

fn check(root: &Path, only: &str) -> (i32, Value) {
    check_json(&[
        "--root",
        root.to_str().unwrap(),
        "--window",
        "0",
        "--only",
        only,
    ])
}

#[test]
fn a_container_with_unlimited_rlimit_core_is_named_and_its_crash_lands_on_the_host() {
    assert_root();
    let _g = serialize();
    // The "host": the host's /proc, a 8 MiB tmpfs as systemd-coredump's store, coredump.conf
    // capping cores at 64 MiB, and the handler — a script named like systemd-coredump that
    // stores the core under the store the way it names them.
    let host = tmpfs_root("var/lib/systemd/coredump", "size=8m");
    let root = host.root().to_path_buf();
    std::fs::create_dir_all(root.join("etc/systemd/coredump.conf.d")).unwrap();
    std::fs::write(
        root.join("etc/systemd/coredump.conf.d/50-test.conf"),
        "[Coredump]\nProcessSizeMax=64M\nExternalSizeMax=64M\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("lib/systemd")).unwrap();
    let handler = root.join("lib/systemd/systemd-coredump");
    executable(
        &handler,
        &format!(
            "#!/bin/sh\n# %P %u %g %s %t %c %h %e\ncat > \"{}/core.$8.$2.{}.$1.${{5}}000000\" 2>/dev/null\nexit 0\n",
            host.mount.display(),
            boot_id()
        ),
    );
    let _pattern = SysctlGuard::set(
        "kernel.core_pattern",
        &format!("|{} %P %u %g %s %t %c %h %e", handler.display()),
    );

    // The "container": a pids cgroup shaped like kubelet's, RLIMIT_CORE unlimited as
    // containerd's LimitCORE=infinity hands it down.
    let (rel, pod, id) = container_shaped("core");
    let cg = make_cgroup(&pids_mount(), &rel);
    let mut crasher = Helper::spawn(
        Command::new("prlimit")
            .args(["--core=unlimited:unlimited", "--"])
            .arg(python3())
            .args(["-c", CRASHER]),
    );
    cg.add(crasher.pid() as u32);
    crasher.expect("ready");
    let pid = crasher.pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim()
        .to_string();

    let (code, doc) = check(&root, "coredump-to-host");
    assert_eq!(code, 1, "{doc:#}");
    let f = findings_about(
        &doc,
        "coredump-to-host",
        "container_id",
        &Value::from(id.as_str()),
    );
    assert_eq!(f.len(), 1, "{doc:#}");
    let f = f[0];
    assert_eq!(f["severity"], "critical", "{f:#}");
    assert_eq!(f["key"], format!("coredump-to-host/container:{id}"));
    assert_eq!(f["subjects"][0]["pod"], pod.as_str());
    assert_eq!(f["subjects"][1]["pid"], pid);
    // Its core: its anonymous memory (24 MiB and more), under the 64 MiB cap, against the
    // tmpfs's free space (at most 8 MiB).
    let dump = measure(f, "dump_bytes").unwrap();
    let free = measure_limit(f, "dump_bytes").unwrap();
    assert!(
        dump >= (24 << 20) as f64 && dump <= (64 << 20) as f64,
        "{dump}"
    );
    assert!(free <= (8 << 20) as f64, "{free}");
    assert_eq!(measure(f, "max_core_bytes"), Some((64u64 << 20) as f64));

    // Crash for real: the kernel runs the handler as root in the host's namespaces and the
    // core lands in the host's store, whatever the container.
    crasher.say("crash");
    let status = crasher.child.wait().unwrap();
    assert_eq!(status.signal(), Some(11), "SIGSEGV");
    assert!(status.core_dumped(), "the kernel dumped it (to the pipe)");
    let stored = |dir: &Path| -> Vec<(String, u64)> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .filter(|(n, _)| n.contains(&format!(".{pid}.")))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            stored(&host.mount).iter().any(|(_, len)| *len > 0)
                && pids_with_comm("systemd-coredum").is_empty()
        }),
        "the handler stored the core: {:?}",
        stored(&host.mount)
    );
    let name = stored(&host.mount)[0].0.clone();
    assert!(name.starts_with(&format!("core.{comm}.0.")), "{name}");

    // The stored core is a recent dump of that command.
    let (_, doc) = check(&root, "coredump-storm");
    let st: Vec<&Value> = findings_of(&doc, "coredump-storm")
        .into_iter()
        .filter(|f| f["key"] == format!("coredump-storm/command:{comm}"))
        .collect();
    assert_eq!(st.len(), 1, "{doc:#}");
    assert!(measure(st[0], "stored_dumps").unwrap() >= 1.0);
    assert_eq!(st[0]["subjects"][0]["comm"], comm.as_str());
    drop(cg);
}

#[test]
fn a_crash_over_core_pipe_limit_is_a_storm_naming_the_command() {
    assert_root();
    let _g = serialize();
    let dir = tempfile::tempdir().unwrap();
    let handler = dir.path().join("slow-handler");
    executable(&handler, "#!/bin/sh\ncat > /dev/null\nsleep 3\n");
    // A command of our own name: comm is the name it was executed by.
    let crasher = dir.path().join("ndcrash");
    std::os::unix::fs::symlink("/bin/sh", &crasher).unwrap();
    let _pattern = SysctlGuard::set("kernel.core_pattern", &format!("|{} %P", handler.display()));
    let _limit = SysctlGuard::set("kernel.core_pipe_limit", "1");
    let crash = || {
        Command::new(&crasher)
            .arg("-c")
            .arg("ulimit -c unlimited; kill -SEGV $$")
            .spawn()
            .unwrap()
    };
    let mut first = crash();
    // The first dump's handler is running (it sleeps): the second crash is over the limit.
    assert!(wait_until(Duration::from_secs(5), || !pids_with_comm(
        "slow-handler"
    )
    .is_empty()));
    let mut second = crash();
    let second_pid = second.id() as i64;
    second.wait().unwrap();
    first.wait().unwrap();

    // The real kernel line (6.10+ format here).
    let host = node_doctor_host::Host::open("/").unwrap();
    let ring = node_doctor_host::sources::kmsg::read_ring(&*host.kernel);
    let line = format!("coredump: {second_pid}(ndcrash): over core_pipe_limit");
    assert!(
        ring.records.iter().any(|r| r.text.starts_with(&line)),
        "the kernel logged {line:?}"
    );

    let (_, doc) = check_json(&["--window", "0", "--only", "coredump-storm"]);
    let f: Vec<&Value> = findings_of(&doc, "coredump-storm")
        .into_iter()
        .filter(|f| f["key"] == "coredump-storm/command:ndcrash")
        .collect();
    assert_eq!(f.len(), 1, "{doc:#}");
    assert_eq!(f[0]["subjects"][0]["comm"], "ndcrash");
    assert!(measure(f[0], "skipped_dumps").unwrap() >= 1.0, "{:#}", f[0]);
    assert!(f[0]["severity"] == "warning" || f[0]["severity"] == "critical");
    assert_eq!(
        measure_limit(f[0], "handlers_running"),
        Some(1.0),
        "core_pipe_limit 1"
    );
}
