/*
 * stepcount.c - counts the user-mode instructions one thread executes between markers, by
 * single-stepping it with ptrace. bench/model.sh uses it because neither valgrind nor
 * hardware counters can measure ROCr's model mode here: libhsakmt's model mode reserves a
 * 256 GiB aperture (MODEL_APERTURE_SIZE, 1 << 38), and under valgrind 3.19 any single
 * reservation of 64 GiB or more fails ("model: Failed to reserve aperture via mmap");
 * `perf stat -e instructions` reports <not supported> in this VM.
 *
 *   stepcount MARKERS PROG [ARGS...]
 *
 * Runs PROG traced (only the thread that execs: threads it creates are not traced and run
 * freely). PROG marks the regions to count by executing `int3`; stepcount runs it freely
 * to the first marker, then single-steps, printing "segment K steps=S" at each further
 * marker, and lets it run freely again after marker number MARKERS (model_pairs executes 3
 * when MODEL_PAIRS_MARK=1). With each segment it prints where the steps were, by the file
 * of the executable mapping holding the instruction ("segment K file=libc.so.6 steps=S",
 * from /proc/PID/maps; "[vdso]", "[anon]" for others). Exit status: PROG's.
 *
 * A step is one instruction executed in user mode, except that each iteration of a
 * rep-prefixed string instruction traps separately (as callgrind counts them too); a
 * syscall instruction is one step, the kernel's work is not counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "stepcount: %s: %s\n", what, strerror(errno));
    exit(125);
}

/* Waits for the tracee; returns the stop signal, or -1 after the tracee exited (status in
 * *code). */
static int wait_stop(pid_t pid, int *code)
{
    int st;
    if (waitpid(pid, &st, __WALL) < 0)
        die("waitpid");
    if (WIFEXITED(st)) {
        *code = WEXITSTATUS(st);
        return -1;
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "stepcount: program killed by signal %d\n", WTERMSIG(st));
        *code = 128 + WTERMSIG(st);
        return -1;
    }
    return WSTOPSIG(st);
}

/* Executable mappings of the tracee, and steps per file in the current segment. */
#define MAX_MAPS 512
#define MAX_FILES 64
static struct map {
    unsigned long start, end;
    int file;
} maps[MAX_MAPS];
static int nmaps;
static char files[MAX_FILES][64];
static unsigned long long file_steps[MAX_FILES];
static int nfiles;

static int file_index(const char *name)
{
    for (int i = 0; i < nfiles; i++)
        if (!strcmp(files[i], name))
            return i;
    if (nfiles == MAX_FILES)
        return MAX_FILES - 1; /* the last bucket collects the rest */
    snprintf(files[nfiles], sizeof files[nfiles], "%s", name);
    return nfiles++;
}

static void read_maps(pid_t pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die(path);
    nmaps = 0;
    while (nmaps < MAX_MAPS && fgets(line, sizeof line, f)) {
        unsigned long start, end;
        char perms[8];
        int off = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &off) < 3 ||
            perms[2] != 'x')
            continue;
        char *name = line + off;
        name[strcspn(name, "\n")] = 0;
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : *name ? name : "[anon]";
        maps[nmaps++] = (struct map){start, end, file_index(base)};
    }
    fclose(f);
}

static unsigned long read_ip(pid_t pid)
{
    errno = 0;
    unsigned long ip = (unsigned long)ptrace(PTRACE_PEEKUSER, pid,
                                             offsetof(struct user_regs_struct, rip), 0);
    if (errno)
        die("PTRACE_PEEKUSER");
    return ip;
}

/* Counts one step of the instruction at ip. */
static void count_step(pid_t pid, unsigned long ip)
{
    static int last = -1;
    if (last >= 0 && ip >= maps[last].start && ip < maps[last].end) {
        file_steps[maps[last].file]++;
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < nmaps; i++)
            if (ip >= maps[i].start && ip < maps[i].end) {
                last = i;
                file_steps[maps[i].file]++;
                return;
            }
        read_maps(pid); /* a library mapped since the last read */
    }
    last = -1;
    file_steps[file_index("[unmapped]")]++;
}

/* Whether the SIGTRAP stop came from an int3 marker (not from a single step). */
static int is_marker(pid_t pid)
{
    siginfo_t si;
    if (ptrace(PTRACE_GETSIGINFO, pid, 0, &si) < 0)
        die("PTRACE_GETSIGINFO");
    return si.si_code == SI_KERNEL;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long markers = argc > 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc < 3 || *end || markers < 1) {
        fprintf(stderr, "usage: stepcount MARKERS PROG [ARGS...]  (MARKERS >= 1)\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
            die("PTRACE_TRACEME");
        execv(argv[2], argv + 2);
        die(argv[2]);
    }
    int code = 0;
    int sig = wait_stop(pid, &code); /* the SIGTRAP of execve */
    if (sig < 0)
        return code;
    if (ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_EXITKILL) < 0)
        die("PTRACE_SETOPTIONS");

    long segment = 0; /* 0: before the first marker; markers: after the last */
    int deliver = 0;  /* a signal to pass on to the tracee */
    unsigned long long steps = 0;
    unsigned long ip = 0; /* the instruction the next step executes */
    for (;;) {
        enum __ptrace_request req =
            segment == 0 || segment >= markers ? PTRACE_CONT : PTRACE_SINGLESTEP;
        if (ptrace(req, pid, 0, (void *)(long)deliver) < 0)
            die("ptrace resume");
        deliver = 0;
        sig = wait_stop(pid, &code);
        if (sig < 0)
            break;
        if (sig != SIGTRAP) {
            deliver = sig; /* the program's own signal: pass it on */
            continue;
        }
        if (is_marker(pid)) {
            if (segment > 0 && segment < markers) {
                printf("segment %ld steps=%llu\n", segment, steps);
                for (int i = 0; i < nfiles; i++)
                    if (file_steps[i])
                        printf("segment %ld file=%s steps=%llu\n", segment, files[i],
                               file_steps[i]);
            }
            memset(file_steps, 0, sizeof file_steps);
            fflush(stdout);
            segment++;
            steps = 0;
            if (segment < markers)
                ip = read_ip(pid);
            continue;
        }
        if (segment > 0 && segment < markers) {
            count_step(pid, ip);
            ip = read_ip(pid);
            steps++;
        } else
            deliver = SIGTRAP; /* a trap of the program's own, outside the measured part */
    }
    return code;
}
