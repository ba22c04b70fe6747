/* The floor for node-doctor's process scan: the same five reads per process (stat, status,
 * cgroup, limits, and the fd directory listed), in a plain C loop with openat relative to
 * /proc/PID, no parsing beyond counting. bench/scan.sh runs it beside `ps` and
 * node-doctor: what node-doctor pays over this is its own overhead.
 *
 *   minimal_reader [PROC_DIR]   (default /proc); prints processes read and fds counted */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char buf[1 << 16];

static long read_file(int dir, const char *name) {
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
    close(fd);
    return total;
}

static long count_fds(int dir) {
    int fd = openat(dir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) { close(fd); return -1; }
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] >= '0' && e->d_name[0] <= '9') n++;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    const char *proc = argc > 1 ? argv[1] : "/proc";
    int procfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0) { perror(proc); return 2; }
    DIR *d = fdopendir(dup(procfd));
    if (!d) { perror("fdopendir"); return 2; }
    long processes = 0, fds = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        int dir = openat(procfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0) continue;
        if (read_file(dir, "stat") >= 0) {
            read_file(dir, "status");
            read_file(dir, "cgroup");
            read_file(dir, "limits");
            long n = count_fds(dir);
            if (n > 0) fds += n;
            processes++;
        }
        close(dir);
    }
    closedir(d);
    printf("%ld processes, %ld fds\n", processes, fds);
    return 0;
}
