// Records which pages of node-doctor's own text a run executes (bench/layout/run.sh).
//
// Loaded with LD_PRELOAD. Its constructor runs before the executable's own code: it takes
// every permission off node-doctor's text mapping (the r-xp mapping of a file whose path
// holds PAGE_TRACE_MATCH, default "node-doctor") and catches the SIGSEGV of each first
// touch, records the page and gives it back PROT_READ|PROT_EXEC. Page granularity is what
// the kernel maps, and this sees each page touched, whatever the page cache holds: a
// plain read of /proc/PID/pagemap cannot, because a fault maps the pages around it too
// (fault-around, 64 KiB; on 6.18 a large folio whole).
//
// Rust's std installs its stack-overflow SIGSEGV handler only where the handler is still
// SIG_DFL, so this one stays. A fault outside the text restores the default action and
// returns, so the fault recurs and kills the process as it would have.
//
// At exit (a destructor: exit(3), not _exit) it writes one line per page touched, the
// page's file offset in hex, to PAGE_TRACE_OUT.PID, one file per process (children that
// inherit LD_PRELOAD write their own). Pages are sysconf's size; symbol_order.py assumes
// 4 KiB (x86_64's).
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned long text_lo, text_hi, text_off, page_size = 4096;
static unsigned char *touched;

static void on_fault(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    unsigned long page = (unsigned long)si->si_addr & ~(page_size - 1);
    // A page given back returns to the faulting instruction; one that cannot be (mprotect
    // failed) must not fault forever: the default action then ends the run.
    if (touched && page >= text_lo && page < text_hi &&
        mprotect((void *)page, page_size, PROT_READ | PROT_EXEC) == 0) {
        touched[(page - text_lo) / page_size] = 1;
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &dfl, NULL);
}

__attribute__((constructor)) static void trace_start(void) {
    const char *match = getenv("PAGE_TRACE_MATCH");
    if (!match) match = "node-doctor";
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return;
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, off;
        char perm[8], path[4096] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &lo, &hi, perm, &off, path) < 4)
            continue;
        if (strcmp(perm, "r-xp") == 0 && strstr(path, match)) {
            text_lo = lo;
            text_hi = hi;
            text_off = off;
            break;
        }
    }
    fclose(maps);
    if (!text_hi) return;
    page_size = (unsigned long)sysconf(_SC_PAGESIZE);
    touched = calloc((text_hi - text_lo) / page_size, 1);
    if (!touched) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    mprotect((void *)text_lo, text_hi - text_lo, PROT_NONE);
}

__attribute__((destructor)) static void trace_write(void) {
    const char *out = getenv("PAGE_TRACE_OUT");
    if (!out || !touched) return;
    char name[4096];
    snprintf(name, sizeof name, "%s.%d", out, (int)getpid());
    FILE *f = fopen(name, "w");
    if (!f) return;
    for (unsigned long p = 0; p < (text_hi - text_lo) / page_size; p++)
        if (touched[p]) fprintf(f, "%lx\n", text_off + p * page_size);
    fclose(f);
}
