/* bench/bench_decode.c - micro-benchmark of the remote-write 1.0 decoder.
 *
 * Builds one request the shape of a busy Prometheus shard (2,000 series of 10 labels
 * with one sample each, packed by protobuf-c and snappy-compressed), then decodes it
 * N times (argv[1], default 2,000) three ways and prints decoded samples per second:
 *   snappy+walk  rg_rw_decode_snappy_v1: decompression plus the zero-copy walk;
 *   walk         rg_rw_decode_v1 on the decompressed bytes;
 *   protobuf-c   prometheus__write_request__unpack + free_unpacked, for comparison.
 * The sink only counts, so the figures are the decoder's own cost. The walk should
 * reach 4 M samples/s; with --check the exit status is 1 when it does not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote.pb-c.h"

#include "ingest/remote_write.h"
#include "ingest/snappy.h"
#include "util/err.h"
#include "util/time.h"

#define SERIES 2000
#define LABELS 10
#define TARGET_SAMPLES_PER_S 4e6

static const char *const label_names[LABELS] = {
    "__name__", "cluster", "env", "instance", "job", "namespace", "pod", "region",
    "service", "zone",
};

struct count_sink {
    uint64_t series;
    uint64_t samples;
};

static int count_series(void *ud, const struct rg_label_ref *labels, size_t nlabels,
                        const struct rg_sample *samples, size_t nsamples)
{
    struct count_sink *c = ud;

    (void)labels;
    (void)nlabels;
    (void)samples;
    c->series++;
    c->samples += nsamples;
    return 0;
}

/* Packs the benchmark request; returns a malloc'd buffer of *len bytes. */
static uint8_t *build_request(size_t *len)
{
    static char strings[SERIES][LABELS][48];
    static Prometheus__Label labels[SERIES][LABELS];
    static Prometheus__Label *label_ptrs[SERIES][LABELS];
    static Prometheus__Sample samples[SERIES];
    static Prometheus__Sample *sample_ptrs[SERIES];
    static Prometheus__TimeSeries ts[SERIES];
    static Prometheus__TimeSeries *ts_ptrs[SERIES];
    Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
    uint8_t *out;

    for (size_t i = 0; i < SERIES; i++) {
        for (size_t j = 0; j < LABELS; j++) {
            if (j == 0)
                snprintf(strings[i][j], sizeof(strings[i][j]), "app_requests_metric_%zu",
                         i / 20);
            else
                snprintf(strings[i][j], sizeof(strings[i][j]), "%s-value-%zu",
                         label_names[j], j == 3 || j == 6 ? i : i % 7);
            prometheus__label__init(&labels[i][j]);
            labels[i][j].name = (char *)label_names[j];
            labels[i][j].value = strings[i][j];
            label_ptrs[i][j] = &labels[i][j];
        }
        prometheus__sample__init(&samples[i]);
        samples[i].value = (double)i * 1.25;
        samples[i].timestamp = INT64_C(1700000000000) + (int64_t)i;
        sample_ptrs[i] = &samples[i];
        prometheus__time_series__init(&ts[i]);
        ts[i].labels = label_ptrs[i];
        ts[i].n_labels = LABELS;
        ts[i].samples = &sample_ptrs[i];
        ts[i].n_samples = 1;
        ts_ptrs[i] = &ts[i];
    }
    req.timeseries = ts_ptrs;
    req.n_timeseries = SERIES;
    *len = prometheus__write_request__get_packed_size(&req);
    out = malloc(*len);
    if (out)
        prometheus__write_request__pack(&req, out);
    return out;
}

static void report(const char *what, uint64_t samples, uint64_t ns, size_t bytes, int iters)
{
    double s = (double)ns / 1e9;

    printf("bench_decode: %-12s %10.0f samples/s  %8.1f MB/s  %8.1f us/request\n", what,
           (double)samples / s, (double)bytes * iters / s / 1e6, s * 1e6 / iters);
}

