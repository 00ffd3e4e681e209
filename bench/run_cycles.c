/* bench/run_cycles.c - runs a command several times and reports its wall and CPU time.
 *
 * The query-mode benchmark (bench/run.sh, section querymode) times one `rollgate eval`
 * of a whole fleet as one evaluation cycle. The shell cannot give a child's CPU time
 * finer than a clock tick, and GNU time is not always installed, so this runs the
 * command itself: fork and exec, the wall time on CLOCK_MONOTONIC from before the
 * fork to the end of the wait, and the child's own user and system time from the
 * resource usage that wait4() returns for exactly that child (microseconds, and
 * neither this program's time nor that of other children). The untimed warm-up runs
 * go first (they fill the server's caches and the page cache of the binary).
 *
 *   run_cycles --runs N [--warmup W] [--out FILE] [--max-status S] -- COMMAND [ARG...]
 *
 * Each run's standard output goes to FILE (truncated per run, so it holds the last
 * run's output; /dev/null by default); standard error is inherited. Every timed run is
 * printed as a line "run_cycles: run=I wall_ms=... cpu_ms=... user_ms=... sys_ms=...
 * status=S", then one line "run_cycles: summary runs=N wall_ms_median=...
 * wall_ms_min=... wall_ms_max=... cpu_ms_median=... cpu_ms_min=... cpu_ms_max=...
 * status=S" (the medians are of the odd middle run or the mean of the two middle ones).
 * A run that exits with a status above --max-status (default 0) or is killed by a
 * signal makes the exit status 1; bad usage is 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 1000

struct run {
    double wall_ms, user_ms, sys_ms;
    int status;                /* exit status, or 128 + signal number */
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double tv_ms(struct timeval tv)
{
    return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: run_cycles --runs N [--warmup W] [--out FILE] [--max-status S]"
               " -- COMMAND [ARG...]\n");
}

/* Parses a count in [lo, hi]; -1 when it is not one. */
static long parse_count(const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    return v;
}

/* Runs @argv once with its standard output on @out; fills @r. Returns 0, or -1 when
 * the child could not be started or waited for (the reason is printed). */
static int run_once(char **argv, const char *out, struct run *r)
{
    struct rusage ru;
    double t0;
    pid_t pid;
    int st;

    fflush(NULL);
    t0 = now_ms();
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "run_cycles: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
            fprintf(stderr, "run_cycles: %s: %s\n", out, strerror(errno));
            _exit(127);
        }
        close(fd);
        execvp(argv[0], argv);
        fprintf(stderr, "run_cycles: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "run_cycles: wait4: %s\n", strerror(errno));
            return -1;
        }
    }
    r->wall_ms = now_ms() - t0;
    r->user_ms = tv_ms(ru.ru_utime);
    r->sys_ms = tv_ms(ru.ru_stime);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Sorts @v (n > 0) and returns its median. */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    const char *out = "/dev/null";
    long runs = -1, warmup = 0, max_status = 0;
    struct run *r = NULL;
    double *wall = NULL, *cpu = NULL;
    int i, failed = 0, rc = 2;

    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;

        if (!val || strcmp(val, "--") == 0) {
            fprintf(stderr, "run_cycles: %s needs a value\n", argv[i]);
            goto usage;
        }
        if (strcmp(argv[i], "--out") == 0) {
            out = val;
        } else if (strcmp(argv[i], "--runs") == 0) {
            bad = (runs = parse_count(val, 1, MAX_RUNS)) < 0;
        } else if (strcmp(argv[i], "--warmup") == 0) {
            bad = (warmup = parse_count(val, 0, MAX_RUNS)) < 0;
        } else if (strcmp(argv[i], "--max-status") == 0) {
            bad = (max_status = parse_count(val, 0, 255)) < 0;
        } else {
            fprintf(stderr, "run_cycles: unknown option %s\n", argv[i]);
            goto usage;
        }
        if (bad) {
            fprintf(stderr, "run_cycles: bad value for %s: %s\n", argv[i], val);
            goto usage;
        }
        i++;
    }
    if (runs < 1 || i + 1 >= argc) {
        fprintf(stderr, "run_cycles: --runs and a command after -- are required\n");
        goto usage;
    }
    argv += i + 1;

    rc = 1;
    r = calloc((size_t)runs, sizeof(*r));
    wall = calloc((size_t)runs, sizeof(*wall));
    cpu = calloc((size_t)runs, sizeof(*cpu));
    if (!r || !wall || !cpu) {
        fprintf(stderr, "run_cycles: out of memory\n");
        goto out;
    }
    for (long k = 0; k < warmup; k++) {
        struct run w;

        if (run_once(argv, out, &w) != 0)
            goto out;
        if (w.status > max_status) {
            fprintf(stderr, "run_cycles: warm-up run %ld: status %d\n", k + 1, w.status);
            failed = 1;
        }
    }
    for (long k = 0; k < runs; k++) {
        if (run_once(argv, out, &r[k]) != 0)
            goto out;
        printf("run_cycles: run=%ld wall_ms=%.3f cpu_ms=%.3f user_ms=%.3f sys_ms=%.3f "
               "status=%d\n", k + 1, r[k].wall_ms, r[k].user_ms + r[k].sys_ms, r[k].user_ms,
               r[k].sys_ms, r[k].status);
        if (r[k].status > max_status)
            failed = 1;
        wall[k] = r[k].wall_ms;
        cpu[k] = r[k].user_ms + r[k].sys_ms;
    }
    /* median() sorts, so the extremes are the ends afterwards. */
    {
        double wm = median(wall, (size_t)runs), cm = median(cpu, (size_t)runs);

        printf("run_cycles: summary runs=%ld wall_ms_median=%.3f wall_ms_min=%.3f "
               "wall_ms_max=%.3f cpu_ms_median=%.3f cpu_ms_min=%.3f cpu_ms_max=%.3f "
               "status=%d\n", runs, wm, wall[0], wall[runs - 1], cm, cpu[0], cpu[runs - 1],
               r[runs - 1].status);
    }
    rc = failed;
    goto out;
usage:
    usage(stderr);
out:
    free(r);
    free(wall);
    free(cpu);
    return rc;
}
