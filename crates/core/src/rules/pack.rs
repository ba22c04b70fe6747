//! The default rule pack: everything node-problem-detector's default kernel, docker and
//! systemd monitors detect, the classes other node agents detect (lockups, RCU stalls, machine
//! checks, block and filesystem errors naming the device, NIC timeouts, GPU Xids, unit
//! failures, kubelet's pod and image troubles), and the lines behind this project's
//! incidents — with named groups so the findings name the pid, command, container, pod,
//! device, unit and image.
//!
//! Each rule cites where its line is printed (kernel, kubelet, containerd, runc, systemd, Go
//! runtime source, as `repository: path (function)`), and has a real positive line and a
//! near-miss negative line in the tests below. Patterns are unanchored (a match anywhere in
//! the message), and each contains a literal of three bytes or more, so the monitor can find
//! candidate lines with one multi-literal search over the buffer (see `rules::prefilter`).

use super::{Grouping, RuleSpec};
use crate::finding::Severity::{Critical, Info, Warning};

const MIN: u64 = 60_000;

/// systemd unit types (`man systemd.unit`), for `(?P<unit>...)`.
const UNIT: &str = r"(?P<unit>[\w@.:\\-]+\.(?:service|socket|mount|swap|timer|path|scope|slice|target|automount|device))";

/// NPD's systemd-monitor counter: `unit` started 5 times or more within 20 minutes.
fn restart_counter(unit: &str, camel: &str, pattern: &str) -> RuleSpec {
    let reason = format!("Frequent{camel}Restart");
    RuleSpec::event(
        &format!("frequent-{unit}-restart"),
        &reason,
        pattern,
        Warning,
    )
    .condition(&reason)
    .counted(5, 20 * MIN)
    .explain(
        &format!("{unit} restarted 5 times or more within 20 minutes."),
        &format!("`journalctl -u {unit}` for why it exits."),
    )
}

/// The default rules, in the order they are reported when equally severe.
pub fn default_rules() -> Vec<RuleSpec> {
    let mut rules = kernel_rules();
    rules.extend(runtime_rules());
    rules
}

