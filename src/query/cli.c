/* query/cli.c - eval, replay and check --source (see cli.h).
 *
 * The commands share one "session": the loaded configuration, its checklist, its
 * sources and the chosen source. Every query of a command goes through one runner of
 * query/client.h (one loop, one transport, one client), so that the queries reuse
 * the same connections. The backend handed to query/eval.h and query/replay.h has a
 * batch function that submits all the queries of a batch at once and runs the loop
 * until they have all answered: the client keeps max_concurrency of them in flight
 * per source and queues the rest. Single queries (discovery) block on the same
 * runner.
 */
#include "query/cli.h"

#include "config/config.h"
#include "config/yaml.h"
#include "promql/ast.h"
#include "query/client.h"
#include "query/eval.h"
#include "query/replay.h"
#include "rules/check.h"
#include "rules/checklist.h"
#include "rules/manager.h"
#include "rules/rulefile.h"
#include "util/err.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE RG_QUERY_EXIT_ERROR
#define MAX_PHASE_AT 64
#define DEFAULT_REPLAY_STEP_MS 15000

/* ---- times and durations ------------------------------------------------------------- */

int rg_query_cli_parse_time(const char *s, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec, n = 0;
    struct tm tm;
    int64_t ms = 0, off = 0;
    const char *p;
    char *end;
    double v;
    time_t base;

    if (!s || !*s)
        return RG_EINVAL;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
        n == 19) {
        p = s + n;
        if (*p == '.') {
            int digits = 0;
            int64_t scale = 100;
            for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
                ms += (*p - '0') * scale;
                scale /= 10;
            }
            if (!digits)
                return RG_EINVAL;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
            int oh, om;
            if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59)
                return RG_EINVAL;
            off = ((int64_t)oh * 60 + om) * 60000 * (*p == '+' ? 1 : -1);
            p += 6;
        } else {
            return RG_EINVAL;
        }
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
            return RG_EINVAL;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        base = timegm(&tm);
        *out_ms = (int64_t)base * 1000 + ms - off;
        return 0;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || fabs(v) > 9e12)
        return RG_EINVAL;
    *out_ms = (int64_t)llround(v * 1000.0);
    return 0;
}

int rg_query_cli_parse_duration(const char *s, int64_t *out_ms)
{
    char *end;
    double v;

    if (!s || !*s)
        return RG_EINVAL;
    if (rg_promql_parse_duration(s, strlen(s), out_ms) == 0)
        return *out_ms > 0 ? 0 : RG_EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || v <= 0 || v > 9e9)
        return RG_EINVAL;
    *out_ms = (int64_t)llround(v * 1000.0);
    return *out_ms > 0 ? 0 : RG_EINVAL;
}

/* ---- the session --------------------------------------------------------------------- */

struct session {
    struct rg_config cfg;
    int cfg_loaded;
    struct rg_checklist *cl;
    struct rg_query_sources *sources;
    const struct rg_query_source *src;
    struct rg_query_runner *runner;    /* the command's: one for all its queries */
    int own_runner;                    /* created by session_open() */
};

static void session_close(struct session *s)
{
    if (s->own_runner)
        rg_query_runner_free(s->runner);
    rg_query_sources_free(s->sources);
    rg_checklist_free(s->cl);
    if (s->cfg_loaded)
        rg_config_cleanup(&s->cfg);
    memset(s, 0, sizeof(*s));
}

/* Loads @config and resolves @source. Queries go through @runner (borrowed), or with
 * NULL through a runner of the session's own. Problems go to stderr prefixed with
 * @cmd. Returns 0 or the exit code of an error. */
