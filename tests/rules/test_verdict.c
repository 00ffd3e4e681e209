/* tests/rules/test_verdict.c - the verdict state machine over virtual time.
 *
 * Each scenario is a table of steps: the time, the inputs of the three checks of
 * phase "canary" (gate error_ratio, trigger err_high with for: 5s, shared trigger
 * db_down), the request count, and the verdict and gate state expected after it.
 * NaN stands for "no data", ERR for a query error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/yaml.h"
#include "rules/checklist.h"
#include "rules/verdict.h"
#include "util/err.h"

static const char config_text[] =
    "phases:\n"
    "  - name: canary\n"
    "    min_observation: 10s\n"
    "    max_observation: 60s\n"
    "    min_requests: 100\n"
    "    no_data_timeout: 20s\n"
    "    gates:\n"
    "      - {signal: error_ratio, op: \"<\", threshold: 0.01}\n"
    "    triggers:\n"
    "      - {name: err_high, signal: error_ratio, op: \">\", threshold: 0.05, for: 5s}\n"
    "  - name: full\n"
    "    min_observation: 20s\n"
    "    gates:\n"
    "      - {name: vs_stable, signal: p99_latency, op: \"<\", baseline: {margin: 0.05}}\n"
    "      - {name: vs_stable_rel, signal: error_ratio, op: \"<=\", threshold: 0.5,\n"
    "         baseline: {margin: 50%, relative: true}}\n"
    "      - {name: optional, signal: queue_depth, op: \"<\", threshold: 10, no_data: ok}\n"
    "      - {name: required, signal: cpu_utilisation, op: \"<\", threshold: 1,"
    " no_data: failing}\n"
    "  - name: ungated\n"
    "    min_observation: 5s\n"
    "triggers:\n"
    "  - {name: db_down, signal: database_up, op: \"==\", threshold: 0}\n";

#define ND NAN
#define ERR (-12345.0)   /* marks a query error in the tables */

static struct rg_checklist *cl;

static int setup(void **state)
{
    struct rg_config cfg;
    struct rg_yaml_node *root = NULL;
    struct rg_buf err = { 0 };
    char msg[256];
    (void)state;

    rg_config_default(&cfg);
    assert_int_equal(rg_yaml_parse(config_text, sizeof(config_text) - 1, &root, msg,
                                   sizeof(msg)), 0);
    cfg.yaml = root;
    cfg.docs = calloc(1, sizeof(*cfg.docs));
    cfg.docs[0].path = strdup("verdict.yml");
    cfg.docs[0].root = root;
    cfg.ndocs = 1;
    if (rg_checklist_parse(&cfg, &cl, &err))
        fail_msg("%s", err.data);
    rg_config_cleanup(&cfg);
    rg_buf_cleanup(&err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rg_checklist_free(cl);
    return 0;
}

static struct rg_verdict_input in_of(double x)
{
    struct rg_verdict_input in = { 0 };
    if (x == ERR) {
        in.error = "vector cannot contain metrics with the same labelset";
    } else if (!isnan(x)) {
        in.has_value = 1;
        in.value = x;
    }
    return in;
}

struct step {
    int64_t t;                   /* ms */
    double gate, trig, db;       /* inputs of the three checks */
    double requests;
    enum rg_verdict_kind want;
    enum rg_verdict_state gate_state;
};

static void run(struct rg_verdict *v, const struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct rg_verdict_input in[3] = { in_of(steps[i].gate), in_of(steps[i].trig),
                                          in_of(steps[i].db) };
        struct rg_verdict_input req = in_of(steps[i].requests);
        enum rg_verdict_kind got;

        assert_int_equal(v->nchecks, 3);
        got = rg_verdict_step(v, steps[i].t, in, &req);
        if (got != steps[i].want || v->checks[0].state != steps[i].gate_state)
            fail_msg("step %zu (t=%lld): verdict %s (want %s), gate %s (want %s); reason: %s", i,
                     (long long)steps[i].t, rg_verdict_name(got), rg_verdict_name(steps[i].want),
                     rg_verdict_state_name(v->checks[0].state),
                     rg_verdict_state_name(steps[i].gate_state), v->reason);
    }
}

