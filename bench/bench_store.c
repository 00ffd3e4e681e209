/* bench/bench_store.c - throughput and memory of the in-memory series store.
 *
 * Builds the remote-write benchmark's workload in process (by default 100,000
 * series of 10 labels: __name__ shared by 100 series, small-cardinality labels, and
 * a last label unique per series), then measures:
 *   - creating every series from borrowed label refs (ns per series),
 *   - 20 rounds of "look the series up by its label refs, append one sample", the
 *     ingest hot path (ns per sample),
 *   - lookup alone and append alone (ns per call),
 *   - process RSS growth per series (from /proc/self/statm) and rg_store_bytes(),
 *   - where the bytes go: every part of the store with its live bytes, the bytes
 *     reserved (with the store's own slack) and the bytes malloc set aside for it
 *     (malloc_usable_size), and glibc's heap totals (mallinfo2), whose free bytes
 *     inside the heap are the fragmentation,
 *   - a few selections and a garbage collection pass.
 * Usage: bench_store [series] [labels] [samples]
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/introspect.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

static const char *const label_names[] = {
    "cluster", "container", "env", "instance", "job", "namespace", "pod", "region", "zone",
};

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* The label sets of the remote-write load generator, in one arena. */
static int build_labels(size_t nseries, size_t nl, struct rg_buf *arena,
                        struct rg_label_ref **out)
{
    size_t nnames = sizeof(label_names) / sizeof(label_names[0]);
    size_t *offs = malloc(nseries * nl * 3 * sizeof(*offs));
    struct rg_label_ref *refs = malloc(nseries * nl * sizeof(*refs));
    int err = 0;

    if (!offs || !refs) {
        err = RG_ENOMEM;
        goto out;
    }
    for (size_t s = 0; s < nseries && !err; s++) {
        for (size_t j = 0; j < nl && !err; j++) {
            size_t *off = &offs[(s * nl + j) * 3];

            off[0] = arena->len;
            if (j == 0)
                err = rg_buf_puts(arena, "__name__");
            else if (j - 1 < nnames)
                err = rg_buf_puts(arena, label_names[j - 1]);
            else
                err = rg_buf_printf(arena, "zz_label_%02zu", j);
            off[1] = arena->len;
            if (err)
                break;
            if (j == 0 && nl == 1)
                err = rg_buf_printf(arena, "rwload_metric_%zu", s);
            else if (j == 0)
                err = rg_buf_printf(arena, "rwload_metric_%zu", s / 100);
            else if (j == nl - 1)
                err = rg_buf_printf(arena, "series-%07zu", s);
            else
                err = rg_buf_printf(arena, "%s-value-%zu",
                                    j - 1 < nnames ? label_names[j - 1] : "extra",
                                    (s / 7 + j) % (3 * j + 2));
            off[2] = arena->len;
        }
    }
    if (err)
        goto out;
    for (size_t i = 0; i < nseries * nl; i++) {
        size_t *off = &offs[i * 3];

        refs[i].name = (struct rg_slice){ arena->data + off[0], off[1] - off[0] };
        refs[i].value = (struct rg_slice){ arena->data + off[1], off[2] - off[1] };
    }
    *out = refs;
    refs = NULL;
out:
    free(refs);
    free(offs);
    return err;
}

static int re_prefix(void *re, const char *s, size_t len)
{
    size_t n = strlen(re);

    return len >= n && memcmp(s, re, n) == 0;
}

static void bench_select(struct rg_store *st, const char *what, const struct rg_matcher *m,
                         size_t nm)
{
    struct rg_series **res = NULL;
    size_t n = 0;
    double t0 = now_ns();
    int err = rg_store_select(st, m, nm, &res, &n);
    double dt = now_ns() - t0;

    printf("bench_store: select %-42s %7zu series %10.3f ms%s\n", what, n, dt / 1e6,
           err ? " (error)" : "");
    free(res);
}

/* The store's parts per series, then malloc's view of the whole heap. The chunk
 * column adds malloc's 8-byte header to each usable size. */
static void print_mem(const struct rg_store *st, size_t nseries)
{
    struct rg__store_mem_use u[RG__MEM_NPARTS], tot = { 0 };
    const char *names[RG__MEM_NPARTS];
    struct mallinfo2 mi = mallinfo2();
    double k = (double)nseries;

    rg__store_mem(st, u, names);
    printf("bench_store: bytes per series        %8s %8s %8s %8s %9s\n", "used", "reserved",
           "usable", "chunks", "blocks");
    for (int i = 0; i <= RG__MEM_NPARTS; i++) {
        const struct rg__store_mem_use *p = i < RG__MEM_NPARTS ? &u[i] : &tot;

        if (i < RG__MEM_NPARTS) {
            tot.blocks += p->blocks;
            tot.used += p->used;
            tot.reserved += p->reserved;
            tot.usable += p->usable;
        }
        printf("bench_store:   %-22s %8.1f %8.1f %8.1f %8.1f %9zu\n",
               i < RG__MEM_NPARTS ? names[i] : "total", (double)p->used / k,
               (double)p->reserved / k, (double)p->usable / k,
               (double)(p->usable + 8 * p->blocks) / k, p->blocks);
    }
    printf("bench_store: malloc heap %.1f MB (in use %.1f MB, free inside %.1f MB = %.1f "
           "bytes/series), mmap %.1f MB\n",
           (double)mi.arena / 1e6, (double)mi.uordblks / 1e6, (double)mi.fordblks / 1e6,
           (double)mi.fordblks / k, (double)mi.hblkhd / 1e6);
}