static int session_open(struct session *s, const char *cmd, const char *config,
                        const char *source, struct rg_query_runner *runner)
{
    struct rg_buf err = { 0 };
    int rc;

    memset(s, 0, sizeof(*s));
    rg_config_default(&s->cfg);
    s->cfg_loaded = 1;
    if ((rc = rg_config_load_file(config, &s->cfg, &err)) ||
        (rc = rg_checklist_parse(&s->cfg, &s->cl, &err)) ||
        (rc = rg_query_sources_parse(&s->cfg, &s->sources, &err))) {
        fprintf(stderr, "%s", err.data ? err.data : "");
        fprintf(stderr, "rollgate %s: invalid configuration %s\n", cmd, config);
        goto fail;
    }
    s->src = rg_query_sources_find(s->sources, source);
    if (!s->src && rg_query_sources_add_url(s->sources, source, &s->src)) {
        fprintf(stderr, "rollgate %s: --source \"%s\" is neither a source of the "
                        "configuration nor an http:// or https:// URL\n", cmd, source);
        goto fail;
    }
    s->runner = runner;
    if (!runner) {
        if ((rc = rg_query_runner_new(&s->runner))) {
            fprintf(stderr, "rollgate %s: cannot set up the HTTP client: %s\n", cmd,
                    rg_strerror(rc));
            goto fail;
        }
        s->own_runner = 1;
    }
    rg_buf_cleanup(&err);
    return 0;

fail:
    rg_buf_cleanup(&err);
    session_close(s);
    return RG_QUERY_EXIT_ERROR;
}

static int be_instant(void *ud, const char *expr, int64_t t_ms, struct rg_query_result *out,
                      struct rg_buf *errmsg)
{
    const struct session *s = ud;

    return rg_query_runner_instant(s->runner, s->src, expr, t_ms, out, errmsg);
}

static int be_range(void *ud, const char *expr, int64_t start_ms, int64_t end_ms,
                    int64_t step_ms, struct rg_query_result *out, struct rg_buf *errmsg)
{
    const struct session *s = ud;

    return rg_query_runner_range(s->runner, s->src, expr, start_ms, end_ms, step_ms, out,
                                 errmsg);
}

/* Completion of one request of a batch: the answer goes into the request. */
static void be_answered(void *ud, int err, const char *msg, struct rg_query_result *res)
{
    struct rg_query_req *r = ud;

    r->answered = 1;
    r->err = err;
    if (!err) {
        r->res = *res;
        memset(res, 0, sizeof(*res));
    } else {
        rg_buf_reset(&r->msg);
        rg_buf_puts(&r->msg, msg);
    }
}

static void be_batch(void *ud, struct rg_query_req *reqs, size_t n)
{
    const struct session *s = ud;
    struct rg_query_client *c = rg_query_runner_client(s->runner);

    for (size_t i = 0; i < n; i++) {
        struct rg_query_req *r = &reqs[i];
        int err;

        r->answered = 0;
        memset(&r->res, 0, sizeof(r->res));
        if (r->range)
            err = rg_query_range(c, s->src, r->expr, r->t_ms, r->end_ms, r->step_ms,
                                 be_answered, r);
        else
            err = rg_query_instant(c, s->src, r->expr, r->t_ms, be_answered, r);
        if (err) {
            /* Refused at once (no callback will come): answered with the reason. */
            r->answered = 1;
            r->err = err;
            rg_buf_reset(&r->msg);
            rg_buf_puts(&r->msg, rg_strerror(err));
        }
    }
    /* Queries the runner had to cancel called back with RG_ECANCELED. */
    rg_query_runner_wait(s->runner);
}

static struct rg_query_backend backend_of(const struct session *s)
{
    struct rg_query_backend be = { be_instant, be_range, (void *)s, be_batch };
    return be;
}

/* The deployments to judge: the one named, the configured ones, or, when the
 * configuration names none, those discovery finds on the source within @range_ms
 * (plus the usual 5 m lookback) before @t_ms. Returns 0 with at least one, or an
 * error with the reason in @err. */
static int targets(const struct session *s, const struct rg_query_backend *be, const char *dep,
                   int64_t t_ms, int64_t range_ms, struct rg_query_targets *out,
                   struct rg_buf *err)
{
    int rc;

    if (dep || s->cl->ndeployments)
        return rg_query_targets_build(s->cl, dep, out, err);
    if ((rc = rg_query_targets_discover(s->cl, be, t_ms, range_ms + 5 * 60 * 1000, out, err)))
        return rc;
    if (out->n == 0) {
        rg_buf_printf(err, "the configuration names no deployments and the source has no %s "
                           "series with a %s label: give one with --deployment NAME",
                      s->cl->metrics.http_requests, s->cl->discovery.label);
        return RG_ENOENT;
    }
    return 0;
}

static int use_color(FILE *f)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(fileno(f)) && !(nc && *nc);
}