#define RUN(v, steps) run(v, steps, sizeof(steps) / sizeof(steps[0]))
#define H RG_VERDICT_HOLD
#define P RG_VERDICT_PROMOTE
#define R RG_VERDICT_ROLLBACK
#define I RG_VERDICT_INCONCLUSIVE
#define OK RG_VERDICT_OK
#define FAIL RG_VERDICT_FAILING
#define NODATA RG_VERDICT_NO_DATA

static void test_verdict__hold_then_promote(void **state)
{
    static const struct step steps[] = {
        { 0, 0.001, 0.001, 1, 0, H, OK },
        { 5000, 0.001, 0.001, 1, 80, H, OK },
        { 9999, 0.002, 0.002, 1, 150, H, OK },
        { 10000, 0.002, 0.002, 1, 150, P, OK },
        { 11000, 0.002, 0.002, 1, 160, P, OK },
        /* Promote is not sticky: a failing gate goes back to hold. */
        { 12000, 0.02, 0.02, 1, 170, H, FAIL },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    assert_int_equal(v.verdict, H);
    RUN(&v, steps);
    assert_int_equal(v.verdict_since_ms, 12000);
    assert_int_equal(v.checks[0].since_ms, 12000);
    rg_verdict_cleanup(&v);
    rg_verdict_cleanup(NULL);
}

static void test_verdict__failing_gate_restarts_clock(void **state)
{
    static const struct step steps[] = {
        { 0, 0.001, 0.001, 1, 500, H, OK },
        { 4000, 0.001, 0.001, 1, 500, H, OK },
        { 5000, 0.03, 0.03, 1, 500, H, FAIL },   /* above the gate, below the trigger */
        { 6000, 0.001, 0.001, 1, 500, H, OK },
        { 10000, 0.001, 0.001, 1, 500, H, OK },  /* would have promoted without the failure */
        { 15999, 0.001, 0.001, 1, 500, H, OK },
        { 16000, 0.001, 0.001, 1, 500, P, OK },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    RUN(&v, steps);
    assert_int_equal(v.checks[0].since_ms, 6000);
    rg_verdict_cleanup(&v);
}

static void test_verdict__trigger_for_then_sticky_rollback(void **state)
{
    static const struct step steps[] = {
        { 0, 0.001, 0.001, 1, 500, H, OK },
        { 1000, 0.1, 0.1, 1, 500, H, FAIL },     /* err_high pending */
        { 3000, 0.001, 0.001, 1, 500, H, OK },   /* condition stops: back to ok */
        { 4000, 0.1, 0.1, 1, 500, H, FAIL },     /* pending again, from 4 s */
        { 8999, 0.1, 0.1, 1, 500, H, FAIL },
        { 9000, 0.1, 0.1, 1, 500, R, FAIL },     /* held for 5 s: fires */
        { 10000, 0.001, 0.001, 1, 500, R, OK },  /* sticky */
        { 60000, 0.001, 0.001, 1, 500, R, OK },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    run(&v, steps, 5);
    assert_int_equal(v.checks[1].state, RG_VERDICT_PENDING);
    assert_int_equal(v.checks[1].active_ms, 4000);
    run(&v, steps + 5, 3);
    assert_int_equal(v.checks[1].state, RG_VERDICT_OK);
    assert_int_equal(v.verdict_since_ms, 9000);
    assert_true(v.sticky);
    assert_non_null(strstr(v.reason, "trigger err_high fired"));
    /* Starting the phase again releases the rollback. */
    assert_int_equal(rg_verdict_start_phase(&v, 0, 70000), 0);
    assert_int_equal(v.verdict, H);
    assert_false(v.sticky);
    rg_verdict_cleanup(&v);
}

static void test_verdict__trigger_without_for_fires_at_once(void **state)
{
    static const struct step steps[] = {
        { 0, 0.001, 0.001, 1, 500, H, OK },
        { 1000, 0.001, 0.001, 0, 500, R, OK },   /* database down */
        { 2000, 0.001, 0.001, 1, 500, R, OK },
        { 3000, 0.001, 0.001, ND, 500, R, OK },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    RUN(&v, steps);
    assert_non_null(strstr(v.reason, "db_down"));
    rg_verdict_cleanup(&v);
}

static void test_verdict__max_observation(void **state)
{
    static const struct step failing[] = {
        { 0, 0.02, 0.02, 1, 500, H, FAIL },
        { 30000, 0.02, 0.02, 1, 500, H, FAIL },
        { 59999, 0.02, 0.02, 1, 500, H, FAIL },
        { 60000, 0.02, 0.02, 1, 500, R, FAIL },
        { 61000, 0.001, 0.001, 1, 500, R, OK },
    };
    /* At the maximum a gate that holds (but not yet for long enough) does not roll
     * back: the phase keeps observing. */
    static const struct step recovering[] = {
        { 0, 0.02, 0.02, 1, 500, H, FAIL },
        { 55000, 0.001, 0.001, 1, 500, H, OK },
        { 60000, 0.001, 0.001, 1, 500, H, OK },
        { 65000, 0.001, 0.001, 1, 500, P, OK },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    RUN(&v, failing);
    assert_non_null(strstr(v.reason, "maximum observation time 1m"));
    assert_int_equal(rg_verdict_start_phase(&v, 0, 0), 0);
    RUN(&v, recovering);
    rg_verdict_cleanup(&v);
}

static void test_verdict__min_requests(void **state)
{
    static const struct step steps[] = {
        { 0, 0.001, 0.001, 1, 10, H, OK },
        { 10000, 0.001, 0.001, 1, 50, I, OK },   /* gates held, but 50 < 100 requests */
        { 11000, 0.001, 0.001, 1, ND, I, OK },   /* no request data counts as none */
        { 12000, 0.001, 0.001, 1, 100, P, OK },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    run(&v, steps, 2);
    assert_non_null(strstr(v.reason, "too few requests"));
    run(&v, steps + 2, 2);
    assert_true(v.has_requests);
    assert_true(v.requests == 100);
    rg_verdict_cleanup(&v);
}

static void test_verdict__no_data_bound(void **state)
{
    static const struct step steps[] = {
        { 0, ND, ND, ND, ND, H, NODATA },
        { 19999, ND, ND, ND, ND, H, NODATA },
        { 20000, ND, ND, ND, ND, I, NODATA },
        { 25000, ND, ND, ND, ND, I, NODATA },
        { 26000, 0.001, 0.001, 1, 500, H, OK },  /* data is back: observing again */
        { 36000, 0.001, 0.001, 1, 500, P, OK },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    run(&v, steps, 3);
    assert_non_null(strstr(v.reason, "no data for 20s"));
    run(&v, steps + 3, 3);
    rg_verdict_cleanup(&v);
}

static void test_verdict__nan_is_no_data(void **state)
{
    struct rg_verdict v;
    struct rg_verdict_input in[3] = { { 1, NAN, 0, 0, NULL }, { 1, NAN, 0, 0, NULL },
                                      { 1, 1, 0, 0, NULL } };
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    assert_int_equal(rg_verdict_step(&v, 1000, in, NULL), H);
    assert_int_equal(v.checks[0].state, RG_VERDICT_NO_DATA);
    assert_false(v.checks[0].has_value);
    assert_int_equal(rg_verdict_step(&v, 21000, in, NULL), I);
    rg_verdict_cleanup(&v);
}

static void test_verdict__query_errors(void **state)
{
    static const struct step steps[] = {
        { 0, 0.001, 0.001, 1, 500, H, OK },
        { 1000, ERR, ERR, 1, 500, H, NODATA },
        { 20999, ERR, ERR, 1, 500, H, NODATA },
        { 21000, ERR, ERR, 1, 500, I, NODATA },
        { 22000, 0.001, 0.001, 1, 500, H, OK },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    run(&v, steps, 4);
    assert_non_null(strstr(v.checks[0].error, "same labelset"));
    assert_non_null(strstr(v.reason, "query failing for 20s"));
    /* A trigger whose query fails never fires. */
    assert_int_equal(v.checks[1].state, RG_VERDICT_NO_DATA);
    run(&v, steps + 4, 1);
    assert_string_equal(v.checks[0].error, "");
    rg_verdict_cleanup(&v);
}

static void test_verdict__human_trigger(void **state)
{
    static const struct step steps[] = {
        { 0, 0.001, 0.001, 1, 500, H, OK },
        { 10000, 0.001, 0.001, 1, 500, P, OK },
    };
    struct rg_verdict v;
    struct rg_verdict_input in[3] = { in_of(0.001), in_of(0.001), in_of(1) };
    struct rg_verdict_input req = in_of(500);
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    RUN(&v, steps);
    rg_verdict_trigger(&v, 10500, "data corruption detected");
    assert_int_equal(v.verdict, R);
    assert_int_equal(v.verdict_since_ms, 10500);
    assert_string_equal(v.human_reason, "data corruption detected");
    assert_string_equal(v.reason, "human trigger: data corruption detected");
    assert_int_equal(rg_verdict_step(&v, 11000, in, &req), R);
    assert_int_equal(rg_verdict_step(&v, 99000, in, &req), R);
    /* Reset: the phase starts over, the human trigger is gone. */
    assert_int_equal(rg_verdict_start_phase(&v, 0, 100000), 0);
    assert_string_equal(v.human_reason, "");
    assert_int_equal(rg_verdict_step(&v, 100000, in, &req), H);
    assert_int_equal(rg_verdict_step(&v, 110000, in, &req), P);
    rg_verdict_cleanup(&v);
}

static void test_verdict__phase_advance(void **state)
{
    struct rg_verdict v;
    struct rg_verdict_input in[6];
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 0), 0);
    assert_int_equal(rg_verdict_start_phase(&v, 7, 1000), RG_EINVAL);
    assert_int_equal(v.phase, 0);
    assert_int_equal(rg_verdict_start_phase(&v, 2, 1000), 0);
    /* "ungated": no gates, only the shared trigger; promotes on time alone. */
    assert_int_equal(v.nchecks, 1);
    assert_int_equal(v.ngates, 0);
    assert_int_equal(v.phase_start_ms, 1000);
    in[0] = in_of(1);
    assert_int_equal(rg_verdict_step(&v, 5999, in, NULL), H);
    assert_int_equal(rg_verdict_step(&v, 6000, in, NULL), P);
    assert_int_equal(rg_verdict_start_phase(&v, 1, 7000), 0);
    assert_int_equal(v.nchecks, 5);
    assert_int_equal(v.ngates, 4);
    assert_string_equal(v.checks[4].spec->name, "db_down");
    assert_int_equal(v.verdict, H);
    assert_int_equal(v.steps, 0);
    rg_verdict_cleanup(&v);
}

/* Phase "full": baseline comparisons and no-data policies. */
static void test_verdict__baseline_and_no_data_policy(void **state)
{
    static const struct {
        double lat, lat_base, err, err_base, queue, cpu;
        enum rg_verdict_state want[4];
    } cases[] = {
        /* p99 0.12 vs stable 0.10: within 0.05; errors 0.014 vs 0.01: within 50% */
        { 0.12, 0.10, 0.014, 0.01, ND, 0.5, { OK, OK, OK, OK } },
        /* p99 0.16 vs 0.10: 60 ms worse; errors 0.016 vs 0.01: 60% worse */
        { 0.16, 0.10, 0.016, 0.01, 5, 0.5, { FAIL, FAIL, OK, OK } },
        /* No baseline data: cannot judge; cpu without data counts as failing */
        { 0.10, ND, 0.01, ND, 50, ND, { NODATA, NODATA, FAIL, FAIL } },
        /* Better than the baseline is fine; the absolute threshold still applies */
        { 0.01, 0.10, 0.6, 0.9, 1, 0.1, { OK, FAIL, OK, OK } },
    };
    struct rg_verdict v;
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 1, 0), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_verdict_input in[5] = { in_of(cases[i].lat), in_of(cases[i].err),
                                          in_of(cases[i].queue), in_of(cases[i].cpu),
                                          in_of(1) };
        in[0].has_baseline = !isnan(cases[i].lat_base);
        in[0].baseline = cases[i].lat_base;
        in[1].has_baseline = !isnan(cases[i].err_base);
        in[1].baseline = cases[i].err_base;
        rg_verdict_step(&v, (int64_t)i * 1000, in, NULL);
        for (int g = 0; g < 4; g++)
            if (v.checks[g].state != cases[i].want[g])
                fail_msg("case %zu gate %s: %s, want %s", i, v.checks[g].spec->name,
                         rg_verdict_state_name(v.checks[g].state),
                         rg_verdict_state_name(cases[i].want[g]));
    }
    rg_verdict_cleanup(&v);
}

static void test_verdict__restore_rollback(void **state)
{
    struct rg_verdict v;
    struct rg_verdict_input in[3] = { in_of(0.001), in_of(0.001), in_of(1) };
    struct rg_verdict_input req = in_of(500);
    (void)state;

    assert_int_equal(rg_verdict_init(&v, cl, 0, 5000), 0);
    rg_verdict_restore_rollback(&v, 4000, "trigger err_high fired", "");
    assert_int_equal(rg_verdict_step(&v, 100000, in, &req), R);
    assert_int_equal(v.verdict_since_ms, 4000);
    assert_string_equal(v.reason, "trigger err_high fired");
    rg_verdict_cleanup(&v);
}

static void test_verdict__names_and_json(void **state)
{
    static const char *const names[] = { "hold", "promote", "rollback", "inconclusive" };
    struct rg_verdict v;
    struct rg_verdict_input in[3] = { in_of(0.001), in_of(INFINITY), in_of(ND) };
    struct rg_buf out = { 0 };
    const char *q[3] = { "q0", NULL, "q2" };
    enum rg_verdict_kind k;
    (void)state;

    for (int i = 0; i < 4; i++) {
        assert_string_equal(rg_verdict_name((enum rg_verdict_kind)i), names[i]);
        assert_int_equal(rg_verdict_parse(names[i], &k), 0);
        assert_int_equal(k, i);
    }
    assert_int_equal(rg_verdict_parse("promoted", &k), RG_EINVAL);
    assert_string_equal(rg_verdict_state_name(RG_VERDICT_FIRING), "firing");
    assert_string_equal(rg_verdict_state_name(RG_VERDICT_NO_DATA), "no_data");

    assert_int_equal(rg_verdict_init(&v, cl, 0, 1000), 0);
    rg_verdict_step(&v, 2500, in, NULL);
    assert_int_equal(rg_verdict_json(&v, "check\"out", q, 3000, &out), 0);
    assert_non_null(strstr(out.data, "{\"name\":\"check\\\"out\",\"phase\":\"canary\","
                                     "\"phase_index\":0,\"traffic_weight\":100,"
                                     "\"phase_start\":1.000,\"time_in_phase\":2.000,"
                                     "\"min_observation\":10.000,\"max_observation\":60.000,"
                                     "\"verdict\":\"hold\""));
    assert_non_null(strstr(out.data, "\"name\":\"error_ratio\",\"kind\":\"gate\","
                                     "\"signal\":\"error_ratio\",\"op\":\"<\","
                                     "\"threshold\":0.01,\"value\":0.001,\"state\":\"ok\","
                                     "\"since\":2.500,\"error\":null,\"description\":\"\","
                                     "\"query\":\"q0\"}"));
    /* +Inf errors fire a `>` trigger: pending for 5 s first. */
    assert_non_null(strstr(out.data, "\"value\":\"+Inf\",\"state\":\"pending\""));
    assert_non_null(strstr(out.data, "\"value\":null,\"state\":\"no_data\""));
    assert_non_null(strstr(out.data, "\"requests\":null,\"min_requests\":100"));
    rg_buf_cleanup(&out);
    rg_verdict_cleanup(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict__hold_then_promote),
        cmocka_unit_test(test_verdict__failing_gate_restarts_clock),
        cmocka_unit_test(test_verdict__trigger_for_then_sticky_rollback),
        cmocka_unit_test(test_verdict__trigger_without_for_fires_at_once),
        cmocka_unit_test(test_verdict__max_observation),
        cmocka_unit_test(test_verdict__min_requests),
        cmocka_unit_test(test_verdict__no_data_bound),
        cmocka_unit_test(test_verdict__nan_is_no_data),
        cmocka_unit_test(test_verdict__query_errors),
        cmocka_unit_test(test_verdict__human_trigger),
        cmocka_unit_test(test_verdict__phase_advance),
        cmocka_unit_test(test_verdict__baseline_and_no_data_policy),
        cmocka_unit_test(test_verdict__restore_rollback),
        cmocka_unit_test(test_verdict__names_and_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