fn kernel_rules() -> Vec<RuleSpec> {
    let oom_cause =
        "The kernel ran out of memory on the node and killed a process to free some (global OOM).";
    let oom_fix = "Find what grew: `dmesg | grep -A20 'invoked oom-killer'`; set memory requests/limits so pods \
                   are killed inside their own cgroups before the node runs out; reserve memory for the system \
                   (kubelet --system-reserved, --eviction-hard).";
    let memcg_cause = "A memory cgroup hit its limit and the kernel killed the named task inside it: the container \
                       uses more memory than its limit allows.";
    let memcg_fix = "Raise the container's memory limit or fix its growth; `kubectl describe pod` shows OOMKilled \
                     restarts. The cgroup in the evidence is the one whose limit was hit (oom_memcg).";
    let oops_cause = "The kernel hit a bug (oops); the task that triggered it was killed and kernel state may be damaged.";
    let oops_fix = "Capture `dmesg` around it for the kernel vendor; drain and reboot the node.";
    let io_cause = "The block layer reported failed I/O to the device: reads or writes of the filesystems on it fail.";
    let io_fix = "Check the disk or cloud volume (`smartctl -a /dev/<device>`, the volume's status in the cloud \
                  console); move the workload off the node if it repeats.";
    vec![
        // --- Memory: OOM kills. One kill is logged over several lines (the `oom-kill:`
        // summary, then `Killed process`; before 4.19 `Task in ... killed as a result of
        // limit of ...` and `Kill process`): they share the event "oom-kill" and fold into
        // one finding by pid.
        //
        // linux: mm/oom_kill.c (__oom_kill_process) "%s: Killed process %d (%s) total-vm:%lukB,
        // anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB, UID:%u pgtables:%lukB
        // oom_score_adj:%hd", message "Out of memory" (global) or "Out of memory
        // (oom_kill_allocating_task)"; before 5.1 "Killed process %d (%s) total-vm:..." on a
        // line of its own; RHEL 6 "Killed process %d, UID %d, (%s) total-vm:...". A `kernel: `
        // or `[ts] ` prefix left on the line (unstripped sources) is accepted too.
        RuleSpec::event(
            "oom-kill",
            "OOMKilling",
            r"(?:^|kernel: |\] |Out of memory(?: \(oom_kill_allocating_task\))?: )Killed process (?P<pid>\d+),? (?:UID (?P<uid>\d+), )?\((?P<comm>[^)]*)\)",
            Warning,
        )
        .same_event("oom-kill")
        .explain(oom_cause, oom_fix),
        // linux: mm/oom_kill.c (dump_oom_summary) "oom-kill:constraint=%s,nodemask=%*pbl" +
        // cpuset + mm/memcontrol.c (mem_cgroup_print_oom_context) ",global_oom" +
        // ",task_memcg=" ... ",task=%s,pid=%d,uid=%d": the global kill's victim and its
        // container.
        RuleSpec::event(
            "oom-kill",
            "OOMKilling",
            r"oom-kill:constraint=CONSTRAINT_NONE,.*?global_oom,task_memcg=(?P<memcg>[^,]*),task=(?P<comm>[^,]+),pid=(?P<pid>\d+),uid=(?P<uid>\d+)",
            Warning,
        )
        .same_event("oom-kill")
        .explain(oom_cause, oom_fix),
        // linux: mm/oom_kill.c (dump_oom_summary) with mm/memcontrol.c
        // (mem_cgroup_print_oom_context) ",oom_memcg=" + ",task_memcg=".
        RuleSpec::event(
            "memcg-oom-kill",
            "OOMKilling",
            r"oom-kill:constraint=(?P<constraint>\w+),.*?oom_memcg=(?P<oom_memcg>[^,]*),task_memcg=(?P<memcg>[^,]*),task=(?P<comm>[^,]+),pid=(?P<pid>\d+),uid=(?P<uid>\d+)",
            Warning,
        )
        .same_event("oom-kill")
        .explain(memcg_cause, memcg_fix),
        // linux: mm/memcontrol.c (mem_cgroup_out_of_memory) oom_kill_process(oc, "Memory
        // cgroup out of memory"): "Memory cgroup out of memory: Killed process %d (%s)" (5.1+),
        // "Memory cgroup out of memory: Kill process %d (%s) score %u or sacrifice child"
        // (before).
        RuleSpec::event(
            "memcg-oom-kill",
            "OOMKilling",
            r"Memory cgroup out of memory: Kill(?:ed)? process (?P<pid>\d+),? (?:UID (?P<uid>\d+), )?\((?P<comm>[^)]*)\)",
            Warning,
        )
        .same_event("oom-kill")
        .explain(memcg_cause, memcg_fix),
        // linux (before 4.19): mm/memcontrol.c (mem_cgroup_print_oom_info) "Task in " path
        // " killed as a result of limit of " path.
        RuleSpec::event(
            "memcg-oom-kill",
            "OOMKilling",
            r"Task in (?P<memcg>\S+) killed as a result of limit of (?P<oom_memcg>\S+)",
            Warning,
        )
        .same_event("oom-kill")
        .explain(memcg_cause, memcg_fix),
        // --- Hangs and lockups.
        // linux: kernel/hung_task.c (hung_task_info) "INFO: task %s:%d blocked for more than
        // %ld seconds." — the wording of every kernel since the detector's 2.6.27 (then in
        // kernel/softlockup.c); `Ns` as other tools print it.
        RuleSpec::event(
            "task-hung",
            "TaskHung",
            r"task (?P<comm>.+):(?P<pid>\d+) blocked for more than (?P<blocked_seconds>\d+)(?: seconds|s\b)",
            Warning,
        )
        .explain(
            "The kernel's hung-task detector found a task in uninterruptible sleep (D) for longer than \
             kernel.hung_task_timeout_secs: it waits on I/O or a lock that does not come back.",
            "See d-state-processes for the task's wchan and stack; resolve the storage/NFS/FUSE it waits on.",
        ),
        // linux: kernel/hung_task.c (debug_show_blocker, 6.15+, CONFIG_DETECT_HUNG_TASK_BLOCKER)
        // "INFO: task %s:%d is blocked on a mutex likely owned by task %s:%d." and the
        // semaphore/rw-semaphore forms: the same hung task, with who holds its lock.
        RuleSpec::event(
            "task-hung",
            "TaskHung",
            r"INFO: task (?P<comm>.+):(?P<pid>\d+) (?:<\w+> )?(?:is )?blocked on an? (?:mutex|semaphore|rw-semaphore)",
            Warning,
        )
        .explain(
            "The kernel's hung-task detector found a task in uninterruptible sleep (D) for longer than \
             kernel.hung_task_timeout_secs, blocked on a lock another task holds.",
            "See d-state-processes; the line names the lock's owner — find what it waits on.",
        ),
        RuleSpec::event(
            "docker-hung",
            "DockerHung",
            r"task (?P<comm>docker|dockerd):(?P<pid>\d+) blocked for more than \d+ seconds",
            Critical,
        )
        .condition("KernelDeadlock")
        .explain(
            "dockerd itself is stuck in uninterruptible sleep in the kernel; container operations on the \
             node hang.",
            "Find what dockerd waits on (`cat /proc/<pid>/stack`); usually storage. Drain and reboot if it \
             does not recover.",
        ),
        RuleSpec::event(
            "aufs-umount-hung",
            "AUFSUmountHung",
            r"task umount\.aufs:(?P<pid>\d+) blocked for more than \d+ seconds",
            Critical,
        )
        .condition("KernelDeadlock")
        .explain(
            "An aufs unmount is stuck in the kernel (a known aufs deadlock); the runtime cannot clean up containers.",
            "Drain and reboot the node; move off aufs (overlay2).",
        ),
        // linux: kernel/watchdog.c (watchdog_timer_fn) "BUG: soft lockup - CPU#%d stuck for
        // %us! [%s:%d]" (pr_fmt "watchdog: ", "NMI watchdog: " before 4.x).
        RuleSpec::event(
            "soft-lockup",
            "SoftLockup",
            r"BUG: soft lockup - CPU#(?P<cpu>\d+) stuck for (?P<stuck_seconds>\d+)s! \[(?P<comm>.+):(?P<pid>\d+)\]",
            Critical,
        )
        .explain(
            "A CPU ran kernel code without scheduling for longer than the soft-lockup threshold \
             (2 × kernel.watchdog_thresh): the task named was spinning in the kernel, everything else on that \
             CPU starved.",
            "Read the stack after the line (`dmesg`); often a driver or a hypervisor stealing the CPU \
             (check steal time). Repeated: drain the node and report the stack to the kernel vendor.",
        ),
        // linux: kernel/watchdog.c (watchdog_hardlockup_check, 6.5+) "CPU%u: Watchdog detected
        // hard LOCKUP on cpu %u"; kernel/watchdog_hld.c (watchdog_overflow_callback, before)
        // "Watchdog detected hard LOCKUP on cpu %d".
        RuleSpec::event(
            "hard-lockup",
            "HardLockup",
            r"Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)",
            Critical,
        )
        .explain(
            "A CPU stopped taking interrupts (the NMI watchdog saw no timer interrupts for \
             kernel.watchdog_thresh seconds): it is stuck with interrupts disabled.",
            "Drain and reboot the node; capture the NMI backtrace after the line for the kernel vendor.",
        ),
        // linux: kernel/rcu/tree_stall.h (print_other_cpu_stall) "INFO: %s detected stalls on
        // CPUs/tasks:", (print_cpu_stall) "INFO: %s self-detected stall on CPU" (%s is
        // rcu_state.name: rcu_sched, rcu_preempt).
        RuleSpec::event(
            "rcu-stall",
            "RCUStall",
            r"INFO: (?:rcu_\w+|\w+) (?:detected stalls on CPUs/tasks|self-detected stall on CPU)",
            Critical,
        )
        .explain(
            "RCU grace periods stopped completing: a CPU or task has not passed a quiescent state for \
             kernel.rcu_cpu_stall_timeout (21 s): the node is effectively hung in the kernel.",
            "Read the stacks after the line; check for CPU starvation (steal time, RT tasks). Drain and reboot.",
        ),
        // --- Oopses, BUGs, panics.
        // linux: arch/x86/kernel/dumpstack.c (__die_header) "%s: %04lx [#%d]..." with str
        // "Oops", "invalid opcode", "divide error", "stack segment", "double fault" ...
        // (6.9+ prefixes "Oops: "); arch/arm64/kernel/traps.c (__die) "Internal error: %s:
        // %016lx [#%d]".
        RuleSpec::event(
            "kernel-oops",
            "KernelOops",
            r"(?:Oops|invalid opcode|divide error|stack segment|double fault|int3|overflow|bounds|alignment check|segment not present|invalid TSS|coprocessor error|SIMD coprocessor error|control protection fault): [0-9a-f]{4} \[#(?P<die_count>\d+)\]",
            Critical,
        )
        .explain(oops_cause, oops_fix),
        RuleSpec::event(
            "kernel-oops",
            "KernelOops",
            r"Internal error: [^:]+: [0-9a-f]+ \[#(?P<die_count>\d+)\]",
            Critical,
        )
        .explain(oops_cause, oops_fix),
        // linux: arch/x86/mm/fault.c (show_fault_oops) "BUG: kernel NULL pointer dereference,
        // address: %px", "BUG: unable to handle page fault for address: %px" (5.x+),
        // "BUG: unable to handle kernel NULL pointer dereference at %px" /
        // "... kernel paging request at %px" (before); arch/arm64/mm/fault.c (die_kernel_fault)
        // "Unable to handle kernel %s at virtual address %016lx"; lib/bug.c (report_bug)
        // "kernel BUG at %s:%u!".
        RuleSpec::event(
            "kernel-oops",
            "KernelOops",
            r"BUG: (?:unable to handle|kernel NULL pointer dereference)|Unable to handle kernel (?:NULL pointer dereference|paging request|execute from non-executable memory|write to read-only memory|access to user memory)|kernel BUG at \S+",
            Critical,
        )
        .explain(oops_cause, oops_fix),
        // linux: arch/x86/kernel/traps.c (exc_general_protection → die_addr) "general protection
        // fault, probably for non-canonical address 0x%lx" + __die_header's ": %04lx [#%d]"
        // (before 5.4 "general protection fault: %04lx [#%d]"; 6.9+ "Oops: " first).
        RuleSpec::event(
            "general-protection-fault",
            "GeneralProtectionFault",
            r"general protection fault(?:, [^:]*)?: [0-9a-f]{4} \[#(?P<die_count>\d+)\]",
            Critical,
        )
        .explain(
            "The kernel itself took a general protection fault (a wild pointer, often a use-after-free): \
             the task was killed and kernel memory may be corrupt.",
            oops_fix,
        ),
        // linux: kernel/panic.c (panic) "Kernel panic - not syncing: %s" (survives in pstore,
        // netconsole or a previous boot's journal).
        RuleSpec::event(
            "kernel-panic",
            "KernelPanic",
            r"Kernel panic - not syncing: ",
            Critical,
        )
        .explain(
            "The kernel panicked: the node rebooted (or hung) at that point.",
            "Read what precedes the panic line (the oops, lockup or hung task that caused it); check \
             kernel.panic_on_oops / hung_task_panic / softlockup_panic settings.",
        ),
        // Every other "BUG: " the kernel prints: kernel/sched/core.c (__schedule_bug) "BUG:
        // scheduling while atomic: %s/%d/0x%08x", (__might_resched) "BUG: sleeping function
        // called from invalid context at %s:%d", mm/page_alloc.c (bad_page) "BUG: Bad page
        // state in process %s", kernel/workqueue.c (wq_watchdog_timer_fn) "BUG: workqueue
        // lockup - pool", mm/kasan/report.c "BUG: KASAN: %s in %pS" ...
        RuleSpec::event("kernel-bug", "KernelBug", r"\bBUG: \S", Warning)
            .unless(&["soft-lockup", "kernel-oops"])
            .explain(
                "The kernel reported a bug it caught (scheduling while atomic, a bad page state, a workqueue \
                 lockup, a KASAN report): the kernel is tainted and may misbehave.",
                "Read the stack after the line; report it to the kernel vendor; drain the node if it repeats.",
            ),
        // --- Hardware.
        // linux: arch/x86/kernel/cpu/mce/core.c (print_mce) HW_ERR "CPU %d: Machine Check%s:
        // %Lx Bank %d: %016Lx" (%s " Exception" while MCIP), (mce_notify_irq) HW_ERR "Machine
        // check events logged"; HW_ERR is "[Hardware Error]: ".
        RuleSpec::event(
            "machine-check-exception",
            "MachineCheckException",
            r"\[Hardware Error\]: CPU (?P<cpu>\d+): Machine Check Exception: [0-9a-f]+ Bank (?P<bank>\d+): ",
            Critical,
        )
        .explain(
            "The CPU raised a machine-check exception: an uncorrected hardware error (memory, cache, bus).",
            "Drain the node and have the hardware replaced; `rasdaemon`/`mcelog` decode the bank status.",
        ),
        RuleSpec::event(
            "machine-check",
            "MachineCheck",
            r"\[Hardware Error\]: (?:Machine check events logged|CPU (?P<cpu>\d+): Machine Check: [0-9a-f]+ Bank (?P<bank>\d+): )",
            Warning,
        )
        .explain(
            "The CPU logged machine-check events (corrected or deferred hardware errors).",
            "Repeated: decode them (`ras-mc-ctl --errors`, `mcelog`) and have the hardware checked.",
        ),
        // linux: drivers/edac/edac_mc.c (edac_ue_error) edac_mc_printk "EDAC MC%d: %d UE
        // %s%son %s (...)", (edac_ce_error) "... %d CE ...".
        RuleSpec::event(
            "edac-uncorrected",
            "MemoryUncorrectableError",
            r"EDAC (?P<device>MC\d+): (?P<errors>\d+) UE ",
            Critical,
        )
        .explain(
            "The memory controller reported an uncorrectable memory error: data in RAM was lost.",
            "Drain the node and have the DIMM in the line replaced.",
        ),
        RuleSpec::event(
            "memory-read-error",
            "MemoryReadError",
            r"(?:EDAC (?P<device>MC\d+): (?P<errors>\d+) )?CE memory read error",
            Warning,
        )
        .explain(
            "A corrected memory error was reported by the hardware.",
            "Repeated: have the hardware checked; drain the node.",
        ),
        RuleSpec::event(
            "edac-corrected",
            "MemoryCorrectableError",
            r"EDAC (?P<device>MC\d+): (?P<errors>\d+) CE ",
            Warning,
        )
        .unless(&["memory-read-error"])
        .explain(
            "The memory controller corrected a memory error.",
            "Occasional ones are normal; a rising rate on one DIMM predicts an uncorrectable one: replace it.",
        ),
        RuleSpec::event(
            "cper-hardware-error-fatal",
            "CperHardwareErrorFatal",
            r"\[Hardware Error\]: event severity: fatal",
            Critical,
        )
        .explain("The firmware reported a fatal hardware error (APEI/CPER).", "Drain the node and have the hardware replaced."),
        RuleSpec::event(
            "cper-hardware-error-recoverable",
            "CperHardwareErrorRecoverable",
            r"\[Hardware Error\]: event severity: recoverable",
            Warning,
        )
        .explain("The firmware reported a recoverable hardware error (APEI/CPER).", "Repeated: have the hardware checked."),
        // NVIDIA: open-gpu-kernel-modules src/nvidia/src/kernel/gpu/rc/kernel_rc.c "NVRM: Xid
        // (PCI:%04x:%02x:%02x): %d, pid=%s, name=%s, %s" (MIG: " GPU-I:%02u GPU-CI:%02u" in
        // the parenthesis; older drivers without pid/name). The Xids NVIDIA's catalog says
        // need a GPU reset or a node drain: 48 (DBE ECC), 61/62 (internal micro-controller),
        // 63/64 (ECC page retirement/row remapping), 74 (NVLink), 79 (fallen off the bus), 92
        // (high single-bit ECC rate), 94/95 (contained/uncontained ECC), 119/120 (GSP), 140.
        RuleSpec::event(
            "gpu-xid-fatal",
            "GPUXidFatal",
            r"NVRM: Xid \((?P<device>PCI:[0-9a-fA-F:.]+)[^)]*\): (?P<xid>48|61|62|63|64|74|79|92|94|95|119|120|140)\b(?:, pid=(?P<pid>\d+))?(?:, name=(?P<comm>[^,<\s][^,]*))?",
            Critical,
        )
        .explain(
            "The NVIDIA driver reported an Xid that means the GPU is unusable until reset (ECC, NVLink, GSP, \
             or the GPU fell off the bus).",
            "Cordon the node, drain its GPU pods, reset the GPU (`nvidia-smi -r`) or reboot; RMA on repeats.",
        ),
        RuleSpec::event(
            "gpu-xid",
            "GPUXid",
            r"NVRM: Xid \((?P<device>PCI:[0-9a-fA-F:.]+)[^)]*\): (?P<xid>\d+)(?:, pid=(?P<pid>\d+))?(?:, name=(?P<comm>[^,<\s][^,]*))?",
            Warning,
        )
        .unless(&["gpu-xid-fatal"])
        .explain(
            "The NVIDIA driver reported an Xid error: usually the application's (illegal memory access, \
             MMU fault), sometimes the driver's.",
            "Look the Xid number up in NVIDIA's Xid catalog; check the named process's logs.",
        ),
        // --- Block devices and filesystems.
        // linux: block/blk-core.c "end_request: %s error, dev %s, sector %llu" (≤ 3.x,
        // blk_update_request), (print_req_error, 4.x–5.17) "%s: %s error, dev %s, sector %llu
        // op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u" with caller
        // "blk_update_request", (blk_print_req_error, 5.18+) "%s error, dev %s, sector %llu op
        // ...". The error kinds of blk_errors[] that mean failed I/O ("operation not
        // supported" is a discard a device lacks; "nonblocking retry" is not a failure).
        RuleSpec::event(
            "io-error",
            "IOError",
            r"(?:^|: )(?P<error>I/O|critical medium|critical target|critical nexus|critical space allocation|recoverable transport|timeout|protection|device offline|reservation conflict) error, dev (?P<device>[^,\s]+), sector (?P<sector>\d+)",
            Critical,
        )
        .explain(io_cause, io_fix),
        // linux: fs/buffer.c (buffer_io_error) "Buffer I/O error on dev %pg, logical block
        // %llu%s" (before 4.x "Buffer I/O error on device %s, logical block %Lu").
        RuleSpec::event(
            "io-error",
            "IOError",
            r"Buffer I/O error on dev(?:ice)? (?P<device>[^,\s]+), logical block (?P<block>\d+)",
            Critical,
        )
        .explain(io_cause, io_fix),
        // linux: fs/ext4/super.c (__ext4_error, __ext4_error_inode, __ext4_error_file)
        // "EXT4-fs error (device %s): %s:%d: ..." (ext3/ext2 alike).
        RuleSpec::event(
            "ext4-error",
            "Ext4Error",
            r"EXT[234]-fs error \(device (?P<device>[^)]+)\)",
            Critical,
        )
        .explain("ext4 found corruption or an I/O failure on the device.", "Check the disk (`smartctl`, cloud volume status); fsck it offline; replace the volume."),
        // linux: fs/ext4/super.c (__ext4_warning) "EXT4-fs warning (device %s): %s:%d: %pV".
        RuleSpec::event(
            "ext4-warning",
            "Ext4Warning",
            r"EXT[234]-fs warning \(device (?P<device>[^)]+)\)",
            Info,
        )
        .explain("ext4 reported a warning.", "Read the line; usually benign unless repeated."),
        // linux: fs/xfs/xfs_message.c (__xfs_printk) "XFS (%s): %pV"; fs/xfs/xfs_fsops.c
        // (xfs_do_force_shutdown) "Filesystem has been shut down due to ..." /
        // "xfs_do_force_shutdown(0x%x) called from line %d of file %s", fs/xfs/xfs_log.c "Log
        // I/O Error Detected. Shutting down filesystem" (NPD's XfsShutdown condition).
        RuleSpec::event(
            "xfs-shutdown",
            "XfsHasShutdown",
            r"XFS \((?P<device>[^)]+)\): .*(?:Shutting down filesystem|has been shut down|xfs_do_force_shutdown)",
            Critical,
        )
        .condition("XfsShutdown")
        .explain(
            "XFS shut the filesystem down after an I/O error or corruption: every access to it fails until \
             it is unmounted and repaired.",
            "Drain the node; unmount, `xfs_repair` the device, check the disk.",
        ),
        // fs/xfs/xfs_buf.c (xfs_buf_ioerror_alert) "metadata I/O error in \"%pS\" at daddr 0x%llx
        // len %d error %d", fs/xfs/xfs_error.c "Corruption detected. Unmount and run xfs_repair".
        RuleSpec::event(
            "xfs-error",
            "XfsError",
            r"XFS \((?P<device>[^)]+)\): .*(?:[Ee]rror|[Cc]orruption)",
            Critical,
        )
        .unless(&["xfs-shutdown"])
        .explain("XFS found corruption or an I/O error.", "Check the device; `xfs_repair` offline; replace the volume."),
        // linux: fs/ext4/super.c (ext4_handle_error) ext4_msg(sb, KERN_CRIT, "Remounting
        // filesystem read-only") → "EXT4-fs (%s): Remounting filesystem read-only".
        RuleSpec::event(
            "readonly-filesystem",
            "FilesystemIsReadOnly",
            r"EXT[234]-fs \((?P<device>[^)]+)\): [Rr]emounting filesystem read-only",
            Critical,
        )
        .condition("ReadonlyFilesystem")
        .explain(
            "A filesystem hit errors and the kernel remounted it read-only: writes (images, logs, volumes) fail.",
            "Find the device in the line, check it, fsck offline; drain and reboot the node.",
        ),
        RuleSpec::event(
            "readonly-filesystem",
            "FilesystemIsReadOnly",
            r"[Rr]emounting filesystem read-only",
            Critical,
        )
        .condition("ReadonlyFilesystem")
        .explain(
            "A filesystem hit errors and the kernel remounted it read-only: writes (images, logs, volumes) fail.",
            "Find the device in the line, check it, fsck offline; drain and reboot the node.",
        ),
        // --- Network.
        // linux: net/core/dev.c (netdev_wait_allrefs_any) "unregister_netdevice: waiting for %s
        // to become free. Usage count = %d".
        RuleSpec::event(
            "unregister-netdevice",
            "UnregisterNetDevice",
            r"unregister_netdevice: waiting for (?P<device>\S+) to become free\. Usage count = \d+",
            Warning,
        )
        .explain(
            "A network device of a deleted pod cannot be freed because something still holds a \
             reference; pod network teardown and creation stall behind it.",
            "Known kernel/CNI bugs; upgrade the kernel. If pods stop starting, drain and reboot.",
        ),
        // linux: net/sched/sch_generic.c (dev_watchdog) 6.8+: netdev_crit(dev, "NETDEV WATCHDOG:
        // CPU: %d: transmit queue %u timed out %u ms") → "<driver> <bus> <ifname>: NETDEV
        // WATCHDOG: ..."; before: WARN_ONCE "NETDEV WATCHDOG: %s (%s): transmit queue %u timed
        // out".
        RuleSpec::event(
            "netdev-watchdog",
            "NICTransmitTimeout",
            r"(?P<device>[\w.@-]+): NETDEV WATCHDOG: CPU: (?P<cpu>\d+): transmit queue (?P<queue>\d+) timed out",
            Warning,
        )
        .explain(
            "The NIC stopped transmitting on a queue for longer than its watchdog timeout; the driver reset \
             it. Packets were dropped meanwhile.",
            "Check the NIC driver and firmware (`ethtool -i`), the hypervisor's network; repeated resets: \
             drain the node.",
        ),
        RuleSpec::event(
            "netdev-watchdog",
            "NICTransmitTimeout",
            r"NETDEV WATCHDOG: (?P<device>[^\s(]+) \([^)]*\): transmit queue (?P<queue>\d+) timed out",
            Warning,
        )
        .explain(
            "The NIC stopped transmitting on a queue for longer than its watchdog timeout; the driver reset \
             it. Packets were dropped meanwhile.",
            "Check the NIC driver and firmware (`ethtool -i`), the hypervisor's network; repeated resets: \
             drain the node.",
        ),
        // linux: drivers/net/phy/phy.c (phy_print_status) netdev_info(.., "Link is Down"),
        // drivers/net/ethernet/intel/{e1000e,igb,ixgbe,i40e,ice} "NIC Link is Down",
        // drivers/net/ethernet/mellanox/mlx5/core/en_main.c "Link down"; netdev_info prefixes
        // "<driver> <bus> <ifname>: ". Three within ten minutes on one device is a flapping
        // link.
        RuleSpec::event(
            "link-flapping",
            "LinkFlapping",
            r"(?P<device>[\w.@-]+): (?:(?:NIC )?Link is Down|Link down)\b",
            Warning,
        )
        .counted(3, 10 * MIN)
        .explain(
            "A network link went down 3 times or more within 10 minutes: the cable, the switch port, the \
             NIC or the virtual network flaps.",
            "Check the switch port / cloud ENI, `ethtool <device>` error counters, the NIC firmware.",
        ),
        // linux: net/core/neighbour.c (neigh_alloc) "%s: neighbor table overflow!" (tbl->id:
        // arp_cache, ndisc_cache); before 4.x "Neighbour table overflow.".
        RuleSpec::event(
            "neighbor-table-overflow",
            "NeighborTableOverflow",
            r"\w+: neighbor table overflow!|Neighbour table overflow\.",
            Warning,
        )
        .explain(
            "The ARP/NDP neighbour table is full (net.ipv4.neigh.default.gc_thresh3): new neighbours cannot \
             be resolved and connections to them fail — common on nodes with many pods or a flat network.",
            "Raise net.ipv4.neigh.default.gc_thresh1/2/3 (and the ipv6 ones).",
        ),
        // linux: net/ipv4/tcp.c (tcp_check_oom) pr_fmt "TCP: " + "out of memory -- consider
        // tuning tcp_mem", "too many orphaned sockets".
        RuleSpec::event(
            "tcp-out-of-memory",
            "TCPOutOfMemory",
            r"TCP: out of memory -- consider tuning tcp_mem",
            Warning,
        )
        .explain(
            "TCP socket memory reached net.ipv4.tcp_mem's hard limit: the kernel resets connections.",
            "Find the sockets holding memory (`ss -tm`); raise net.ipv4.tcp_mem.",
        ),
        RuleSpec::event(
            "tcp-too-many-orphans",
            "TooManyOrphanedSockets",
            r"TCP: too many orphaned sockets",
            Warning,
        )
        .explain(
            "More orphaned TCP sockets than net.ipv4.tcp_max_orphans: the kernel resets them.",
            "Find who closes connections without draining them; raise net.ipv4.tcp_max_orphans.",
        ),
        // linux: net/netfilter/nf_conntrack_core.c (__nf_conntrack_alloc)
        // net_warn_ratelimited("nf_conntrack: table full, dropping packet") (ip_conntrack on
        // 2.6 kernels).
        RuleSpec::event(
            "conntrack-table-full",
            "ConntrackFull",
            r"(?:nf|ip)_conntrack: (?:(?:nf|ip)_conntrack: )?table full, dropping packet",
            Critical,
        )
        .explain(
            "The connection-tracking table is full: new connections through the node are dropped.",
            "`sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max`; raise the max; find the \
             connection storm (`conntrack -L | awk '{print $5}' | sort | uniq -c | sort -rn | head`).",
        ),
        // --- Processes.
        // linux: fs/coredump.c "coredump: %d(%s): over core_pipe_limit, skipping core dump"
        // (6.x), "Pid %d(%s) over core_pipe_limit" (before).
        RuleSpec::event(
            "core-pipe-limit",
            "CoreDumpSkipped",
            r"(?:coredump: |Pid )(?P<pid>\d+)\((?P<comm>[^)]*)\):? over core_pipe_limit",
            Warning,
        )
        .explain(
            "A process crashed while kernel.core_pipe_limit core-dump handlers were already running; its \
             core was skipped (incident 3: a crash loop's dumps piling up behind a slow handler).",
            "Find the crash loop; check the core_pattern handler and kernel.core_pipe_limit.",
        ),
        // linux: fs/coredump.c "coredump: %d(%s): RLIMIT_CORE is set to 1, aborting core",
        // "Process %d(%s) has RLIMIT_CORE set to 1".
        RuleSpec::event(
            "rlimit-core-1",
            "CoreDumpAborted",
            r"RLIMIT_CORE is set to 1, aborting core|has RLIMIT_CORE set to 1",
            Info,
        )
        .explain(
            "A process crashed with RLIMIT_CORE 1 and a piped core_pattern: the kernel's recursion guard \
             aborted its dump (systemd-coredump sets this for itself).",
            "Usually a crashing core-dump handler; check the core_pattern program.",
        ),
        // linux: kernel/cgroup/pids.c (pids_can_fork, pids_event) "cgroup: fork rejected by
        // pids controller in " + the cgroup path — once per cgroup, so a pod's fork storm names
        // each of its containers once: grouped by pod.
        RuleSpec::event(
            "pids-fork-rejected",
            "ForkRejected",
            r"cgroup: fork rejected by pids controller in (?P<cgroup>\S+)",
            Critical,
        )
        .grouped(Grouping::Pod)
        .explain(
            "A cgroup reached its pids.max: fork/clone in it fail with EAGAIN (incident 2a: zombies filled a pod's limit).",
            "See pid-exhaustion and zombie-processes for who holds the pids; fix the leak or raise the pod's limit.",
        ),
        // linux: fs/file_table.c (alloc_empty_file) "VFS: file-max limit %lu reached".
        RuleSpec::event(
            "file-max-reached",
            "FileMaxReached",
            r"VFS: file-max limit (?P<limit>\d+) reached",
            Critical,
        )
        .explain(
            "The node ran out of file handles (fs.file-max): every non-root open/socket/pipe fails with ENFILE \
             (incident 4: a runtime daemon leaking connections).",
            "See fd-exhaustion and fd-leak for the holders; stopgap `sysctl -w fs.file-max=<higher>`.",
        ),
        // linux: arch/x86/mm/fault.c (show_signal_msg) "%s%s[%d]: segfault at %lx ip %px sp %px
        // error %lx" + print_vma_addr " in %s[%lx+%lx]": a crash inside a GPU library.
        RuleSpec::event(
            "gpu-library-segfault",
            "GPULibrarySegfault",
            r"(?:(?P<comm>[^\s\[\]]+)\[(?P<pid>\d+)\]: )?segfault at [0-9a-f]+ ip [0-9a-f]+ sp [0-9a-f]+ error \d+ in lib(?:cuda|nvidia|cudnn|cublas|nccl|nvrtc|cufft|curand|cusparse|cusolver|nvcuvid|nvinfer)[\w.+-]*",
            Warning,
        )
        .explain(
            "A process crashed inside an NVIDIA library: a driver/library version mismatch or a GPU fault.",
            "Check the driver and CUDA library versions of the container against the node's driver; look \
             for an Xid at the same time.",
        ),
        // The same line elsewhere, with or without the comm[pid] before it.
        RuleSpec::event(
            "segfault",
            "Segfault",
            r"(?:(?P<comm>[^\s\[\]]+)\[(?P<pid>\d+)\]: )?segfault at [0-9a-f]+\b",
            Info,
        )
        .unless(&["gpu-library-segfault"])
        .explain("A process crashed on an invalid memory access.", "Repeated crashes of the same command: look at its logs and core dumps."),
        // linux: arch/x86/kernel/traps.c (show_signal) pr_fmt "traps: " + "%s[%d] %s%s ip:%lx
        // sp:%lx error:%lx": a user process killed by a trap (general protection fault,
        // "trap invalid opcode", "trap divide error", ...).
        RuleSpec::event(
            "process-trap",
            "ProcessTrap",
            r"traps: (?P<comm>[^\[\]]+)\[(?P<pid>\d+)\] (?:trap )?[a-z][a-z ]+ ip:[0-9a-f]+ sp:[0-9a-f]+ error:",
            Info,
        )
        .explain(
            "A process was killed by a CPU trap (a general protection fault, an invalid opcode, a divide error).",
            "Repeated crashes of the same command: look at its logs and core dumps; an invalid opcode after a \
             migration means a binary built for a newer CPU.",
        ),
    ]
}