/* Prints @b to stdout in full. */
static void put(const struct rg_buf *b)
{
    if (b->data)
        fwrite(b->data, 1, b->len, stdout);
}

/* ---- eval ---------------------------------------------------------------------------- */

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: rollgate eval --config FILE --source URL|NAME [--deployment NAME]\n"
               "                     [--phase PHASE] [--time T] [--output table|json]\n"
               "exit status: 0 every gate passes, 1 a rollback trigger fires, 2 a gate fails\n"
               "or the data is insufficient, 3 an error\n");
}

/* Severity order of the exit codes: rollback, error, gates, pass. */
static int severity(int code)
{
    switch (code) {
    case RG_QUERY_EXIT_ROLLBACK: return 3;
    case RG_QUERY_EXIT_ERROR: return 2;
    case RG_QUERY_EXIT_GATES: return 1;
    default: return 0;
    }
}

int rg_query_cli_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "source", required_argument, NULL, 's' },
        { "deployment", required_argument, NULL, 'd' },
        { "phase", required_argument, NULL, 'p' },
        { "time", required_argument, NULL, 't' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *source = NULL, *dep = NULL, *phase = NULL, *output = "table";
    int64_t t_ms = rg_now_ms() / 1000 * 1000;
    struct rg_query_targets ts = { 0 };
    struct rg_buf out = { 0 }, err = { 0 };
    struct rg_query_backend be;
    struct rg_query_eval *evals = NULL;
    size_t *phases = NULL;
    struct session s;
    int c, exit_code = RG_QUERY_EXIT_PASS, json, color;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': source = optarg; break;
        case 'd': dep = optarg; break;
        case 'p': phase = optarg; break;
        case 't':
            if (rg_query_cli_parse_time(optarg, &t_ms)) {
                fprintf(stderr, "rollgate eval: invalid --time \"%s\" (Unix seconds or "
                                "RFC 3339)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'o': output = optarg; break;
        case 'h': eval_usage(stdout); return 0;
        default: eval_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc || !config || !source ||
        (strcmp(output, "table") != 0 && strcmp(output, "json") != 0)) {
        eval_usage(stderr);
        return EXIT_USAGE;
    }
    json = strcmp(output, "json") == 0;
    color = !json && use_color(stdout);
    if ((c = session_open(&s, "eval", config, source, NULL)))
        return c;
    be = backend_of(&s);
    if (targets(&s, &be, dep, t_ms, 0, &ts, &err)) {
        fprintf(stderr, "rollgate eval: %s\n", err.data ? err.data : "out of memory");
        exit_code = RG_QUERY_EXIT_ERROR;
        goto done;
    }
    for (size_t i = 0; i < ts.n; i++) {
        if (rg_query_target_phase(s.cl, &ts.v[i], phase) < 0) {
            fprintf(stderr, "rollgate eval: deployment %s does not go through phase \"%s\"\n",
                    ts.v[i].name, phase);
            exit_code = RG_QUERY_EXIT_ERROR;
            goto done;
        }
    }
    if (json) {
        rg_buf_puts(&out, "{\"source\":");
        rg_json_cstr(&out, s.src->name);
        rg_buf_printf(&out, ",\"time\":%.3f,\"deployments\":[", (double)t_ms / 1000.0);
    }
    phases = calloc(ts.n, sizeof(*phases));
    evals = calloc(ts.n, sizeof(*evals));
    if (!phases || !evals) {
        fprintf(stderr, "rollgate eval: out of memory\n");
        exit_code = RG_QUERY_EXIT_ERROR;
        goto done;
    }
    for (size_t i = 0; i < ts.n; i++)
        phases[i] = (size_t)rg_query_target_phase(s.cl, &ts.v[i], phase);
    /* Every deployment at once, so that their queries share batches. */
    if ((c = rg_query_eval_run_all(s.cl, ts.v, phases, ts.n, t_ms, 0, &be, evals))) {
        fprintf(stderr, "rollgate eval: evaluating %zu deployment%s: %s\n", ts.n,
                ts.n == 1 ? "" : "s", rg_strerror(c));
        exit_code = RG_QUERY_EXIT_ERROR;
        goto done;
    }
    for (size_t i = 0; i < ts.n; i++) {
        const struct rg_query_eval *e = &evals[i];
        if (severity(e->exit_code) > severity(exit_code))
            exit_code = e->exit_code;
        if (json) {
            if (i)
                rg_buf_putc(&out, ',');
            rg_query_eval_json(s.cl, e, &out);
        } else {
            if (i)
                rg_buf_putc(&out, '\n');
            rg_query_eval_table(s.cl, e, color, &out);
        }
    }
    if (json)
        rg_buf_printf(&out, "],\"exit_code\":%d}\n", exit_code);
    if (!out.data) {
        fprintf(stderr, "rollgate eval: out of memory\n");
        exit_code = RG_QUERY_EXIT_ERROR;
        goto done;
    }
    put(&out);

done:
    for (size_t i = 0; evals && i < ts.n; i++)
        rg_query_eval_cleanup(&evals[i]);
    free(evals);
    free(phases);
    rg_query_targets_cleanup(&ts);
    rg_buf_cleanup(&out);
    rg_buf_cleanup(&err);
    session_close(&s);
    return exit_code;
}

/* ---- replay -------------------------------------------------------------------------- */

static void replay_usage(FILE *f)
{
    fprintf(f, "usage: rollgate replay --config FILE --source URL|NAME --from T --to T\n"
               "                       [--step S] [--deployment NAME] [--phase-at TIME=PHASE ...]\n"
               "                       [--output text|json]\n"
               "exit status: 0 no rollback would have happened, 1 one would have, 3 an error\n");
}

/* Redraws the bar on stderr; repeated reports of the same count draw nothing. */
static void progress_bar(void *ud, size_t done, size_t total)
{
    size_t *last = ud;
    int width = 40, fill = total ? (int)((double)done / (double)total * width) : width;

    if (done == *last)
        return;
    *last = done;
    fprintf(stderr, "\r[");
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %zu/%zu", done, total);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
}

struct rule_files {
    struct rg_rulefile **v;
    size_t n;
    struct rg_buf *err;
    int bad;
};

static int load_rule_file(const char *path, void *ud)
{
    struct rule_files *rf = ud;
    struct rg_rulefile *f = NULL, **a;

    if (rg_rulefile_load(path, &f, rf->err)) {
        rf->bad = 1;
        return 0;
    }
    a = realloc(rf->v, (rf->n + 1) * sizeof(*a));
    if (!a) {
        rg_rulefile_free(f);
        return RG_ENOMEM;
    }
    rf->v = a;
    a[rf->n++] = f;
    return 0;
}

static void rule_files_free(struct rule_files *rf)
{
    for (size_t i = 0; i < rf->n; i++)
        rg_rulefile_free(rf->v[i]);
    free(rf->v);
}

static int has_interval(const char *path, const struct rg_yaml_node *section, void *ud)
{
    (void)path;
    if (section && section->kind == RG_YAML_MAP && rg_yaml_get(section, "evaluation_interval"))
        *(int *)ud = 1;
    return 0;
}

int rg_query_cli_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "source", required_argument, NULL, 's' },
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "step", required_argument, NULL, 'S' },
        { "deployment", required_argument, NULL, 'd' },
        { "phase-at", required_argument, NULL, 'p' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *source = NULL, *dep = NULL, *output = "text";
    struct rg_query_phase_at pa[MAX_PHASE_AT];
    char pa_names[MAX_PHASE_AT][128];
    size_t npa = 0, progress_last = 0;
    int64_t from = 0, to = 0, step = 0;
    int has_from = 0, has_to = 0, set_interval = 0, c, json, rc;
    int exit_code = RG_QUERY_EXIT_ERROR;
    struct rg_query_targets ts = { 0 };
    struct rg_buf out = { 0 }, err = { 0 };
    struct rule_files rf = { NULL, 0, &err, 0 };
    struct rg_rules_global global;
    struct rg_query_replay_opts o;
    struct rg_query_replay r;
    struct rg_query_backend be;
    struct session s;

    memset(&global, 0, sizeof(global));
    memset(&r, 0, sizeof(r));
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': source = optarg; break;
        case 'd': dep = optarg; break;
        case 'o': output = optarg; break;
        case 'f':
        case 't':
            if (rg_query_cli_parse_time(optarg, c == 'f' ? &from : &to)) {
                fprintf(stderr, "rollgate replay: invalid --%s \"%s\" (Unix seconds or "
                                "RFC 3339)\n", c == 'f' ? "from" : "to", optarg);
                return EXIT_USAGE;
            }
            *(c == 'f' ? &has_from : &has_to) = 1;
            break;
        case 'S':
            if (rg_query_cli_parse_duration(optarg, &step)) {
                fprintf(stderr, "rollgate replay: invalid --step \"%s\"\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'p': {
            const char *eq = strrchr(optarg, '=');
            char when[128];
            if (npa == MAX_PHASE_AT || !eq || eq == optarg || !eq[1] ||
                (size_t)(eq - optarg) >= sizeof(when) || strlen(eq + 1) >= sizeof(pa_names[0])) {
                fprintf(stderr, "rollgate replay: invalid --phase-at \"%s\" (TIME=PHASE, at "
                                "most %d)\n", optarg, MAX_PHASE_AT);
                return EXIT_USAGE;
            }
            memcpy(when, optarg, (size_t)(eq - optarg));
            when[eq - optarg] = '\0';
            if (rg_query_cli_parse_time(when, &pa[npa].t_ms)) {
                fprintf(stderr, "rollgate replay: invalid time in --phase-at \"%s\"\n", optarg);
                return EXIT_USAGE;
            }
            snprintf(pa_names[npa], sizeof(pa_names[npa]), "%s", eq + 1);
            pa[npa].phase = pa_names[npa];
            npa++;
            break;
        }
        case 'h': replay_usage(stdout); return 0;
        default: replay_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc || !config || !source || !has_from || !has_to ||
        (strcmp(output, "text") != 0 && strcmp(output, "json") != 0)) {
        replay_usage(stderr);
        return EXIT_USAGE;
    }
    json = strcmp(output, "json") == 0;
    if ((c = session_open(&s, "replay", config, source, NULL)))
        return c;
    if (!step) {
        /* The evaluation interval when the configuration sets one, else 15 s (a
         * common scrape interval: finer steps only repeat the same samples). */
        rg_config_each_section(&s.cfg, "global", has_interval, &set_interval);
        step = set_interval ? s.cl->evaluation_interval_ms : DEFAULT_REPLAY_STEP_MS;
    }
    /* Evaluations on multiples of the step, as servers that cache range queries
     * align them anyway; then every server answers at the same times. */
    from -= ((from % step) + step) % step;
    be = backend_of(&s);
    if (targets(&s, &be, dep, to, to - from, &ts, &err)) {
        fprintf(stderr, "rollgate replay: %s\n", err.data ? err.data : "out of memory");
        goto done;
    }
    if (rg_rules_global_parse(&s.cfg, &global, &err) ||
        rg_rulefile_each_path(&s.cfg, load_rule_file, &rf, &err) || rf.bad) {
        fprintf(stderr, "%srollgate replay: invalid rule files in %s\n",
                err.data ? err.data : "", config);
        goto done;
    }
    memset(&o, 0, sizeof(o));
    o.from_ms = from;
    o.to_ms = to;
    o.step_ms = step;
    o.phase_at = pa;
    o.nphase_at = npa;
    if (isatty(STDERR_FILENO)) {
        o.progress = progress_bar;
        o.progress_ud = &progress_last;
    }
    rc = rg_query_replay_run(s.cl, &ts, (const struct rg_rulefile *const *)rf.v, rf.n, &global,
                             &be, &o, &r, &err);
    if (rc) {
        fprintf(stderr, "rollgate replay: %s\n",
                err.data && err.len ? err.data : rg_strerror(rc));
        goto done;
    }
    if (json) {
        rg_query_replay_json(s.cl, &r, &out);
        rg_buf_putc(&out, '\n');
    } else {
        rg_query_replay_text(s.cl, &r, use_color(stdout), &out);
    }
    if (!out.data) {
        fprintf(stderr, "rollgate replay: out of memory\n");
        goto done;
    }
    put(&out);
    exit_code = r.first_rollback >= 0 ? RG_QUERY_EXIT_ROLLBACK
                : r.nerrors ? RG_QUERY_EXIT_ERROR : RG_QUERY_EXIT_PASS;

done:
    rg_query_replay_cleanup(&r);
    rule_files_free(&rf);
    rg_rules_global_cleanup(&global);
    rg_query_targets_cleanup(&ts);
    rg_buf_cleanup(&out);
    rg_buf_cleanup(&err);
    session_close(&s);
    return exit_code;
}