int main(int argc, char **argv)
{
    int iters = 2000;
    int check = 0;
    size_t pb_len, snappy_len;
    uint8_t *pb;
    char *snappy;
    struct rg_rw_decoder *dec;
    struct count_sink cs = { 0, 0 };
    struct rg_rw_sink sink = { count_series, NULL, NULL, NULL, &cs };
    struct rg_rw_result res;
    uint64_t t0, walk_ns, snappy_ns, pbc_ns, pbc_samples = 0;
    int err;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0)
            check = 1;
        else if (atoi(argv[i]) > 0)
            iters = atoi(argv[i]);
    }
    pb = build_request(&pb_len);
    snappy = malloc(snappy_max_compressed_length(pb_len));
    if (!pb || !snappy || rg_rw_decoder_new(&dec) != 0) {
        fprintf(stderr, "bench_decode: out of memory\n");
        return 1;
    }
    snappy_len = snappy_max_compressed_length(pb_len);
    if (snappy_compress((const char *)pb, pb_len, snappy, &snappy_len) != SNAPPY_OK) {
        fprintf(stderr, "bench_decode: snappy_compress failed\n");
        return 1;
    }
    printf("bench_decode: request %d series x %d labels x 1 sample: %zu bytes protobuf, "
           "%zu bytes snappy; %d iterations\n", SERIES, LABELS, pb_len, snappy_len, iters);

    /* One warm-up pass grows the decoder's scratch space and its snappy buffer. */
    err = rg_rw_decode_snappy_v1(dec, snappy, snappy_len, RG_SNAPPY_DEFAULT_LIMIT, &sink, &res);
    if (err || res.series != SERIES || rg_rw_result_rejected_series(&res) != 0) {
        fprintf(stderr, "bench_decode: decode failed: %s (%s)\n", rg_strerror(err), res.error);
        return 1;
    }

    cs.samples = 0;
    t0 = rg_mono_ns();
    for (int i = 0; i < iters; i++)
        err |= rg_rw_decode_snappy_v1(dec, snappy, snappy_len, RG_SNAPPY_DEFAULT_LIMIT, &sink,
                                      &res);
    snappy_ns = rg_mono_ns() - t0;
    report("snappy+walk", cs.samples, snappy_ns, snappy_len, iters);

    cs.samples = 0;
    t0 = rg_mono_ns();
    for (int i = 0; i < iters; i++)
        err |= rg_rw_decode_v1(dec, pb, pb_len, &sink, &res);
    walk_ns = rg_mono_ns() - t0;
    report("walk", cs.samples, walk_ns, pb_len, iters);
    double walk_rate = (double)cs.samples / ((double)walk_ns / 1e9);

    t0 = rg_mono_ns();
    for (int i = 0; i < iters; i++) {
        Prometheus__WriteRequest *req = prometheus__write_request__unpack(NULL, pb_len, pb);

        if (!req) {
            err = RG_EBADMSG;
            break;
        }
        for (size_t j = 0; j < req->n_timeseries; j++)
            pbc_samples += req->timeseries[j]->n_samples;
        prometheus__write_request__free_unpacked(req, NULL);
    }
    pbc_ns = rg_mono_ns() - t0;
    report("protobuf-c", pbc_samples, pbc_ns, pb_len, iters);

    printf("bench_decode: walk %.2f M samples/s (target %.0f M): %s; %.1fx protobuf-c\n",
           walk_rate / 1e6, TARGET_SAMPLES_PER_S / 1e6,
           walk_rate >= TARGET_SAMPLES_PER_S ? "met" : "MISSED",
           (double)pbc_ns / (double)walk_ns);
    rg_rw_decoder_free(dec);
    free(snappy);
    free(pb);
    if (err) {
        fprintf(stderr, "bench_decode: a decode failed\n");
        return 1;
    }
    return check && walk_rate < TARGET_SAMPLES_PER_S ? 1 : 0;
}