fn runtime_rules() -> Vec<RuleSpec> {
    let thread_cause = "A program could not create a thread or process (EAGAIN): the node's or its cgroup's pid \
                        limit ran out (incident 2a) — runtime daemons and kubelet fail in turn.";
    let thread_fix = "See pid-exhaustion and zombie-processes for who holds the pids.";
    let probe_fix = "`kubectl describe pod` for the probe and its output; fix the app or the probe (timeouts, \
                     path), or the node's load if many pods fail at once.";
    let pull_cause =
        "kubelet or the runtime could not pull a container image: the pod cannot start.";
    let pull_fix = "Check the image name and tag, registry credentials (imagePullSecrets), and the node's \
                    route/DNS/proxy to the registry (`crictl pull <image>` on the node).";
    let stuck_cause = "A pod is stuck terminating: kubelet keeps trying to stop containers that do not exit \
                       (a process in D state, a hung runtime or shim, a volume that will not unmount).";
    let stuck_fix = "See stuck-container-stop and d-state-processes; `crictl ps -a` for the container's \
                     state, `crictl stop` it; as a last resort kill its shim.";
    vec![
        // --- NPD docker monitor equivalents.
        RuleSpec::event(
            "corrupt-docker-image",
            "CorruptDockerImage",
            r"Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/(.+) /var/lib/docker/image/(.+): directory not empty",
            Warning,
        )
        .explain("docker's image store is corrupt: a layer cannot be registered.", "Remove the image (`docker rmi -f`) or wipe /var/lib/docker/image on a drained node."),
        RuleSpec::event(
            "corrupt-docker-overlay2",
            "CorruptDockerOverlay2",
            r"returned error: readlink /var/lib/docker/overlay2.*: invalid argument",
            Warning,
        )
        .condition("CorruptDockerOverlay2")
        .explain("docker's overlay2 store has a broken layer link.", "Drain the node, stop docker, remove the broken layer (or all of /var/lib/docker), restart."),
        RuleSpec::event(
            "docker-container-startup-failure",
            "DockerContainerStartupFailure",
            r"OCI runtime start failed: container process is already dead",
            Warning,
        )
        .explain("A container died between create and start.", "Check the container's logs and exit reason; the node is usually fine."),
        // runc: libcontainer/rootfs_linux.go (mountToRootfs caller) "error mounting %q to rootfs
        // at %q: %w"; runc ≤ 1.0 "mounting %q to rootfs %q at %q caused ..."; quoted once per
        // layer of error wrapping (\", \\\"). A kubelet volume source names its pod.
        RuleSpec::event(
            "rootfs-mount-failed",
            "ContainerMountFailed",
            r#"(?:error )?mounting \\*"(?:/var/lib/kubelet/pods/(?P<pod_uid>[0-9a-f-]{36})/)?[^"\\]*\\*" to rootfs(?: \\*"[^"\\]*\\*")? at \\*"(?P<path>[^"\\]+)"#,
            Warning,
        )
        .explain(
            "The runtime could not mount a volume (or /etc/hosts, a secret) into a new container's root \
             filesystem: the container does not start.",
            "Read the error after the paths: a missing source, a file-versus-directory mismatch (a hostPath \
             that is not what the pod expects), or an SELinux/permission refusal.",
        ),
        // containerd: cmd/containerd-shim-runc-v2/process/init.go (Init.Create)
        // p.runtimeError(err, "OCI runtime create failed") → "OCI runtime create failed: %s";
        // kubelet's pkg/kubelet/pod_workers.go "Error syncing pod, skipping" err="failed to
        // \"StartContainer\" for \"%s\" with RunContainerError: ..." pod="ns/name" podUID=...
        RuleSpec::event(
            "oci-runtime-create-failed",
            "OCIRuntimeCreateFailed",
            r#"(?:for \\*"(?P<container>[^"\\]+)\\*" with \w+: .*?)?OCI runtime create failed(?:.*? pod="(?P<pod>[^"]+)")?(?:.*? podUID="?(?P<pod_uid>[0-9a-f-]{36}))?"#,
            Warning,
        )
        .unless(&["rootfs-mount-failed"])
        .explain(
            "The OCI runtime (runc) failed to create a container: the error after the words says why \
             (a missing binary, a cgroup or seccomp failure, a mount, out of pids).",
            "Read the runtime's error in the evidence; `journalctl -u containerd` around that time.",
        ),
        // --- kubelet.
        // kubernetes: pkg/kubelet/pleg/generic.go (Healthy) "pleg was last seen active %v ago;
        // threshold is %v" / "pleg has yet to be successful", pkg/kubelet/runtime.go
        // (runtimeErrors) "%s is not healthy: %v" with "PLEG".
        RuleSpec::event(
            "pleg-not-healthy",
            "PLEGNotHealthy",
            r"PLEG is not healthy: pleg (?:was last seen active (?P<ago>\S+) ago|has yet to be successful)",
            Critical,
        )
        .explain(
            "kubelet's pod lifecycle event generator could not relist containers in time: the runtime is \
             stuck or slow (incident 1: runc init hung on a shrunk pipe) and the node goes NotReady.",
            "See runc-init-hang, pipe-quota, d-state-processes; check the runtime (`crictl ps` hanging?).",
        ),
        // kubernetes: pkg/kubelet/volumemanager/populator/desired_state_of_world_populator.go
        // (findAndRemoveDeletedPods) "Pod still has one or more containers in the non-exited
        // state and will not be removed from desired state" "pod"=klog.KObj(pod); before 1.21
        // "Pod %q still has one or more containers in the non-exited state. Therefore, it will
        // not be removed from desired state."
        RuleSpec::event(
            "pod-stuck-terminating",
            "PodStuckTerminating",
            r#"Pod still has one or more containers in the non-exited state(?:.*? pod="(?P<pod>[^"]+)")?"#,
            Warning,
        )
        .explain(stuck_cause, stuck_fix),
        RuleSpec::event(
            "pod-stuck-terminating",
            "PodStuckTerminating",
            r#"Pod \\?"(?P<pod>[^"\\]+)\\?" still has one or more containers in the non-exited state"#,
            Warning,
        )
        .explain(stuck_cause, stuck_fix),
        // kubernetes: pkg/kubelet/kuberuntime/kuberuntime_container.go (killContainer)
        // "Killing container with a grace period" "pod" "podUID" "containerName" "containerID"
        // "gracePeriod": a container kubelet keeps killing does not stop.
        RuleSpec::event(
            "container-kill-retries",
            "PodStuckTerminating",
            r#""Killing container with a grace period"(?:.*? pod="(?P<pod>[^"]+)")?(?:.*? containerName="(?P<container>[^"]+)")?(?:.*? containerID="(?P<container_id>[^"]+)")?(?:.*? gracePeriod=(?P<grace_period_seconds>\d+))?"#,
            Warning,
        )
        .counted(3, 10 * MIN)
        .explain(stuck_cause, stuck_fix),
        // kubernetes: pkg/kubelet/prober/prober.go (runProbeWithRetries caller)
        // klog.V(1).InfoS("Probe failed", "probeType", probeType, "pod", klog.KObj(pod),
        // "podUID", pod.UID, "containerName", container.Name, ...); before 1.20 "%s probe for
        // %q failed (%v): %s" with %q = format.Pod(pod) + ":" + container name.
        RuleSpec::event(
            "readiness-probe-failures",
            "ReadinessProbeFailures",
            r#""Probe failed" probeType="Readiness" pod="(?P<pod>[^"]+)"(?: podUID="?(?P<pod_uid>[0-9a-f-]+)"?)? containerName="(?P<container>[^"]+)""#,
            Warning,
        )
        .counted(5, 5 * MIN)
        .explain(
            "A container's readiness probe failed 5 times or more within 5 minutes: the pod is taken out of \
             its Services' endpoints.",
            probe_fix,
        ),
        RuleSpec::event(
            "readiness-probe-failures",
            "ReadinessProbeFailures",
            r#"Readiness probe for \\?"(?P<pod>[^"\\]+):(?P<container>[^":\\]+)\\?" (?:failed|errored)"#,
            Warning,
        )
        .counted(5, 5 * MIN)
        .explain(
            "A container's readiness probe failed 5 times or more within 5 minutes: the pod is taken out of \
             its Services' endpoints.",
            probe_fix,
        ),
        RuleSpec::event(
            "liveness-probe-failures",
            "LivenessProbeFailures",
            r#""Probe failed" probeType="Liveness" pod="(?P<pod>[^"]+)"(?: podUID="?(?P<pod_uid>[0-9a-f-]+)"?)? containerName="(?P<container>[^"]+)""#,
            Warning,
        )
        .counted(5, 5 * MIN)
        .explain(
            "A container's liveness probe failed 5 times or more within 5 minutes: kubelet restarts it \
             (after failureThreshold failures) — a restart loop.",
            probe_fix,
        ),
        RuleSpec::event(
            "liveness-probe-failures",
            "LivenessProbeFailures",
            r#"Liveness probe for \\?"(?P<pod>[^"\\]+):(?P<container>[^":\\]+)\\?" (?:failed|errored)"#,
            Warning,
        )
        .counted(5, 5 * MIN)
        .explain(
            "A container's liveness probe failed 5 times or more within 5 minutes: kubelet restarts it \
             (after failureThreshold failures) — a restart loop.",
            probe_fix,
        ),
        // cadvisor: container/common/fsHandler.go (trackUsage) "fs: disk usage and inodes count
        // on following dirs took %v: %v; will not log again for this container unless
        // duration exceeds %v" (cadvisor in kubelet).
        RuleSpec::event(
            "slow-disk-usage-scan",
            "SlowDiskUsageScan",
            r"disk usage and inodes count on following dirs took (?P<took>[^:\s]+): \[(?P<path>[^\]\s]*)",
            Warning,
        )
        .explain(
            "kubelet's cadvisor took over a second to walk a container's writable layer for disk usage: the \
             disk is slow or a container writes huge numbers of files; PLEG and pod sync slow down with it.",
            "Check the disk's latency (`iostat -x`), throttled cloud volume IOPS, and the container writing \
             many small files in its root filesystem (use an emptyDir or a volume).",
        ),
        // kubernetes: pkg/kubelet/cri/remote/remote_image.go (PullImage) "PullImage from image
        // service failed" "image"; pkg/kubelet/kuberuntime/kuberuntime_image.go (PullImage)
        // "Failed to pull image" "image". containerd: internal/cri/instrument/
        // instrumented_service.go (PullImage) "PullImage %q failed".
        RuleSpec::event(
            "image-pull-failed",
            "ImagePullFailed",
            r#""(?:PullImage from image service failed|Failed to pull image)".*? image="(?P<image>[^"]+)""#,
            Warning,
        )
        .grouped(Grouping::Image)
        .explain(pull_cause, pull_fix),
        RuleSpec::event(
            "image-pull-failed",
            "ImagePullFailed",
            r#"PullImage \\?"(?P<image>[^"\\]+)\\?" failed"#,
            Warning,
        )
        .grouped(Grouping::Image)
        .explain(pull_cause, pull_fix),
        // kubernetes: pkg/kubelet/pod_workers.go "Error syncing pod, skipping" err="failed to
        // \"StartContainer\" for \"%s\" with ErrImagePull: ..." pod=.. podUID=..
        RuleSpec::event(
            "image-pull-failed",
            "ImagePullFailed",
            r#"for \\*"(?P<container>[^"\\]+)\\*" with ErrImagePull: (?:.*?image \\*"(?P<image>[^"\\]+))?(?:.*? pod="(?P<pod>[^"]+)")?(?:.*? podUID="?(?P<pod_uid>[0-9a-f-]{36}))?"#,
            Warning,
        )
        .grouped(Grouping::Image)
        .explain(pull_cause, pull_fix),
        // kubernetes: pkg/kubelet/images/image_manager.go (EnsureImageExists) "Back-off pulling
        // image %q" (ErrImagePullBackOff), in pod_workers.go's "Error syncing pod" line.
        RuleSpec::event(
            "image-pull-backoff",
            "ImagePullBackOff",
            r#"(?:for \\*"(?P<container>[^"\\]+)\\*" with ImagePullBackOff: .*?)?Back-off pulling image \\*"(?P<image>[^"\\]+)\\*"(?:.*? pod="(?P<pod>[^"]+)")?(?:.*? podUID="?(?P<pod_uid>[0-9a-f-]{36}))?"#,
            Warning,
        )
        .grouped(Grouping::Image)
        .explain(
            "kubelet keeps failing to pull an image and backs off between attempts (ImagePullBackOff): the \
             pod stays Pending.",
            pull_fix,
        ),
        // k8s.io/client-go: rest/request.go (tryThrottleWithInfo) "Waited for %v due to
        // client-side throttling, not priority and fairness, request: %s:%s"; before 1.24
        // "Throttling request took %v, request: %s:%s".
        RuleSpec::event(
            "kubelet-client-throttling",
            "ClientSideThrottling",
            r"Waited for (?P<wait>\S+) due to client-side throttling",
            Warning,
        )
        .explain(
            "kubelet is throttled by its own API QPS limits (kubeAPIQPS/kubeAPIBurst): status updates and pod \
             starts queue up.",
            "Raise kubeAPIQPS and kubeAPIBurst in the kubelet configuration.",
        ),
        // client-go 1.32+: logger.Info("Waited before sending request", "delay", latency,
        // "reason", "client-side throttling, not priority and fairness", ...).
        RuleSpec::event(
            "kubelet-client-throttling",
            "ClientSideThrottling",
            r#""Waited before sending request" delay="(?P<wait>[^"]+)" reason="client-side throttling"#,
            Warning,
        )
        .explain(
            "kubelet is throttled by its own API QPS limits (kubeAPIQPS/kubeAPIBurst): status updates and pod \
             starts queue up.",
            "Raise kubeAPIQPS and kubeAPIBurst in the kubelet configuration.",
        ),
        RuleSpec::event(
            "kubelet-client-throttling",
            "ClientSideThrottling",
            r"Throttling request took (?P<wait>[^,\s]+), request: ",
            Warning,
        )
        .explain(
            "kubelet is throttled by its own API QPS limits (kubeAPIQPS/kubeAPIBurst): status updates and pod \
             starts queue up.",
            "Raise kubeAPIQPS and kubeAPIBurst in the kubelet configuration.",
        ),
        // --- Thread and process creation failing in daemons (linked to PID exhaustion).
        // go: src/runtime/os_linux.go (newosproc) "runtime: failed to create new OS thread (have
        // %d already; errno=%d)"; src/runtime/cgo/gcc_libinit.c "runtime/cgo: pthread_create
        // failed: %s" (strerror: "Resource temporarily unavailable").
        RuleSpec::event(
            "pthread-create-failed",
            "PthreadCreateFailed",
            r"pthread_create failed: (?:Resource temporarily unavailable|No space left on device)|failed to create new OS thread",
            Critical,
        )
        .logger_subject()
        .explain(thread_cause, thread_fix),
        // go: src/os/exec_posix.go (startProcess) &PathError{Op: "fork/exec", Path: name, Err: e}
        // → "fork/exec %s: resource temporarily unavailable" (syscall.EAGAIN's text).
        RuleSpec::event(
            "fork-exec-failed",
            "ForkFailedOutOfPIDs",
            r"fork/exec (?P<path>[^:\s]+): resource temporarily unavailable",
            Critical,
        )
        .logger_subject()
        .explain(thread_cause, thread_fix),
        RuleSpec::event(
            "no-space-left",
            "NoSpaceLeftOnDevice",
            r"[Nn]o space left on device",
            Warning,
        )
        .unless(&["pthread-create-failed"])
        .explain(
            "A write or allocation failed with ENOSPC: a filesystem is full — or, from runtimes, a kernel \
             limit reported as ENOSPC (inotify watches, pids on old kernels).",
            "See disk-pressure; `df -h; df -i`; check fs.inotify.max_user_watches.",
        ),
        // --- systemd.
        // systemd: src/core/unit.c (unit_log_failure) LOG_UNIT_MESSAGE(u, "Failed with result
        // '%s'.") → "<unit>: Failed with result 'exit-code'."; v229–v235 (unit_notify)
        // log_unit_notice(u, "Unit entered failed state."); ≤ v228 "Unit %s entered failed
        // state.".
        RuleSpec::event(
            "unit-failed",
            "UnitFailed",
            &format!(r"{UNIT}: (?:Failed with result '(?P<result>[\w-]+)'|Unit entered failed state)"),
            Warning,
        )
        .explain(
            "A systemd unit failed (its process exited with an error, was killed, or timed out).",
            "`systemctl status <unit>`; `journalctl -u <unit>` for why.",
        ),
        RuleSpec::event(
            "unit-failed",
            "UnitFailed",
            &format!(r"Unit {UNIT} entered failed state"),
            Warning,
        )
        .explain(
            "A systemd unit failed (its process exited with an error, was killed, or timed out).",
            "`systemctl status <unit>`; `journalctl -u <unit>` for why.",
        ),
        // systemd: src/core/job.c (job_done_message_format: generic_finished_start_job
        // [JOB_FAILED]) "Failed to start %s." — %s the description, or (v250+ with
        // StatusUnitFormat=combined) "<unit> - <description>"; the journal's UNIT= field names
        // the unit either way.
        RuleSpec::event(
            "unit-start-failed",
            "UnitStartFailed",
            &format!(r"Failed to start (?:{UNIT} - )?\S"),
            Warning,
        )
        .unit_subject()
        .explain(
            "A systemd unit (or a component of a daemon) failed to start.",
            "`systemctl status <unit>`; `journalctl -u <unit> -b` for the error before this line.",
        ),
        // systemd: src/core/service.c (service_enter_restart) LOG_UNIT_MESSAGE(UNIT(s),
        // "Scheduled restart job, restart counter is at %u.", s->n_restarts): systemd's own
        // count of consecutive automatic restarts; 5 or more is a restart loop.
        RuleSpec::event(
            "unit-restart-loop",
            "UnitRestartLoop",
            &format!(r"{UNIT}: Scheduled restart job, restart counter is at (?P<restart_counter>[5-9]|[1-9]\d+)\."),
            Warning,
        )
        .explain(
            "systemd restarted a unit automatically 5 times or more in a row: it keeps crashing.",
            "`journalctl -u <unit>` for why it exits; for kubelet/containerd the node goes NotReady meanwhile.",
        ),
        // NPD systemd-monitor counters (config/systemd-monitor-counter.json patterns): systemd
        // src/core/job.c "Started %s." with the unit's description, or (v250+) "<unit> - <description>".
        restart_counter(
            "kubelet",
            "Kubelet",
            r"Started (?:Kubernetes [Kk]ubelet|kubelet\.service|kubelet:)",
        ),
        restart_counter(
            "containerd",
            "Containerd",
            r"Started (?:containerd container runtime|containerd\.service)",
        ),
        restart_counter(
            "docker",
            "Docker",
            r"Started (?:Docker Application Container Engine|docker\.service)",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{MatchOptions, Matcher, RuleSet};
    use super::*;
    use crate::finding::{Finding, SubjectKind};
    use crate::model::log::LogRecord;
    use std::sync::Arc;

    const POD: &str = "5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c";
    const CID: &str = "3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";

    /// (rule, a real line it must match): the kernel's, kubelet's, containerd's, runc's and
    /// systemd's format strings filled in (cited at each rule), lines captured on this machine
    /// (the memcg OOM kill), and peers' own test lines (aws/eks-node-monitoring-agent's
    /// monitors/*_test.go).
    const LINES: &[(&str, &str)] = &[
        (
            "oom-kill",
            "Out of memory: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12528kB oom_score_adj:0",
        ),
        (
            "oom-kill",
            "Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB",
        ),
        (
            "oom-kill",
            "kernel: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB",
        ),
        (
            "oom-kill",
            "Killed process 215701, UID 679, (java) total-vm:11017300kB, anon-rss:7152432kB, file-rss:1232kB",
        ),
        (
            "oom-kill",
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e,task=java,pid=2592,uid=1000",
        ),
        (
            "memcg-oom-kill",
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e,mems_allowed=0,oom_memcg=/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c,task_memcg=/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e,task=java,pid=2592,uid=1000",
        ),
        (
            "memcg-oom-kill",
            "Memory cgroup out of memory: Killed process 6775 (python3) total-vm:278712kB, anon-rss:32512kB, file-rss:6720kB, shmem-rss:0kB, UID:0 pgtables:128kB oom_score_adj:0",
        ),
        (
            "memcg-oom-kill",
            "Memory cgroup out of memory: Kill process 215701 (java) score 854 or sacrifice child",
        ),
        (
            "memcg-oom-kill",
            "Task in /docker/555fa75e9e7d3e552337365e093719a6ec9379ef98907fca8d6f3328054cdb42 killed as a result of limit of /docker/555fa75e9e7d3e552337365e093719a6ec9379ef98907fca8d6f3328054cdb42",
        ),
        (
            "task-hung",
            "INFO: task kworker/u8:2:1234 blocked for more than 120 seconds.",
        ),
        ("task-hung", "task foo:123 blocked for more than 20s"),
        (
            "task-hung",
            "INFO: task rsync:3199 is blocked on a mutex likely owned by task rsync:3200.",
        ),
        (
            "docker-hung",
            "INFO: task dockerd:1101 blocked for more than 120 seconds.",
        ),
        (
            "aufs-umount-hung",
            "INFO: task umount.aufs:21568 blocked for more than 120 seconds.",
        ),
        (
            "soft-lockup",
            "watchdog: BUG: soft lockup - CPU#6 stuck for 23s! [VM Thread:4054]",
        ),
        (
            "soft-lockup",
            "NMI watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:123]",
        ),
        (
            "hard-lockup",
            "watchdog: Watchdog detected hard LOCKUP on cpu 3",
        ),
        (
            "hard-lockup",
            "watchdog: CPU3: Watchdog detected hard LOCKUP on cpu 3",
        ),
        (
            "rcu-stall",
            "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
        ),
        (
            "rcu-stall",
            "rcu: INFO: rcu_preempt self-detected stall on CPU",
        ),
        ("kernel-oops", "Oops: 0002 [#1] PREEMPT SMP NOPTI"),
        ("kernel-oops", "divide error: 0000 [#1] SMP PTI"),
        (
            "kernel-oops",
            "Oops: divide error: 0000 [#1] PREEMPT SMP NOPTI",
        ),
        ("kernel-oops", "invalid opcode: 0000 [#2] SMP NOPTI"),
        (
            "kernel-oops",
            "Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP",
        ),
        (
            "kernel-oops",
            "BUG: kernel NULL pointer dereference, address: 0000000000000010",
        ),
        (
            "kernel-oops",
            "BUG: unable to handle kernel NULL pointer dereference at 0000000000000010",
        ),
        (
            "kernel-oops",
            "BUG: unable to handle page fault for address: ffffffffc0a8f000",
        ),
        (
            "kernel-oops",
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
        ),
        ("kernel-oops", "kernel BUG at mm/slub.c:4006!"),
        (
            "general-protection-fault",
            "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP PTI",
        ),
        (
            "general-protection-fault",
            "general protection fault: 0000 [#1] SMP",
        ),
        (
            "general-protection-fault",
            "Oops: general protection fault, probably for non-canonical address 0xdffffc0000000006: 0000 [#1] SMP KASAN PTI",
        ),
        (
            "kernel-panic",
            "Kernel panic - not syncing: Fatal exception",
        ),
        (
            "kernel-bug",
            "BUG: scheduling while atomic: swapper/0/0/0x00010000",
        ),
        (
            "kernel-bug",
            "BUG: Bad page state in process kworker/2:1  pfn:1f3a4",
        ),
        (
            "kernel-bug",
            "[Mon Jan 1 12:34:56 2022] BUG: something bad happened",
        ),
        (
            "kernel-bug",
            "watchdog: BUG: soft lockup - CPU#0 stuck for 22s!",
        ),
        (
            "machine-check-exception",
            "mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 4: be00000000800400",
        ),
        (
            "machine-check",
            "mce: [Hardware Error]: Machine check events logged",
        ),
        (
            "machine-check",
            "mce: [Hardware Error]: CPU 2: Machine Check: 0 Bank 3: cc5eb2c000100135",
        ),
        (
            "edac-uncorrected",
            "EDAC MC0: 1 UE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x3f5a1 offset:0x0 grain:32 - area:DRAM err_code:0001:0090 socket:0 ha:0 channel_mask:2 rank:0)",
        ),
        (
            "memory-read-error",
            "CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0",
        ),
        (
            "memory-read-error",
            "EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x0 offset:0x0 grain:32 syndrome:0x0 - area:DRAM err_code:0001:0090)",
        ),
        (
            "edac-corrected",
            "EDAC MC1: 3 CE memory scrubbing error on CPU_SrcID#1_Ha#0_Chan#0_DIMM#0 (channel:0 slot:0 page:0x1 offset:0x0 grain:32 syndrome:0x0)",
        ),
        (
            "cper-hardware-error-fatal",
            "{1}[Hardware Error]: event severity: fatal",
        ),
        (
            "cper-hardware-error-recoverable",
            "{1}[Hardware Error]: event severity: recoverable",
        ),
        (
            "gpu-xid-fatal",
            "NVRM: Xid (PCI:0000:3b:00): 79, pid=1122, GPU has fallen off the bus.",
        ),
        (
            "gpu-xid-fatal",
            "NVRM: Xid (PCI:0000:83:00): 48, pid=9012, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
        ),
        (
            "gpu-xid",
            "NVRM: Xid (PCI:0000:00:06): 31, pid=79749, name=exe, Ch 0000000a, intr 00000000. MMU Fault: ENGINE GRAPHICS GPC2 GPCCLIENT_T1_7 faulted @ 0x2b57_b3000000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_WRITE",
        ),
        (
            "io-error",
            "blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
        ),
        ("io-error", "end_request: I/O error, dev sda, sector 12345"),
        (
            "io-error",
            "I/O error, dev nvme0n1, sector 1000 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2",
        ),
        (
            "io-error",
            "critical medium error, dev sdc, sector 393216 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 0",
        ),
        (
            "io-error",
            "Buffer I/O error on dev nvme1n1, logical block 0, async page read",
        ),
        (
            "io-error",
            "Buffer I/O error on device sda1, logical block 12345",
        ),
        (
            "ext4-error",
            "EXT4-fs error (device nvme1n1): ext4_find_entry:1455: inode #2: comm kubelet: reading directory lblock 0",
        ),
        (
            "ext4-warning",
            "EXT4-fs warning (device sda1): ext4_dx_add_entry:2461: Directory (ino: 1453953) index full, reached max htree level :2",
        ),
        (
            "xfs-shutdown",
            "XFS (sda): Log I/O Error Detected. Shutting down filesystem",
        ),
        (
            "xfs-shutdown",
            "XFS (dm-0): Filesystem has been shut down due to log error (0x2).",
        ),
        (
            "xfs-error",
            "XFS (dm-0): metadata I/O error in \"xfs_trans_read_buf_map\" at daddr 0x2 len 1 error 5",
        ),
        (
            "xfs-error",
            "XFS (nvme1n1): Corruption detected. Unmount and run xfs_repair",
        ),
        (
            "readonly-filesystem",
            "EXT4-fs (nvme0n1p1): Remounting filesystem read-only",
        ),
        (
            "unregister-netdevice",
            "unregister_netdevice: waiting for eth0 to become free. Usage count = 1",
        ),
        (
            "netdev-watchdog",
            "ena 0000:00:05.0 eth0: NETDEV WATCHDOG: CPU: 1: transmit queue 0 timed out 5124 ms",
        ),
        (
            "netdev-watchdog",
            "NETDEV WATCHDOG: eth0 (e1000e): transmit queue 0 timed out",
        ),
        (
            "link-flapping",
            "e1000e 0000:00:19.0 eth0: NIC Link is Down",
        ),
        ("link-flapping", "mlx5_core 0000:3b:00.0 ens1f0: Link down"),
        ("link-flapping", "r8169 0000:02:00.0 enp2s0: Link is Down"),
        (
            "neighbor-table-overflow",
            "neighbour: arp_cache: neighbor table overflow!",
        ),
        ("neighbor-table-overflow", "Neighbour table overflow."),
        (
            "tcp-out-of-memory",
            "TCP: out of memory -- consider tuning tcp_mem",
        ),
        ("tcp-too-many-orphans", "TCP: too many orphaned sockets"),
        (
            "conntrack-table-full",
            "nf_conntrack: nf_conntrack: table full, dropping packet",
        ),
        (
            "conntrack-table-full",
            "ip_conntrack: table full, dropping packet",
        ),
        (
            "core-pipe-limit",
            "coredump: 3345(crashy): over core_pipe_limit, skipping core dump",
        ),
        ("core-pipe-limit", "Pid 3345(crashy) over core_pipe_limit"),
        (
            "rlimit-core-1",
            "coredump: 3346(systemd-coredum): RLIMIT_CORE is set to 1, aborting core",
        ),
        (
            "rlimit-core-1",
            "Process 3346(systemd-coredum) has RLIMIT_CORE set to 1",
        ),
        (
            "pids-fork-rejected",
            "cgroup: fork rejected by pids controller in /kubepods/besteffort/pod1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9/5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100f",
        ),
        ("file-max-reached", "VFS: file-max limit 65536 reached"),
        (
            "gpu-library-segfault",
            "python[12345]: segfault at 0 ip 00007f0a1b2c3d4e sp 00007ffd12345678 error 4 in libcuda.so.535.104.05[7f0a1a000000+2a00000]",
        ),
        (
            "segfault",
            "crashy[3345]: segfault at 0 ip 000055d5c8a4b139 sp 00007ffd4e3c6a60 error 6 in crashy[55d5c8a4b000+1000]",
        ),
        (
            "segfault",
            "[   32.298491][  T896] kexec[896]: segfault at 0 ip 0000000000000000 sp 00007ffeaf0ff420 error 14 in dash[561ac3c57000+4000]",
        ),
        (
            "segfault",
            "segfault at 7ffd4e3c6a60 ip 000055d5c8a4b139 sp 00007ffd4e3c6a60 error 6 in crashy[55d5c8a4b000+1000]",
        ),
        (
            "process-trap",
            "traps: python3[1234] general protection fault ip:7f3b2c1a4e2d sp:7ffc9a0b1c28 error:0 in libc.so.6[7f3b2c100000+195000]",
        ),
        (
            "process-trap",
            "traps: crashy[3345] trap invalid opcode ip:55d5c8a4b139 sp:7ffd4e3c6a60 error:0 in crashy[55d5c8a4b000+1000]",
        ),
        (
            "corrupt-docker-image",
            "Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/overlay2/layerdb/tmp/write-set-123 /var/lib/docker/image/overlay2/layerdb/sha256/abc: directory not empty",
        ),
        (
            "corrupt-docker-overlay2",
            "Handler for GET /containers/json returned error: readlink /var/lib/docker/overlay2/l/ABCDEF: invalid argument",
        ),
        (
            "docker-container-startup-failure",
            "OCI runtime start failed: container process is already dead: unknown",
        ),
        (
            "rootfs-mount-failed",
            r#"error mounting "/var/lib/kubelet/pods/c02d9022-7bc8-4df0-b899-f315edce7112/etc-hosts" to rootfs at "/etc/hosts": mount /var/lib/kubelet/pods/c02d9022-7bc8-4df0-b899-f315edce7112/etc-hosts:/etc/hosts (via /proc/self/fd/6), flags: 0x5000: not a directory: unknown"#,
        ),
        (
            "rootfs-mount-failed",
            r#"E1122 19:20:17.123456    1234 pod_workers.go:1301] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"app\" with RunContainerError: \"failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting \\\"/var/lib/kubelet/pods/5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/volumes/kubernetes.io~configmap/config\\\" to rootfs at \\\"/etc/app\\\": not a directory: unknown\"" pod="default/web-1" podUID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c""#,
        ),
        (
            "rootfs-mount-failed",
            r#"container_linux.go:345: starting container process caused "process_linux.go:430: container init caused \"rootfs_linux.go:58: mounting \\\"/var/lib/kubelet/pods/5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/volumes/y\\\" to rootfs \\\"/var/lib/docker/overlay2/abc/merged\\\" at \\\"/data\\\" caused \\\"not a directory\\\"\"""#,
        ),
        (
            "oci-runtime-create-failed",
            "OCI runtime create failed: unable to retrieve OCI runtime error",
        ),
        (
            "oci-runtime-create-failed",
            r#"E1122 19:20:17.123456    1234 pod_workers.go:1301] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"app\" with RunContainerError: \"failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \\\"/app\\\": permission denied: unknown\"" pod="default/web-1" podUID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c""#,
        ),
        (
            "pleg-not-healthy",
            "E1122 19:20:17.123456    1234 kubelet.go:2359] \"Skipping pod synchronization\" err=\"PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s\"",
        ),
        (
            "pleg-not-healthy",
            "PLEG is not healthy: pleg has yet to be successful",
        ),
        (
            "pod-stuck-terminating",
            r#""Pod still has one or more containers in the non-exited state and will not be removed from desired state" pod="default/a-pod""#,
        ),
        (
            "pod-stuck-terminating",
            "Pod \"web-1_default(5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c)\" still has one or more containers in the non-exited state. Therefore, it will not be removed from desired state.",
        ),
        (
            "container-kill-retries",
            r#"I1012 19:34:45.000152    2480 kuberuntime_container.go:709] "Killing container with a grace period" pod="default/nginx" podUID=27aff94d-e0d9-43d1-84d6-9ab000aa57e2 containerName="nginx" containerID="containerd://4296b9e2377fddb0e7e42d20223c36771268cb7a1828315331405b66f0030add" gracePeriod=30"#,
        ),
        (
            "readiness-probe-failures",
            r#"I1122 19:20:17.123456    1234 prober.go:107] "Probe failed" probeType="Readiness" pod="default/web-1" podUID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c" containerName="web" probeResult="failure" output="Get \"http://10.0.0.5:8080/ready\": dial tcp 10.0.0.5:8080: connect: connection refused""#,
        ),
        (
            "readiness-probe-failures",
            r#"Readiness probe for "foo:bar" failed"#,
        ),
        (
            "liveness-probe-failures",
            r#"I1122 19:20:17.123456    1234 prober.go:107] "Probe failed" probeType="Liveness" pod="default/web-1" podUID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c" containerName="web" probeResult="failure" output="HTTP probe failed with statuscode: 500""#,
        ),
        (
            "liveness-probe-failures",
            r#"Liveness probe for "web-1_default(5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c):web" failed (failure): HTTP probe failed with statuscode: 500"#,
        ),
        (
            "slow-disk-usage-scan",
            "fs: disk usage and inodes count on following dirs took 1.262610491s: [/var/lib/docker/overlay2/709e904d843733d746e5134e55e3c6553db4c0f5297d5e3c3a86c206bcb6b172/diff /var/lib/docker/containers/158725d2d97578713034c5f5c16291a068349b7e989b417324c142bb584f79ad]; will not log again for this container unless duration exceeds 2s",
        ),
        (
            "image-pull-failed",
            r#"E1119 10:04:54.333462   12892 remote_image.go:242] "PullImage from image service failed" err="rpc error: code = Unknown desc = Get \"https://dockerauth.cn-hangzhou.aliyuncs.com/auth\": dial tcp [2408:4005:1000:10::2]:443: connect: network is unreachable" image="registry.aliyuncs.com/google_containers/pause:3.7""#,
        ),
        (
            "image-pull-failed",
            r#"E0620 10:27:34.047988  290854 kuberuntime_image.go:55] "Failed to pull image" err="failed to pull and unpack image \"docker.io/library/nginx-slim:0.8\": failed to resolve reference" image="docker.io/library/nginx-slim:0.8""#,
        ),
        (
            "image-pull-failed",
            r#"time="2026-11-22T19:20:17.123456789Z" level=error msg="PullImage \"docker.io/library/nginx:nope\" failed" error="rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:nope\": not found""#,
        ),
        (
            "image-pull-failed",
            r#"E1122 19:20:17.123456    1234 pod_workers.go:1301] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"web\" with ErrImagePull: \"rpc error: code = NotFound desc = failed to pull and unpack image \\\"docker.io/library/nginx:nope\\\": not found\"" pod="default/web-1" podUID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c""#,
        ),
        (
            "image-pull-backoff",
            r#"E0723 22:57:43.256904  197244 pod_workers.go:1301] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"redis\" with ImagePullBackOff: \"Back-off pulling image \\\"redis:alpine\\\": ErrImagePull: failed to pull and unpack image \\\"docker.io/library/redis:alpine\\\": failed to resolve image: connection refused\"" pod="default/redis" podUID="c21adea0-dbfc-4936-bce2-8db56b48d4fb""#,
        ),
        (
            "kubelet-client-throttling",
            "I1122 19:20:17.123456    1234 request.go:697] Waited for 1.1s due to client-side throttling, not priority and fairness, request: GET:https://10.0.0.1/api/v1/pods",
        ),
        (
            "kubelet-client-throttling",
            r#"I0108 22:38:00.684453  171955 request.go:752] "Waited before sending request" delay="1.002110385s" reason="client-side throttling, not priority and fairness" verb="GET" URL="https://192.168.10.150:6443/api/v1/pods""#,
        ),
        (
            "kubelet-client-throttling",
            "I0719 10:20:17.123456    1234 request.go:600] Throttling request took 1.1s, request: GET:https://10.0.0.1/api/v1/pods",
        ),
        (
            "pthread-create-failed",
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable",
        ),
        (
            "pthread-create-failed",
            "runtime: failed to create new OS thread (have 1029 already; errno=11)",
        ),
        (
            "pthread-create-failed",
            "failed to create new OS thread (foo; errno=11)",
        ),
        (
            "fork-exec-failed",
            r#"E1122 19:20:17.123456    1234 kubelet.go:100] "Failed to run" err="fork/exec /usr/bin/mount: resource temporarily unavailable""#,
        ),
        (
            "no-space-left",
            "failed to create shim task: mkdir /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc: no space left on device",
        ),
        (
            "unit-failed",
            "kubelet.service: Failed with result 'exit-code'.",
        ),
        ("unit-failed", "docker.service: Unit entered failed state."),
        (
            "unit-failed",
            "systemd[1]: Unit kubelet.service entered failed state.",
        ),
        ("unit-start-failed", "Failed to start containerd."),
        (
            "unit-start-failed",
            "Failed to start kubelet.service - kubelet: The Kubernetes Node Agent.",
        ),
        (
            "unit-restart-loop",
            "kubelet.service: Scheduled restart job, restart counter is at 5.",
        ),
        (
            "unit-restart-loop",
            "containerd.service: Scheduled restart job, restart counter is at 12.",
        ),
        (
            "frequent-kubelet-restart",
            "Started kubelet: The Kubernetes Node Agent.",
        ),
        ("frequent-kubelet-restart", "Started Kubernetes Kubelet."),
        (
            "frequent-containerd-restart",
            "Started containerd container runtime.",
        ),
        (
            "frequent-docker-restart",
            "Started Docker Application Container Engine.",
        ),
    ];

    /// (rule, a near miss: a real line of the same family it must not match).
    const NEAR_MISSES: &[(&str, &str)] = &[
        (
            "oom-kill",
            "Memory cgroup out of memory: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB",
        ),
        (
            "oom-kill",
            "oom_reaper: reaped process 2592 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
        ),
        (
            "memcg-oom-kill",
            "Out of memory: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB",
        ),
        (
            "memcg-oom-kill",
            "memory: usage 1048576kB, limit 1048576kB, failcnt 267",
        ),
        (
            "task-hung",
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
        ),
        (
            "task-hung",
            "INFO: task kworker/u8:2:1234 blocked for more than 120 ms",
        ),
        (
            "docker-hung",
            "INFO: task dockerd-ce:1101 blocked for more than 120 seconds.",
        ),
        (
            "aufs-umount-hung",
            "INFO: task umount:21568 blocked for more than 120 seconds.",
        ),
        (
            "soft-lockup",
            "watchdog: BUG: soft lockup - CPU#0 stuck for 22s!",
        ),
        (
            "hard-lockup",
            "NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
        ),
        ("rcu-stall", "rcu: Hierarchical RCU implementation."),
        (
            "kernel-oops",
            "traps: crashy[3345] trap divide error ip:55d5c8a4b139 sp:7ffd4e3c6a60 error:0 in crashy[55d5c8a4b000+1000]",
        ),
        (
            "kernel-oops",
            "Oops: general protection fault, probably for non-canonical address 0xdffffc0000000006: 0000 [#1] SMP KASAN PTI",
        ),
        (
            "general-protection-fault",
            "traps: python3[1234] general protection fault ip:7f3b2c1a4e2d sp:7ffc9a0b1c28 error:0 in libc.so.6[7f3b2c100000+195000]",
        ),
        (
            "kernel-panic",
            "panic: runtime error: invalid memory address or nil pointer dereference",
        ),
        ("kernel-bug", "DEBUG: something"),
        (
            "kernel-bug",
            "watchdog: BUG: soft lockup - CPU#6 stuck for 23s! [VM Thread:4054]",
        ),
        (
            "kernel-bug",
            "BUG: kernel NULL pointer dereference, address: 0000000000000010",
        ),
        (
            "machine-check-exception",
            "mce: [Hardware Error]: CPU 2: Machine Check: 0 Bank 3: cc5eb2c000100135",
        ),
        (
            "machine-check",
            "mce: CPU0: Thermal monitoring enabled (TM1)",
        ),
        (
            "edac-uncorrected",
            "EDAC MC0: Giving out device to module sb_edac controller Haswell SrcID#0_Ha#0: DEV 0000:7f:12.0 (INTERRUPT)",
        ),
        (
            "memory-read-error",
            "EDAC MC0: 1 UE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0)",
        ),
        (
            "edac-corrected",
            "EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0)",
        ),
        (
            "cper-hardware-error-fatal",
            "{1}[Hardware Error]: event severity: corrected",
        ),
        (
            "cper-hardware-error-recoverable",
            "{1}[Hardware Error]: event severity: corrected",
        ),
        (
            "gpu-xid-fatal",
            "NVRM: Xid (PCI:0000:00:06): 31, pid=79749, name=exe, Ch 0000000a",
        ),
        (
            "gpu-xid-fatal",
            "NVRM: Xid (PCI:0000:3b:00): 790, pid=1, made up",
        ),
        (
            "gpu-xid",
            "NVRM: GPU 0000:01:00.0: GPU has fallen off the bus.",
        ),
        (
            "gpu-xid",
            "NVRM: Xid (PCI:0000:3b:00): 79, pid=1122, GPU has fallen off the bus.",
        ),
        (
            "io-error",
            "blk_update_request: operation not supported error, dev loop3, sector 0 op 0x9:(WRITE_ZEROES) flags 0x0 phys_seg 0 prio class 0",
        ),
        ("io-error", "print_req_error: 8 callbacks suppressed"),
        (
            "ext4-error",
            "EXT4-fs (nvme1n1): mounted filesystem with ordered data mode. Opts: (null)",
        ),
        (
            "ext4-warning",
            "EXT4-fs (sda1): warning: mounting fs with errors, running e2fsck is recommended",
        ),
        ("xfs-shutdown", "XFS (sdb1): Ending clean mount"),
        ("xfs-error", "XFS (nvme1n1): Mounting V5 Filesystem"),
        (
            "xfs-error",
            "XFS (sda): Log I/O Error Detected. Shutting down filesystem",
        ),
        (
            "readonly-filesystem",
            "EXT4-fs (nvme0n1p1): re-mounted. Opts: errors=remount-ro",
        ),
        (
            "unregister-netdevice",
            "IPv6: ADDRCONF(NETDEV_CHANGE): veth1234: link becomes ready",
        ),
        (
            "netdev-watchdog",
            "e1000e 0000:00:19.0 eth0: Reset adapter unexpectedly",
        ),
        (
            "link-flapping",
            "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
        ),
        (
            "neighbor-table-overflow",
            "IPv6: ADDRCONF(NETDEV_UP): eth0: link is not ready",
        ),
        (
            "tcp-out-of-memory",
            "TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies.",
        ),
        (
            "tcp-too-many-orphans",
            "TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies.",
        ),
        (
            "conntrack-table-full",
            "nf_conntrack: default automatic helper assignment has been turned off for security reasons",
        ),
        (
            "core-pipe-limit",
            "coredump: 3345(crashy): |/usr/lib/systemd/systemd-coredump pipe failed",
        ),
        (
            "rlimit-core-1",
            "coredump: 3346(crashy): RLIMIT_CORE is set to 0",
        ),
        (
            "pids-fork-rejected",
            "cgroup: cgroup: disabling cgroup2 socket matching due to net_prio or net_cls activation",
        ),
        ("file-max-reached", "VFS: Disk quotas dquot_6.6.0"),
        (
            "gpu-library-segfault",
            "crashy[3345]: segfault at 0 ip 000055d5c8a4b139 sp 00007ffd4e3c6a60 error 6 in crashy[55d5c8a4b000+1000]",
        ),
        (
            "segfault",
            "python[12345]: segfault at 0 ip 00007f0a1b2c3d4e sp 00007ffd12345678 error 4 in libcuda.so.535.104.05[7f0a1a000000+2a00000]",
        ),
        ("segfault", "potentially unexpected fatal signal 11."),
        (
            "process-trap",
            "traps: PANIC: double fault, error_code: 0x0",
        ),
        (
            "corrupt-docker-image",
            "Error trying v2 registry: manifest unknown",
        ),
        (
            "corrupt-docker-overlay2",
            "readlink /var/lib/docker/overlay2/l/ABC: no such file or directory",
        ),
        (
            "docker-container-startup-failure",
            "OCI runtime start failed: exit status 1",
        ),
        (
            "rootfs-mount-failed",
            r#"MountVolume.SetUp failed for volume "config" : configmap "app" not found"#,
        ),
        (
            "oci-runtime-create-failed",
            "OCI runtime start failed: container process is already dead: unknown",
        ),
        (
            "oci-runtime-create-failed",
            r#"error mounting "/var/lib/kubelet/pods/c02d9022-7bc8-4df0-b899-f315edce7112/etc-hosts" to rootfs at "/etc/hosts": OCI runtime create failed"#,
        ),
        (
            "pleg-not-healthy",
            r#""Generic (PLEG): container finished" podID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c" containerID="3f1c9a27" exitCode=0"#,
        ),
        (
            "pod-stuck-terminating",
            r#""Pod has been deleted and must be killed" pod="default/web-1""#,
        ),
        (
            "container-kill-retries",
            r#""Killing unwanted pod" podName="web-1""#,
        ),
        (
            "readiness-probe-failures",
            r#""Probe failed" probeType="Liveness" pod="default/web-1" podUID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c" containerName="web""#,
        ),
        (
            "readiness-probe-failures",
            r#""Probe succeeded with a warning" probeType="Readiness" pod="default/web-1""#,
        ),
        (
            "liveness-probe-failures",
            r#""Probe failed" probeType="Readiness" pod="default/web-1" podUID="5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c" containerName="web""#,
        ),
        (
            "slow-disk-usage-scan",
            r#"failed to collect filesystem stats - rootDiskErr: could not stat "/var/lib/docker/overlay2/x/diff""#,
        ),
        (
            "image-pull-failed",
            r#"time="2026-11-22T19:20:17Z" level=info msg="PullImage \"nginx:1.27\"""#,
        ),
        (
            "image-pull-backoff",
            "Back-off restarting failed container web in pod web-1_default(5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c)",
        ),
        (
            "kubelet-client-throttling",
            r#""Waited before sending request" delay="1s" reason="priority and fairness""#,
        ),
        (
            "pthread-create-failed",
            "runtime/cgo: pthread_create failed: Invalid argument",
        ),
        (
            "fork-exec-failed",
            "fork/exec /usr/bin/mount: no such file or directory",
        ),
        (
            "no-space-left",
            "runtime/cgo: pthread_create failed: No space left on device",
        ),
        (
            "unit-failed",
            "kubelet.service: Main process exited, code=exited, status=1/FAILURE",
        ),
        (
            "unit-start-failed",
            "Started kubelet.service - kubelet: The Kubernetes Node Agent.",
        ),
        (
            "unit-restart-loop",
            "kubelet.service: Scheduled restart job, restart counter is at 2.",
        ),
        (
            "frequent-kubelet-restart",
            "Stopping kubelet: The Kubernetes Node Agent...",
        ),
        (
            "frequent-containerd-restart",
            "Starting containerd container runtime...",
        ),
        (
            "frequent-docker-restart",
            "Stopped Docker Application Container Engine.",
        ),
    ];

    /// Compiled once for all tests (compiling ~80 patterns is slow in a debug build).
    fn pack() -> Arc<RuleSet> {
        static PACK: std::sync::OnceLock<Arc<RuleSet>> = std::sync::OnceLock::new();
        PACK.get_or_init(|| Arc::new(RuleSet::compile(default_rules()).unwrap()))
            .clone()
    }

    /// The rule names one line hits, each line fed alone.
    fn hits(set: &Arc<RuleSet>, line: &str) -> Vec<String> {
        let names: Vec<String> = set.specs().map(|s| s.name.clone()).collect();
        Matcher::new(set)
            .feed(&LogRecord::text(line))
            .iter()
            .map(|h| names[h.rule].clone())
            .collect()
    }

    #[test]
    fn every_rule_compiles_has_a_line_a_near_miss_and_texts() {
        let set = pack();
        for spec in set.specs() {
            assert!(
                LINES.iter().any(|(r, _)| *r == spec.name),
                "{} has no test line",
                spec.name
            );
            assert!(
                NEAR_MISSES.iter().any(|(r, _)| *r == spec.name),
                "{} has no near-miss line",
                spec.name
            );
            assert!(
                !spec.cause.is_empty() && !spec.remedy.is_empty(),
                "{}",
                spec.name
            );
        }
        for (rule, _) in LINES.iter().chain(NEAR_MISSES) {
            assert!(set.specs().any(|s| s.name == *rule), "no rule {rule}");
        }
    }

    #[test]
    fn each_line_matches_its_rule_and_each_near_miss_does_not() {
        let set = pack();
        for (rule, line) in LINES {
            let got = hits(&set, line);
            assert!(
                got.iter().any(|h| h == rule),
                "{rule} did not match {line:?} (got {got:?})"
            );
        }
        for (rule, line) in NEAR_MISSES {
            let got = hits(&set, line);
            assert!(
                !got.iter().any(|h| h == rule),
                "{rule} matched the near miss {line:?}"
            );
        }
    }

    #[test]
    fn the_pack_is_searched_by_its_literals() {
        // Every rule has a literal of 3+ bytes, so candidate lines are found by one
        // multi-literal search over the buffer (no per-line regex, no DFA over every byte).
        assert_eq!(Matcher::new(&pack()).search_mode(), "literals");
    }

    fn subject(line: &str, rule: &str) -> crate::finding::Subject {
        let set = pack();
        let names: Vec<String> = set.specs().map(|s| s.name.clone()).collect();
        Matcher::new(&set)
            .with_options(MatchOptions {
                strip_prefix: true,
                ..MatchOptions::default()
            })
            .feed(&LogRecord::text(line))
            .into_iter()
            .find(|h| names[h.rule] == rule)
            .and_then(|h| h.subject)
            .unwrap_or_else(|| panic!("{rule}: no subject from {line:?}"))
    }

    fn line(rule: &str, nth: usize) -> &'static str {
        LINES
            .iter()
            .filter(|(r, _)| *r == rule)
            .nth(nth)
            .map(|(_, l)| *l)
            .unwrap()
    }

    #[test]
    fn subjects_are_named() {
        let s = subject(line("memcg-oom-kill", 0), "memcg-oom-kill");
        assert_eq!(
            (s.pid, s.comm.as_deref(), s.uid),
            (Some(2592), Some("java"), Some(1000))
        );
        assert_eq!(s.pod.as_deref(), Some(POD));
        let s = subject(line("memcg-oom-kill", 1), "memcg-oom-kill");
        assert_eq!(
            (s.pid, s.comm.as_deref(), s.uid),
            (Some(6775), Some("python3"), None)
        );
        let s = subject(line("oom-kill", 3), "oom-kill");
        assert_eq!(
            (s.pid, s.uid, s.comm.as_deref()),
            (Some(215701), Some(679), Some("java"))
        );
        let s = subject(line("oom-kill", 4), "oom-kill");
        assert_eq!(
            (s.kind, s.container_id.as_deref()),
            (SubjectKind::Container, Some(CID))
        );
        let s = subject(line("task-hung", 0), "task-hung");
        assert_eq!(
            (s.pid, s.comm.as_deref()),
            (Some(1234), Some("kworker/u8:2"))
        );
        let s = subject(line("soft-lockup", 0), "soft-lockup");
        assert_eq!((s.pid, s.comm.as_deref()), (Some(4054), Some("VM Thread")));
        let s = subject(line("pids-fork-rejected", 0), "pids-fork-rejected");
        assert_eq!(
            s.container_id.as_deref(),
            Some("5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100f")
        );
        for (rule, nth, device) in [
            ("io-error", 0, "sdb"),
            ("io-error", 1, "sda"),
            ("io-error", 2, "nvme0n1"),
            ("io-error", 3, "sdc"),
            ("io-error", 4, "nvme1n1"),
            ("io-error", 5, "sda1"),
            ("ext4-error", 0, "nvme1n1"),
            ("xfs-error", 0, "dm-0"),
            ("xfs-shutdown", 0, "sda"),
            ("readonly-filesystem", 0, "nvme0n1p1"),
            ("netdev-watchdog", 0, "eth0"),
            ("netdev-watchdog", 1, "eth0"),
            ("link-flapping", 1, "ens1f0"),
            ("edac-uncorrected", 0, "MC0"),
            ("gpu-xid-fatal", 0, "PCI:0000:3b:00"),
            ("unregister-netdevice", 0, "eth0"),
        ] {
            let s = subject(line(rule, nth), rule);
            assert_eq!(s.device.as_deref(), Some(device), "{rule} #{nth}");
        }
        let s = subject(line("io-error", 0), "io-error");
        assert_eq!(s.kind, SubjectKind::Device);
        for (rule, nth, comm, pid) in [
            ("segfault", 0, Some("crashy"), Some(3345)),
            ("segfault", 1, Some("kexec"), Some(896)),
            ("segfault", 2, None, None),
            ("core-pipe-limit", 0, Some("crashy"), Some(3345)),
            ("process-trap", 0, Some("python3"), Some(1234)),
            ("gpu-library-segfault", 0, Some("python"), Some(12345)),
            ("gpu-xid-fatal", 1, Some("python"), Some(9012)),
        ] {
            let set = pack();
            let names: Vec<String> = set.specs().map(|s| s.name.clone()).collect();
            let hit = Matcher::new(&set)
                .with_options(MatchOptions {
                    strip_prefix: true,
                    ..MatchOptions::default()
                })
                .feed(&LogRecord::text(line(rule, nth)))
                .into_iter()
                .find(|h| names[h.rule] == rule)
                .unwrap();
            let s = hit
                .subject
                .unwrap_or(crate::finding::Subject::new(SubjectKind::Device));
            assert_eq!((s.comm.as_deref(), s.pid), (comm, pid), "{rule} #{nth}");
        }
        for (rule, nth, unit) in [
            ("unit-failed", 0, "kubelet.service"),
            ("unit-failed", 1, "docker.service"),
            ("unit-failed", 2, "kubelet.service"),
            ("unit-start-failed", 1, "kubelet.service"),
            ("unit-restart-loop", 0, "kubelet.service"),
        ] {
            let s = subject(line(rule, nth), rule);
            assert_eq!(
                (s.kind, s.unit.as_deref()),
                (SubjectKind::Unit, Some(unit)),
                "{rule}"
            );
        }
        for (rule, nth, image) in [
            (
                "image-pull-failed",
                0,
                "registry.aliyuncs.com/google_containers/pause:3.7",
            ),
            ("image-pull-failed", 1, "docker.io/library/nginx-slim:0.8"),
            ("image-pull-failed", 2, "docker.io/library/nginx:nope"),
            ("image-pull-failed", 3, "docker.io/library/nginx:nope"),
            ("image-pull-backoff", 0, "redis:alpine"),
        ] {
            let s = subject(line(rule, nth), rule);
            assert_eq!(s.image.as_deref(), Some(image), "{rule} #{nth}");
        }
        // Pods by namespace/name (klog.KObj), the old name_namespace(uid), and the pod uid
        // in a kubelet volume path.
        for (rule, nth, ns, name, uid, container) in [
            (
                "readiness-probe-failures",
                0,
                Some("default"),
                Some("web-1"),
                Some(POD),
                Some("web"),
            ),
            (
                "readiness-probe-failures",
                1,
                None,
                Some("foo"),
                None,
                Some("bar"),
            ),
            (
                "liveness-probe-failures",
                1,
                Some("default"),
                Some("web-1"),
                Some(POD),
                Some("web"),
            ),
            (
                "pod-stuck-terminating",
                0,
                Some("default"),
                Some("a-pod"),
                None,
                None,
            ),
            (
                "pod-stuck-terminating",
                1,
                Some("default"),
                Some("web-1"),
                Some(POD),
                None,
            ),
            (
                "image-pull-backoff",
                0,
                Some("default"),
                Some("redis"),
                Some("c21adea0-dbfc-4936-bce2-8db56b48d4fb"),
                Some("redis"),
            ),
            (
                "image-pull-failed",
                3,
                Some("default"),
                Some("web-1"),
                Some(POD),
                Some("web"),
            ),
            (
                "oci-runtime-create-failed",
                1,
                Some("default"),
                Some("web-1"),
                Some(POD),
                Some("app"),
            ),
            (
                "rootfs-mount-failed",
                0,
                None,
                None,
                Some("c02d9022-7bc8-4df0-b899-f315edce7112"),
                None,
            ),
            ("rootfs-mount-failed", 2, None, None, Some(POD), None),
        ] {
            let s = subject(line(rule, nth), rule);
            assert_eq!(
                (
                    s.namespace.as_deref(),
                    s.pod_name.as_deref(),
                    s.pod.as_deref(),
                    s.container_name.as_deref()
                ),
                (ns, name, uid, container),
                "{rule} #{nth}"
            );
        }
        let s = subject(line("rootfs-mount-failed", 0), "rootfs-mount-failed");
        assert_eq!(s.path.as_deref(), Some("/etc/hosts"));
        let s = subject(line("rootfs-mount-failed", 1), "rootfs-mount-failed");
        assert_eq!(s.path.as_deref(), Some("/etc/app"));
        let s = subject(line("container-kill-retries", 0), "container-kill-retries");
        assert_eq!(
            (
                s.kind,
                s.container_id.as_deref(),
                s.container_name.as_deref()
            ),
            (
                SubjectKind::Container,
                Some("4296b9e2377fddb0e7e42d20223c36771268cb7a1828315331405b66f0030add"),
                Some("nginx")
            )
        );
    }

    /// The finding of a rule after feeding `lines` (each a record with a time).
    fn finding(rule: &str, lines: &[(u64, &str)]) -> Option<Finding> {
        let set = pack();
        let mut m = Matcher::new(&set);
        for (t, l) in lines {
            let mut r = LogRecord::text(*l);
            r.time_ms = Some(*t);
            m.feed(&r);
        }
        m.findings("log-monitor", "kmsg")
            .into_iter()
            .find(|f| f.log.as_ref().is_some_and(|l| l.rule == rule))
    }

    #[test]
    fn numbers_in_the_lines_become_measures() {
        let m = |f: &Finding, n: &str| f.measure(n).map(|m| (m.value, m.unit));
        use crate::finding::Unit::{Count, Seconds};
        let f = finding("gpu-xid-fatal", &[(0, line("gpu-xid-fatal", 0))]).unwrap();
        assert_eq!(m(&f, "xid"), Some((79.0, Count)));
        let f = finding("io-error", &[(0, line("io-error", 0))]).unwrap();
        assert_eq!(m(&f, "sector"), Some((2048.0, Count)));
        let f = finding("io-error", &[(0, line("io-error", 5))]).unwrap();
        assert_eq!(m(&f, "block"), Some((12345.0, Count)));
        let f = finding("soft-lockup", &[(0, line("soft-lockup", 0))]).unwrap();
        assert_eq!(m(&f, "stuck_seconds"), Some((23.0, Seconds)));
        assert_eq!(m(&f, "cpu"), Some((6.0, Count)));
        let f = finding("task-hung", &[(0, line("task-hung", 0))]).unwrap();
        assert_eq!(m(&f, "blocked_seconds"), Some((120.0, Seconds)));
        let f = finding("pleg-not-healthy", &[(0, line("pleg-not-healthy", 0))]).unwrap();
        assert_eq!(m(&f, "ago"), Some((180.5, Seconds)));
        let f = finding(
            "slow-disk-usage-scan",
            &[(0, line("slow-disk-usage-scan", 0))],
        )
        .unwrap();
        let took = f.measure("took").unwrap();
        assert!((took.value - 1.262610491).abs() < 1e-9 && took.unit == Seconds);
        let f = finding("unit-restart-loop", &[(0, line("unit-restart-loop", 1))]).unwrap();
        assert_eq!(m(&f, "restart_counter"), Some((12.0, Count)));
        let f = finding("kernel-oops", &[(0, line("kernel-oops", 3))]).unwrap();
        assert_eq!(m(&f, "die_count"), Some((2.0, Count)));
    }

    #[test]
    fn one_line_one_finding_where_rules_overlap() {
        let set = pack();
        // The specific rule takes the line from the generic one.
        for (line, only, not) in [
            (line("soft-lockup", 0), "soft-lockup", "kernel-bug"),
            (line("kernel-oops", 5), "kernel-oops", "kernel-bug"),
            (line("gpu-xid-fatal", 0), "gpu-xid-fatal", "gpu-xid"),
            (
                line("gpu-library-segfault", 0),
                "gpu-library-segfault",
                "segfault",
            ),
            (line("xfs-shutdown", 0), "xfs-shutdown", "xfs-error"),
            (
                line("memory-read-error", 1),
                "memory-read-error",
                "edac-corrected",
            ),
            (
                line("rootfs-mount-failed", 1),
                "rootfs-mount-failed",
                "oci-runtime-create-failed",
            ),
            (
                "runtime/cgo: pthread_create failed: No space left on device",
                "pthread-create-failed",
                "no-space-left",
            ),
        ] {
            let got = hits(&set, line);
            assert!(
                got.iter().any(|h| h == only) && !got.iter().any(|h| h == not),
                "{got:?} for {line:?}"
            );
        }
        // Two patterns of one rule: one hit.
        let got = hits(&set, line("readonly-filesystem", 0));
        assert_eq!(
            got.iter().filter(|h| *h == "readonly-filesystem").count(),
            1
        );
    }

    #[test]
    fn an_oom_kill_over_several_lines_is_one_finding_naming_the_container() {
        // 5.x+ memcg kill: the summary, then the kill line (both on this machine's kernel).
        let f = finding(
            "memcg-oom-kill",
            &[(0, line("memcg-oom-kill", 0)), (1, "Memory cgroup out of memory: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12528kB oom_score_adj:0")],
        )
        .unwrap();
        assert_eq!(f.log.as_ref().unwrap().count, 2);
        assert_eq!(f.subjects[0].container_id.as_deref(), Some(CID));
        assert_eq!(f.subjects[0].pid, Some(2592));
        // Before 4.19: "Task in", then "Kill process", then an unprefixed "Killed process"
        // that the global rule would take: one memcg finding, with the container of the
        // first line and the pid of the others.
        let set = pack();
        let mut m = Matcher::new(&set);
        for l in [
            "Task in /kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e killed as a result of limit of /kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c",
            "memory: usage 204800kB, limit 204800kB, failcnt 4563",
            "Memory cgroup out of memory: Kill process 4242 (java) score 1000 or sacrifice child",
            "Killed process 4242 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB",
        ] {
            m.feed(&LogRecord::text(l));
        }
        let f = m.findings("log-monitor", "kmsg");
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].log.as_ref().unwrap().rule, "memcg-oom-kill");
        assert_eq!(f[0].log.as_ref().unwrap().count, 3);
        assert_eq!(
            (
                f[0].subjects[0].pid,
                f[0].subjects[0].container_id.as_deref()
            ),
            (Some(4242), Some(CID))
        );
        // A global kill stays global; the next, unrelated kill is its own finding.
        let mut m = Matcher::new(&set);
        m.feed(&LogRecord::text(line("oom-kill", 4)));
        m.feed(&LogRecord::text(line("oom-kill", 0)));
        m.feed(&LogRecord::text(
            "Out of memory: Killed process 777 (python) total-vm:1kB, anon-rss:1kB, file-rss:0kB",
        ));
        let f = m.findings("log-monitor", "kmsg");
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|f| f.log.as_ref().unwrap().rule == "oom-kill"));
    }

    #[test]
    fn a_pods_fork_storm_is_one_finding_listing_its_cgroups() {
        let set = pack();
        let mut m = Matcher::new(&set);
        let pod = "pod1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9";
        for c in ["aaaa", "bbbb", "cccc"] {
            m.feed(&LogRecord::text(format!(
                "cgroup: fork rejected by pids controller in /kubepods/besteffort/{pod}/{c}"
            )));
        }
        m.feed(&LogRecord::text(format!(
            "cgroup: fork rejected by pids controller in /kubepods/besteffort/{pod}"
        )));
        m.feed(&LogRecord::text(
            "cgroup: fork rejected by pids controller in /system.slice/containerd.service",
        ));
        let f = m.findings("log-monitor", "kmsg");
        assert_eq!(f.len(), 2, "the pod, and containerd's own cgroup");
        let pod_f = f
            .iter()
            .find(|f| f.subjects[0].kind == SubjectKind::Pod)
            .unwrap();
        assert_eq!(
            pod_f.key,
            "log-monitor/rule:pids-fork-rejected/pod:1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"
        );
        assert_eq!(pod_f.measure("cgroups").unwrap().value, 4.0);
        assert_eq!(pod_f.log.as_ref().unwrap().count, 4);
        let ids: Vec<Option<&str>> = pod_f.subjects[1..]
            .iter()
            .map(|s| s.container_id.as_deref())
            .collect();
        assert_eq!(ids, vec![Some("aaaa"), Some("bbbb"), Some("cccc"), None]);
    }

    #[test]
    fn counter_rules_of_the_pack_fire_at_their_count() {
        let l = line("link-flapping", 0);
        assert!(finding("link-flapping", &[(0, l), (60_000, l)]).is_none());
        let f = finding("link-flapping", &[(0, l), (60_000, l), (120_000, l)]).unwrap();
        assert_eq!(f.subjects[0].device.as_deref(), Some("eth0"));
        let p = line("readiness-probe-failures", 0);
        let times: Vec<(u64, &str)> = (0..5).map(|i| (i * 10_000, p)).collect();
        let f = finding("readiness-probe-failures", &times).unwrap();
        assert_eq!(f.measure("lines").unwrap().limit, Some(5.0));
        assert!(finding("readiness-probe-failures", &times[..4]).is_none());
        let k = line("container-kill-retries", 0);
        assert!(finding("container-kill-retries", &[(0, k), (1000, k), (2000, k)]).is_some());
    }

    #[test]
    fn daemons_complaining_name_themselves() {
        // The syslog tag (file) or the journal's _COMM/_PID: who could not create a thread.
        let s = subject(
            "Nov 22 19:20:17 node-7 containerd[812]: runtime: failed to create new OS thread (have 1029 already; errno=11)",
            "pthread-create-failed",
        );
        assert_eq!(
            (s.kind, s.comm.as_deref(), s.pid),
            (SubjectKind::Process, Some("containerd"), Some(812))
        );
        let set = pack();
        let names: Vec<String> = set.specs().map(|s| s.name.clone()).collect();
        let mut r = LogRecord::text(line("fork-exec-failed", 0));
        r.fields.insert("_COMM".into(), "kubelet".into());
        r.fields.insert("_PID".into(), "1234".into());
        let h = Matcher::new(&set)
            .feed(&r)
            .into_iter()
            .find(|h| names[h.rule] == "fork-exec-failed")
            .unwrap();
        let s = h.subject.unwrap();
        assert_eq!(
            (s.comm.as_deref(), s.pid, s.path.as_deref()),
            (Some("kubelet"), Some(1234), Some("/usr/bin/mount"))
        );
        // systemd's job lines name the unit in the journal's UNIT field.
        let mut r = LogRecord::text("Failed to start containerd container runtime.");
        r.fields.insert("UNIT".into(), "containerd.service".into());
        let h = Matcher::new(&set)
            .feed(&r)
            .into_iter()
            .find(|h| names[h.rule] == "unit-start-failed")
            .unwrap();
        assert_eq!(
            h.subject.unwrap().unit.as_deref(),
            Some("containerd.service")
        );
    }

    /// Noise of a busy node (bench/logs/gen_kernlog.py's), for the buffer search to skip.
    const NOISE: &[&str] = &[
        "IPv6: ADDRCONF(NETDEV_CHANGE): veth1a2b3c4d: link becomes ready",
        "cni0: port 3(veth1a2b3c4d) entered forwarding state",
        "audit: type=1400 audit(1700000000.123:42): apparmor=\"STATUS\" operation=\"profile_load\"",
        "blk_update_request: operation not supported error, dev loop3, sector 0 op 0x9:(WRITE_ZEROES) flags 0x0 phys_seg 0 prio class 0",
        "EXT4-fs (nvme1n1): mounted filesystem with ordered data mode. Opts: (null)",
        "",
        "   ",
        "Started Session 12 of User root.",
        "kubelet.service: Scheduled restart job, restart counter is at 1.",
    ];

    #[test]
    fn searching_the_buffer_finds_what_line_by_line_matching_finds() {
        // Every positive and near-miss line among noise, some with syslog prefixes, fed
        // record by record and as buffers cut at arbitrary line boundaries: the same findings.
        let set = pack();
        let mut lines: Vec<String> = Vec::new();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (i, l) in LINES.iter().chain(NEAR_MISSES).map(|(_, l)| *l).enumerate() {
            for _ in 0..(next() % 4) {
                lines.push(NOISE[(next() % NOISE.len() as u64) as usize].to_string());
            }
            lines.push(match i % 3 {
                0 => format!(
                    "Nov 22 19:{:02}:17 node-7 kernel: [{i:5}.123456] {l}",
                    i % 60
                ),
                1 => format!("2026-11-22T19:20:17.123456+00:00 node-7 kubelet[1234]: {l}"),
                _ => l.to_string(),
            });
        }
        let opts = MatchOptions {
            strip_prefix: true,
            ..MatchOptions::default()
        };
        let summary = |m: &Matcher| {
            let mut v: Vec<(String, u64)> = m
                .findings("log-monitor", "file:x")
                .into_iter()
                .map(|f| (f.key.clone(), f.log.unwrap().count))
                .collect();
            v.sort();
            v
        };
        let mut one = Matcher::new(&set).with_options(opts.clone());
        for l in &lines {
            one.feed(&LogRecord::text(l.clone()));
        }
        for cut_every in [1usize, 7, 1000] {
            let mut buf = Matcher::new(&set).with_options(opts.clone());
            let mut hits = 0;
            for chunk in lines.chunks(cut_every) {
                let mut text = chunk.join("\n");
                text.push('\n');
                hits += buf
                    .feed_lines(text.as_bytes(), &mut |b| {
                        Some(LogRecord::text(String::from_utf8_lossy(b).into_owned()))
                    })
                    .len();
            }
            assert!(hits > LINES.len() / 2);
            assert_eq!(buf.lines, lines.len() as u64);
            assert_eq!(summary(&buf), summary(&one), "chunks of {cut_every} lines");
            // The same buffers searched by a finder (another thread's, in a one-shot read of
            // a large file) and fed as what it found.
            let mut searched = Matcher::new(&set).with_options(opts.clone());
            let mut finder = searched
                .line_finder()
                .expect("no multi-line rule in the pack");
            for chunk in lines.chunks(cut_every) {
                let mut text = chunk.join("\n");
                text.push('\n');
                let mut found = Vec::new();
                finder.find(text.as_bytes(), &mut |s, e| {
                    found.push((s as u64, &text.as_bytes()[s..e]));
                });
                searched.feed_searched(text.len() as u64, chunk.len() as u64, found, &mut |b| {
                    Some(LogRecord::text(String::from_utf8_lossy(b).into_owned()))
                });
            }
            assert_eq!(searched.lines, lines.len() as u64);
            assert_eq!(
                summary(&searched),
                summary(&one),
                "searched chunks of {cut_every}"
            );
        }
    }
}