/* ---- check --source ------------------------------------------------------------------ */

int rg_query_cli_wants_check(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--source") == 0 || strncmp(argv[i], "--source=", 9) == 0)
            return 1;
    return 0;
}

/* One query to test, with what it is for. */
struct probe {
    char *query;               /* owned */
    char *what;                /* owned: "deployment X: signal Y" */
    int optional;              /* no data is acceptable (only no_data: ok gates use it) */
    int rule;                  /* a rule expression: only failures count */
};

struct probes {
    struct probe *v;
    size_t n;
};

static int probe_add(struct probes *ps, const char *query, const char *what, int optional,
                     int rule)
{
    struct probe *a;

    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->v[i].query, query) == 0) {
            /* Shared by a check that needs data: the signal is not optional. */
            ps->v[i].optional &= optional;
            return 0;
        }
    a = realloc(ps->v, (ps->n + 1) * sizeof(*a));
    if (!a)
        return RG_ENOMEM;
    ps->v = a;
    a = &ps->v[ps->n];
    a->query = strdup(query);
    a->what = strdup(what);
    a->optional = optional;
    a->rule = rule;
    if (!a->query || !a->what) {
        free(a->query);
        free(a->what);
        return RG_ENOMEM;
    }
    ps->n++;
    return 0;
}

