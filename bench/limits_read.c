/* What the process scan's limits cost the kernel, per way of asking: for every process in
 * PROC_DIR, open /proc/PID and then
 *   limits   read the `limits` file (the kernel formats all 16 limits as text),
 *   prlimit  prlimit(2) twice with no new limit (RLIMIT_NOFILE, RLIMIT_CORE),
 *   status   read `status` (for scale: the scan reads it anyway).
 * Run the three alternately over the same process table (bench/spawn_idle.py N), e.g.
 *   gcc -O2 -o /tmp/limits_read bench/limits_read.c
 *   for r in 1 2 3 4 5; do for m in limits prlimit status; do /tmp/limits_read $m; done; done
 * prlimit of another user's process needs CAP_SYS_RESOURCE; spawn_idle.py's children are
 * the caller's. Prints the mode, processes and wall time. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void read_all(int dir, const char *name) {
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    while (read(fd, buf, sizeof buf) > 0) {}
    close(fd);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "limits";
    const char *proc = argc > 2 ? argv[2] : "/proc";
    int procfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0) { perror(proc); return 2; }
    DIR *d = fdopendir(dup(procfd));
    if (!d) { perror("fdopendir"); return 2; }
    static int pids[1 << 20];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < (1 << 20))
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9') pids[n++] = atoi(e->d_name);
    closedir(d);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        char p[16];
        snprintf(p, sizeof p, "%d", pids[i]);
        int dir = openat(procfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0) continue;
        if (!strcmp(mode, "prlimit")) {
            struct rlimit r;
            prlimit(pids[i], RLIMIT_NOFILE, NULL, &r);
            prlimit(pids[i], RLIMIT_CORE, NULL, &r);
        } else {
            read_all(dir, !strcmp(mode, "status") ? "status" : "limits");
        }
        close(dir);
    }
    printf("%s: %d processes, %.1f ms\n", mode, n, (now() - t0) * 1e3);
    return 0;
}