int main(int argc, char **argv)
{
    size_t nseries = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t nl = argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
    size_t nsamples = argc > 3 ? strtoul(argv[3], NULL, 10) : 20;
    const int64_t t0 = INT64_C(1700000000000), step = 15000;
    struct rg_store_config cfg;
    struct rg_store *st = NULL;
    struct rg_buf arena = { 0 };
    struct rg_label_ref *refs = NULL;
    struct rg_series **ser = NULL;
    long rss0, rss1;
    double t, create_ns, ingest_ns, find_ns, append_ns;
    size_t errors = 0, lookups;
    int err;

    if (!nseries || !nl || nl > 64 || !nsamples) {
        fprintf(stderr, "usage: bench_store [series] [labels 1..64] [samples]\n");
        return 2;
    }
    err = build_labels(nseries, nl, &arena, &refs);
    ser = calloc(nseries, sizeof(*ser));
    if (err || !ser) {
        fprintf(stderr, "bench_store: out of memory building labels\n");
        return 1;
    }
    rg_store_config_default(&cfg);
    if (cfg.max_series < nseries)
        cfg.max_series = nseries;
    /* Everything written must survive until the end. */
    cfg.retention_ms = (int64_t)(nsamples + 4) * step;
    if (rg_store_new(&cfg, &st)) {
        fprintf(stderr, "bench_store: rg_store_new failed\n");
        return 1;
    }
    rss0 = rss_bytes();

    t = now_ns();
    for (size_t s = 0; s < nseries; s++) {
        int created;

        if (rg_store_series_get(st, &refs[s * nl], nl, &ser[s], &created) || !created)
            errors++;
    }
    create_ns = (now_ns() - t) / (double)nseries;

    /* The ingest hot path: every sample looks its series up from borrowed refs. */
    t = now_ns();
    for (size_t r = 0; r < nsamples; r++) {
        for (size_t s = 0; s < nseries; s++) {
            struct rg_series *x;

            if (rg_store_series_get(st, &refs[s * nl], nl, &x, NULL) ||
                rg_store_append(st, x, t0 + (int64_t)r * step, (double)(s + r)) != 0)
                errors++;
        }
    }
    ingest_ns = (now_ns() - t) / (double)(nseries * nsamples);
    rss1 = rss_bytes();

    printf("bench_store: %zu series x %zu labels x %zu samples\n", nseries, nl, nsamples);
    printf("bench_store: create series            %8.1f ns/series\n", create_ns);
    printf("bench_store: lookup by refs + append  %8.1f ns/sample (%.2f M samples/s)\n",
           ingest_ns, 1e3 / ingest_ns);
    printf("bench_store: RSS growth               %8.1f bytes/series (%ld -> %ld KiB)\n",
           (double)(rss1 - rss0) / (double)nseries, rss0 / 1024, rss1 / 1024);
    printf("bench_store: rg_store_bytes           %8.1f bytes/series\n",
           (double)rg_store_bytes(st) / (double)nseries);

    print_mem(st, nseries);

    /* Lookup alone, then append alone with the pointers already in hand. */
    lookups = nseries * 5;
    t = now_ns();
    for (size_t i = 0; i < lookups; i++) {
        struct rg_series *x;
        size_t s = i % nseries;

        if (rg_store_series_find(st, &refs[s * nl], nl, &x) || x != ser[s])
            errors++;
    }
    find_ns = (now_ns() - t) / (double)lookups;
    t = now_ns();
    for (size_t r = 0; r < 5; r++)
        for (size_t s = 0; s < nseries; s++)
            if (rg_store_append(st, ser[s], t0 + (int64_t)(nsamples + r) * step, 1.0) != 0)
                errors++;
    append_ns = (now_ns() - t) / (double)(nseries * 5);
    printf("bench_store: lookup by refs           %8.1f ns/lookup\n", find_ns);
    printf("bench_store: append (existing series) %8.1f ns/append\n", append_ns);

    {
        struct rg_matcher name = { RG_MATCH_EQ, "__name__", "rwload_metric_5", NULL, NULL };
        struct rg_matcher job = { RG_MATCH_EQ, "job", "job-value-3", NULL, NULL };
        struct rg_matcher re = { RG_MATCH_RE, "zone", "series-00001", re_prefix,
                                 (void *)"series-00001" };
        struct rg_matcher ne = { RG_MATCH_NE, "env", "env-value-3", NULL, NULL };
        struct rg_matcher two[2];

        bench_select(st, "{__name__=\"rwload_metric_5\"}", &name, 1);
        bench_select(st, "{job=\"job-value-3\"}", &job, 1);
        two[0] = job;
        two[1] = ne;
        bench_select(st, "{job=\"job-value-3\",env!=\"env-value-3\"}", two, 2);
        bench_select(st, "{zone=~\"series-00001.*\"}", &re, 1);
    }

    t = now_ns();
    if (rg_store_gc(st, t0 + (int64_t)(nsamples + 4) * step) != 0)
        errors++;
    printf("bench_store: gc, nothing expires      %8.3f ms\n", (now_ns() - t) / 1e6);
    t = now_ns();
    if (rg_store_gc(st, t0 + (int64_t)(nsamples + 5) * step + cfg.retention_ms) != nseries)
        errors++;
    printf("bench_store: gc, all series expire    %8.3f ms\n", (now_ns() - t) / 1e6);
    if (rg_store_series_count(st) || errors)
        printf("bench_store: %zu unexpected results\n", errors);

    rg_store_free(st);
    free(ser);
    free(refs);
    rg_buf_cleanup(&arena);
    return errors ? 1 : 0;
}