static void probes_free(struct probes *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->v[i].query);
        free(ps->v[i].what);
    }
    free(ps->v);
}

static int probe_check(struct probes *ps, const struct rg_checklist *cl, const char *dep,
                       const char *selector, int64_t window, const struct rg_checklist_check *k)
{
    const struct rg_checklist_signal *sig = rg_checklist_signal_find(cl, k->signal);
    struct rg_buf q = { 0 }, what = { 0 };
    int rc = RG_ENOMEM;

    if (!sig)
        return 0;
    if (strstr(sig->expr, "<window>")) {
        rg_buf_printf(&what, "deployment %s: signal %s, window ", dep, sig->name);
        rg_promql_format_duration(window, &what);
    } else {
        rg_buf_printf(&what, "deployment %s: signal %s", dep, sig->name);
    }
    if (rg_checklist_expand(sig->expr, selector, window, &q) == 0 && what.data)
        rc = probe_add(ps, q.data, what.data,
                       k->kind == RG_CHECKLIST_GATE && k->no_data == RG_CHECKLIST_NODATA_OK, 0);
    rg_buf_cleanup(&q);
    rg_buf_cleanup(&what);
    return rc;
}

/* Every query the checklist would run for @t, in every phase it goes through. */
static int probe_target(struct probes *ps, const struct rg_checklist *cl,
                        const struct rg_query_target *t)
{
    const struct rg_checklist_signal *req = rg_checklist_signal_find(cl, "request_count");
    int rc;

    for (size_t i = 0; i < t->nphases; i++) {
        const struct rg_checklist_phase *ph = &cl->phases[t->phases[i]];
        int64_t w = rg_checklist_window(ph);
        for (size_t j = 0; j < ph->ngates; j++) {
            if ((rc = probe_check(ps, cl, t->name, t->selector, w, &ph->gates[j])))
                return rc;
            if (ph->gates[j].has_baseline && t->baseline_selector &&
                (rc = probe_check(ps, cl, t->name, t->baseline_selector, w, &ph->gates[j])))
                return rc;
        }
        for (size_t j = 0; j < ph->ntriggers; j++)
            if ((rc = probe_check(ps, cl, t->name, t->selector, w, &ph->triggers[j])))
                return rc;
        for (size_t j = 0; j < cl->ntriggers; j++)
            if ((rc = probe_check(ps, cl, t->name, t->selector, w, &cl->triggers[j])))
                return rc;
        if (req && ph->min_requests > 0) {
            struct rg_buf q = { 0 }, what = { 0 };
            rc = RG_ENOMEM;
            rg_buf_printf(&what, "deployment %s: signal request_count, window ", t->name);
            rg_promql_format_duration(w, &what);
            if (rg_checklist_expand(req->expr, t->selector, w, &q) == 0 && what.data)
                rc = probe_add(ps, q.data, what.data, 0, 0);
            rg_buf_cleanup(&q);
            rg_buf_cleanup(&what);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int probe_rules(struct probes *ps, const struct rule_files *rf)
{
    struct rg_buf what = { 0 };
    int rc = 0;

    for (size_t f = 0; f < rf->n && !rc; f++)
        for (size_t g = 0; g < rf->v[f]->ngroups && !rc; g++) {
            const struct rg_rule_group *grp = &rf->v[f]->groups[g];
            for (size_t r = 0; r < grp->nrules && !rc; r++) {
                rg_buf_reset(&what);
                rg_buf_printf(&what, "rule %s/%s/%s", rf->v[f]->path, grp->name,
                              grp->rules[r].name);
                rc = what.data ? probe_add(ps, grp->rules[r].expr_text, what.data, 1, 1)
                               : RG_ENOMEM;
            }
        }
    rg_buf_cleanup(&what);
    return rc;
}

/* Runs the probes of configuration @path against the session's source; prints one
 * line per probe. Returns how many count as problems. */
static size_t run_probes(const char *path, const struct probes *ps, const struct session *s,
                         int64_t now_ms)
{
    struct rg_query_backend be = backend_of(s);
    struct rg_query_req *reqs = calloc(ps->n ? ps->n : 1, sizeof(*reqs));
    size_t bad = 0;

    if (!reqs) {
        fprintf(stderr, "rollgate check: out of memory\n");
        return 1;
    }
    /* Every probe in one batch; the answers are printed in the probes' order. */
    for (size_t i = 0; i < ps->n; i++) {
        reqs[i].expr = ps->v[i].query;
        reqs[i].t_ms = now_ms;
    }
    rg_query_backend_run(&be, reqs, ps->n);
    for (size_t i = 0; i < ps->n; i++) {
        const struct probe *p = &ps->v[i];
        const struct rg_query_result *res = &reqs[i].res;
        const struct rg_buf *msg = &reqs[i].msg;
        struct rg_verdict_input in = { 0 };
        struct rg_buf v = { 0 };
        char ebuf[256];
        int rc = reqs[i].err;

        if (rc) {
            printf("%s: %s: query failed: %s\n", path, p->what,
                   msg->data && msg->len ? msg->data : rg_strerror(rc));
            bad++;
        } else if (p->rule) {
            printf("%s: %s: ok (%zu series)\n", path, p->what,
                   res->type == RG_PROMQL_VT_VECTOR ? res->nseries : (size_t)1);
        } else {
            rg_query_value(res, &in, ebuf, sizeof(ebuf));
            if (in.error) {
                printf("%s: %s: %s\n", path, p->what, in.error);
                bad++;
            } else if (!in.has_value || isnan(in.value)) {
                printf("%s: %s: no data%s\n", path, p->what,
                       p->optional ? " (accepted: its gates say no_data: ok)" : "");
                bad += !p->optional;
            } else {
                rg_query_format_value(in.value, &v);
                printf("%s: %s: ok (%s)\n", path, p->what, v.data ? v.data : "");
            }
        }
        if (!p->rule && (rc || in.error || !in.has_value || isnan(in.value)))
            printf("    query: %s\n", p->query);
        rg_buf_cleanup(&v);
    }
    for (size_t i = 0; i < ps->n; i++) {
        /* The expressions are the probes'. */
        reqs[i].expr = NULL;
        rg_query_req_cleanup(&reqs[i]);
    }
    free(reqs);
    return bad;
}

/* Builds and runs the probes of one configuration file. Returns 0 when every probe
 * passed, 1 otherwise. */
static int check_config(const char *path, const char *source, int64_t now_ms,
                        struct rg_query_runner *runner)
{
    struct rg_query_targets ts = { 0 };
    struct probes ps = { NULL, 0 };
    struct rg_buf err = { 0 }, sel = { 0 };
    struct rule_files rf = { NULL, 0, &err, 0 };
    struct session s;
    int bad = 1;

    if (session_open(&s, "check", path, source, runner))
        return 1;
    if (s.cl->ndeployments) {
        if (rg_query_targets_build(s.cl, NULL, &ts, &err))
            goto done;
    } else {
        /* No deployment to name: every series that has the discovery label, so that
         * the queries are exercised against whatever the server holds. */
        struct rg_query_target *t = calloc(1, sizeof(*t));
        size_t *phases = calloc(s.cl->nphases ? s.cl->nphases : 1, sizeof(*phases));
        ts.v = t;
        if (!t || !phases) {
            free(phases);
            goto done;
        }
        ts.n = 1;
        rg_buf_printf(&sel, "%s=~\".+\"", s.cl->discovery.label);
        t->name = strdup("(any)");
        t->selector = sel.data ? strdup(sel.data) : NULL;
        t->phases = phases;
        for (size_t i = 0; i < s.cl->nphases; i++)
            phases[i] = i;
        t->nphases = s.cl->nphases;
        if (!t->name || !t->selector)
            goto done;
    }
    for (size_t i = 0; i < ts.n; i++)
        if (probe_target(&ps, s.cl, &ts.v[i]))
            goto done;
    if (rg_rulefile_each_path(&s.cfg, load_rule_file, &rf, &err) || rf.bad ||
        probe_rules(&ps, &rf)) {
        fprintf(stderr, "%s", err.data ? err.data : "");
        goto done;
    }
    bad = run_probes(path, &ps, &s, now_ms) > 0;

done:
    if (bad && err.len)
        fprintf(stderr, "rollgate check: %s\n", err.data);
    rule_files_free(&rf);
    probes_free(&ps);
    rg_query_targets_cleanup(&ts);
    rg_buf_cleanup(&err);
    rg_buf_cleanup(&sel);
    session_close(&s);
    return bad;
}

/* A rule file given directly: each expression once. */
static int check_rulefile(const char *path, const char *source, int64_t now_ms,
                          struct rg_query_runner *runner)
{
    struct rg_buf err = { 0 };
    struct rule_files rf = { NULL, 0, &err, 0 };
    struct probes ps = { NULL, 0 };
    struct session s;
    int bad = 1;

    memset(&s, 0, sizeof(s));
    s.runner = runner;
    s.sources = calloc(1, sizeof(*s.sources));
    if (!s.sources)
        return 1;
    if (rg_query_sources_add_url(s.sources, source, &s.src)) {
        fprintf(stderr, "rollgate check: --source \"%s\" must be an http:// or https:// URL "
                        "for a rule file\n", source);
        goto done;
    }
    if (load_rule_file(path, &rf) || rf.bad || probe_rules(&ps, &rf))
        goto done;
    bad = run_probes(path, &ps, &s, now_ms) > 0;

done:
    rule_files_free(&rf);
    probes_free(&ps);
    rg_buf_cleanup(&err);
    session_close(&s);
    return bad;
}

int rg_query_cli_check(int argc, char **argv)
{
    const char *source = NULL;
    int64_t now_ms = rg_now_ms() / 1000 * 1000;
    struct rg_query_runner *runner = NULL;
    int bad = 0, files = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--source") == 0 && i + 1 < argc)
            source = argv[++i];
        else if (strncmp(argv[i], "--source=", 9) == 0)
            source = argv[i] + 9;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "usage: rollgate check --source URL|NAME FILE...\n");
            return 2;
        } else
            files++;
    }
    if (!source || !files) {
        fprintf(stderr, "usage: rollgate check --source URL|NAME FILE...\n");
        return 2;
    }
    /* One runner for every file, so that all their queries share connections. */
    if ((rc = rg_query_runner_new(&runner))) {
        fprintf(stderr, "rollgate check: cannot set up the HTTP client: %s\n",
                rg_strerror(rc));
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        struct rg_buf problems = { 0 }, dump = { 0 }, summary = { 0 };
        const char *path = argv[i];

        if (strcmp(path, "--source") == 0) {
            i++;
            continue;
        }
        if (strncmp(path, "--source=", 9) == 0)
            continue;
        rc = rg_check_file(path, 0, &problems, &dump, &summary);
        if (rc) {
            fputs(problems.data ? problems.data : "", stdout);
            bad = 1;
        } else {
            printf("%s: ok\n", summary.data ? summary.data : path);
            if (rg_rulefile_detect(path))
                bad |= check_rulefile(path, source, now_ms, runner);
            else
                bad |= check_config(path, source, now_ms, runner);
        }
        rg_buf_cleanup(&problems);
        rg_buf_cleanup(&dump);
        rg_buf_cleanup(&summary);
    }
    rg_query_runner_free(runner);
    return bad;
}
