/* notify/payload.c - shared payload pieces, the Alertmanager and webhook bodies.
 *
 * JSON is written by hand into an rg_buf, in the byte order Go's encoders produce:
 * struct fields in declaration order, map keys sorted, strings escaped as
 * encoding/json does with HTML escaping (the default of json.Marshal and of
 * json.Encoder). Times are converted to the civil calendar with Howard Hinnant's
 * days-to-civil algorithm ("chrono-Compatible Low-Level Date Algorithms"), which is
 * exact for every int64 millisecond. Label maps go through a sorted view (qsort on
 * name, then on input order so the first duplicate wins) that also feeds Prometheus'
 * FNV-1a label-set fingerprint. Keys are SHA-256 digests from OpenSSL's EVP API.
 */
#include "notify/payload.h"
#include "notify/payload_internal.h"
#include "promql/kernels.h"
#include "util/err.h"
#include "util/json.h"
#include "util/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#ifndef RG_VERSION
#define RG_VERSION "dev"
#endif

/* ---- JSON strings as Go writes them ------------------------------------------------ */

/* Go's encoding/json escapes HTML characters, U+2028 and U+2029 by default. */
int rg__pl_str(struct rg_buf *out, const char *s, size_t len)
{
    return rg_json_string_flags(out, s, len, RG_JSON_GO_HTML);
}

int rg__pl_cstr(struct rg_buf *out, const char *s)
{
    return rg__pl_str(out, s ? s : "", s ? strlen(s) : 0);
}

int rg__pl_cstr_or_null(struct rg_buf *out, const char *s)
{
    return s ? rg__pl_str(out, s, strlen(s)) : rg_buf_puts(out, "null");
}

int rg__pl_number(struct rg_buf *out, double v)
{
    if (isnan(v))
        return rg_buf_puts(out, "null");
    if (isinf(v))
        return rg_buf_puts(out, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    return rg_format_float(v, out);
}

/* ---- The sticky-error writer ------------------------------------------------------- */

void rg__pl_raw(struct rg__pl_w *w, const char *s)
{
    if (!w->err)
        w->err = rg_buf_puts(w->out, s);
}

void rg__pl_rawn(struct rg__pl_w *w, const char *s, size_t len)
{
    if (!w->err && len)
        w->err = rg_buf_append(w->out, s, len);
}

void rg__pl_printf(struct rg__pl_w *w, const char *fmt, ...)
{
    va_list ap;

    if (w->err)
        return;
    va_start(ap, fmt);
    w->err = rg_buf_vprintf(w->out, fmt, ap);
    va_end(ap);
}

void rg__pl_s(struct rg__pl_w *w, const char *s)
{
    if (!w->err)
        w->err = rg__pl_cstr(w->out, s);
}

void rg__pl_sn(struct rg__pl_w *w, const char *s, size_t len)
{
    if (!w->err)
        w->err = rg__pl_str(w->out, s ? s : "", s ? len : 0);
}

void rg__pl_s_or_null(struct rg__pl_w *w, const char *s)
{
    if (!w->err)
        w->err = rg__pl_cstr_or_null(w->out, s);
}

void rg__pl_num(struct rg__pl_w *w, double v)
{
    if (!w->err)
        w->err = rg__pl_number(w->out, v);
}

/* ---- Times ------------------------------------------------------------------------- */

struct civil {
    int64_t year;
    unsigned month, day, hour, min, sec, ms;
};

/* Splits @ms into UTC calendar fields. The remainder is taken before the division is
 * floored, so no intermediate product can overflow, even for INT64_MIN. */
static void to_civil(int64_t ms, struct civil *c)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    int64_t z, era, doe, yoe, doy, mp;

    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    c->ms = (unsigned)(rem % 1000);
    c->sec = (unsigned)(rem / 1000 % 60);
    c->min = (unsigned)(rem / 60000 % 60);
    c->hour = (unsigned)(rem / 3600000);
    /* Hinnant's civil_from_days: eras of 400 years (146097 days) starting on 1 March
     * so that the leap day is the last day of a year. */
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    c->day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    c->month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    c->year = yoe + era * 400 + (c->month <= 2);
}

/* Go's time.Format writes the year with at least four digits and a minus sign before
 * the magnitude of a negative year. */
static int put_date_time(struct rg_buf *out, const struct civil *c)
{
    uint64_t y = c->year < 0 ? (uint64_t)0 - (uint64_t)c->year : (uint64_t)c->year;

    return rg_buf_printf(out, "%s%04" PRIu64 "-%02u-%02uT%02u:%02u:%02u", c->year < 0 ? "-" : "",
                         y, c->month, c->day, c->hour, c->min, c->sec);
}

int rg_payload_rfc3339_ms(int64_t ms, struct rg_buf *out)
{
    struct civil c;
    int err;

    to_civil(ms, &c);
    if ((err = put_date_time(out, &c)))
        return err;
    return rg_buf_printf(out, ".%03uZ", c.ms);
}

int rg_payload_rfc3339_nano(int64_t ms, struct rg_buf *out)
{
    struct civil c;
    int err;

    to_civil(ms, &c);
    if ((err = put_date_time(out, &c)))
        return err;
    if (c.ms == 0)
        return rg_buf_putc(out, 'Z');
    if (c.ms % 100 == 0)
        return rg_buf_printf(out, ".%uZ", c.ms / 100);
    if (c.ms % 10 == 0)
        return rg_buf_printf(out, ".%02uZ", c.ms / 10);
    return rg_buf_printf(out, ".%03uZ", c.ms);
}

int rg__pl_time(struct rg_buf *out, int64_t ms, int zero_null)
{
    int err;

    if (ms == 0 && zero_null)
        return rg_buf_puts(out, "null");
    if ((err = rg_buf_putc(out, '"')) || (err = rg_payload_rfc3339_ms(ms, out)))
        return err;
    return rg_buf_putc(out, '"');
}

void rg__pl_ms(struct rg__pl_w *w, int64_t ms, int zero_null)
{
    if (!w->err)
        w->err = rg__pl_time(w->out, ms, zero_null);
}

/* Go's time.Time JSON: RFC3339Nano, and the zero time for an unset end. */
static void put_go_time(struct rg__pl_w *w, int64_t ms)
{
    if (ms == 0) {
        rg__pl_raw(w, "\"0001-01-01T00:00:00Z\"");
        return;
    }
    rg__pl_raw(w, "\"");
    if (!w->err)
        w->err = rg_payload_rfc3339_nano(ms, w->out);
    rg__pl_raw(w, "\"");
}

/* ---- Small public functions -------------------------------------------------------- */

enum rg_notify_status rg_payload_alert_status(const struct rg_notify_alert *a, int64_t now_ms)
{
    return a->ends_at_ms != 0 && a->ends_at_ms <= now_ms ? RG_NOTIFY_RESOLVED : RG_NOTIFY_FIRING;
}

const char *rg_payload_status_name(enum rg_notify_status s)
{
    return s == RG_NOTIFY_RESOLVED ? "resolved" : "firing";
}

const char *rg_payload_event_kind_name(enum rg_notify_event_kind kind)
{
    static const char *const names[RG_NOTIFY_EVENT__COUNT] = {
        "phase_started", "verdict_changed", "rollback", "promote", "human_trigger", "reset",
        "test",
    };

    return (unsigned)kind < RG_NOTIFY_EVENT__COUNT ? names[kind] : "unknown";
}

size_t rg_payload_utf8_prefix(const char *s, size_t len, size_t max)
{
    size_t i = 0;

    if (len <= max)
        return len;
    while (i < len) {
        size_t u = rg_utf8_seq_len(s + i, len - i);

        if (u == 0)
            u = 1;
        if (i + u > max)
            break;
        i += u;
    }
    return i;
}

int rg__pl_truncated(struct rg_buf *out, const char *s, size_t len, size_t max)
{
    int err;

    if (len <= max)
        return rg_buf_append(out, s, len);
    if ((err = rg_buf_append(out, s, rg_payload_utf8_prefix(s, len, max - 3))))
        return err;
    return rg_buf_puts(out, "\xe2\x80\xa6");
}

size_t rg_payload_batch_count(size_t n, size_t max)
{
    if (max == 0)
        max = RG_PAYLOAD_AM_BATCH;
    return n / max + (n % max != 0);
}

void rg_payload_batch_range(size_t n, size_t max, size_t i, size_t *first, size_t *count)
{
    if (max == 0)
        max = RG_PAYLOAD_AM_BATCH;
    if (i >= rg_payload_batch_count(n, max)) {
        *first = n;
        *count = 0;
        return;
    }
    *first = i * max;
    *count = n - *first < max ? n - *first : max;
}

/* ---- Keys -------------------------------------------------------------------------- */

int rg__pl_sha256_hex(const struct rg_slice *parts, size_t n, char out[RG_PAYLOAD_KEY_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx;
    int ok;

    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return RG_ENOMEM;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len);
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return RG_ENOMEM;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

int rg_payload_idempotency_key(const char *const *parts, size_t n, char out[RG_PAYLOAD_KEY_SIZE])
{
    struct rg_slice *sl;
    int err;

    /* Each part is followed by its NUL, so part boundaries are part of the digest. */
    sl = malloc((n ? n : 1) * sizeof(*sl));
    if (!sl)
        return RG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *p = parts[i] ? parts[i] : "";

        sl[i].ptr = p;
        sl[i].len = strlen(p) + 1;
    }
    err = rg__pl_sha256_hex(sl, n, out);
    free(sl);
    return err;
}

int rg_payload_deploy_dedup_key(const struct rg_notify_deploy_event *ev,
                                char out[RG_PAYLOAD_KEY_SIZE])
{
    char start[24], at[24];
    const char *parts[7];
    size_t n = 0;

    snprintf(start, sizeof(start), "%" PRId64, ev->phase_start_ms);
    snprintf(at, sizeof(at), "%" PRId64, ev->at_ms);
    /* The version tag lets a future change of the recipe start a new key space
     * instead of colliding with keys already stored in outboxes. */
    parts[n++] = "rollgate-deploy-event-v1";
    parts[n++] = ev->deployment;
    parts[n++] = ev->phase;
    parts[n++] = rg_payload_event_kind_name(ev->kind);
    parts[n++] = ev->verdict;
    parts[n++] = start;
    /* Test events are independent of the deployment state: each one is new. */
    if (ev->kind == RG_NOTIFY_EVENT_TEST)
        parts[n++] = at;
    return rg_payload_idempotency_key(parts, n, out);
}

/* ---- Label views and fingerprints -------------------------------------------------- */

struct lentry {
    const struct rg_label *l;
    size_t order;   /* input position; alert labels come before external ones */
};

static int lentry_cmp(const void *a, const void *b)
{
    const struct lentry *x = a, *y = b;
    int c = strcmp(x->l->name, y->l->name);

    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

int rg__pl_lset_build(struct rg__pl_lset *s, const struct rg_label *labels, size_t n,
                      const struct rg_label *ext, size_t next)
{
    struct lentry *e;
    size_t m = 0, total = n + next;

    s->n = 0;
    if (total < n || total > SIZE_MAX / sizeof(*e))
        return RG_ENOMEM;
    if (total > s->cap) {
        const struct rg_label **v = realloc(s->v, total * sizeof(*v));

        if (!v)
            return RG_ENOMEM;
        s->v = v;
        s->cap = total;
    }
    if (total == 0)
        return 0;
    e = malloc(total * sizeof(*e));
    if (!e)
        return RG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (labels[i].name && labels[i].value && labels[i].value[0])
            e[m].l = &labels[i], e[m].order = m, m++;
    for (size_t i = 0; i < next; i++)
        if (ext[i].name && ext[i].value && ext[i].value[0])
            e[m].l = &ext[i], e[m].order = m, m++;
    qsort(e, m, sizeof(*e), lentry_cmp);
    for (size_t i = 0; i < m; i++)
        if (s->n == 0 || strcmp(s->v[s->n - 1]->name, e[i].l->name) != 0)
            s->v[s->n++] = e[i].l;
    free(e);
    return 0;
}

void rg__pl_lset_cleanup(struct rg__pl_lset *s)
{
    if (!s)
        return;
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

const char *rg__pl_lset_get(const struct rg__pl_lset *s, const char *name)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid]->name, name);

        if (c == 0)
            return s->v[mid]->value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void rg__pl_lset_json(struct rg__pl_w *w, const struct rg__pl_lset *s)
{
    rg__pl_raw(w, "{");
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            rg__pl_raw(w, ",");
        rg__pl_s(w, s->v[i]->name);
        rg__pl_raw(w, ":");
        rg__pl_s(w, s->v[i]->value);
    }
    rg__pl_raw(w, "}");
}

#define FNV64_OFFSET UINT64_C(14695981039346656037)
#define FNV64_PRIME  UINT64_C(1099511628211)

static uint64_t fnv_add(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * FNV64_PRIME;
    return h;
}

uint64_t rg__pl_lset_fingerprint(const struct rg__pl_lset *s)
{
    uint64_t h = FNV64_OFFSET;

    /* 0xff cannot occur in UTF-8, so it separates names from values unambiguously. */
    for (size_t i = 0; i < s->n; i++) {
        h = (fnv_add(h, s->v[i]->name) ^ 0xff) * FNV64_PRIME;
        h = (fnv_add(h, s->v[i]->value) ^ 0xff) * FNV64_PRIME;
    }
    return h;
}

int rg_payload_fingerprint(const struct rg_label *labels, size_t n, const struct rg_label *ext,
                           size_t next, uint64_t *out)
{
    struct rg__pl_lset s = { 0 };
    int err = rg__pl_lset_build(&s, labels, n, ext, next);

    if (!err)
        *out = rg__pl_lset_fingerprint(&s);
    rg__pl_lset_cleanup(&s);
    return err;
}

void rg_payload_fingerprint_hex(uint64_t fp, char out[RG_PAYLOAD_FP_SIZE])
{
    snprintf(out, RG_PAYLOAD_FP_SIZE, "%016" PRIx64, fp);
}

/* ---- Alertmanager POST body -------------------------------------------------------- */

/* One element of models.PostableAlerts. go-swagger marshals the allOf parts one after
 * the other: first {annotations, endsAt, startsAt} (annotations omitted when empty),
 * then the embedded Alert {generatorURL (omitted when empty), labels}. An unset end
 * is left out, which Alertmanager treats like Prometheus' zero time. */
static void am_alert(struct rg__pl_w *w, const struct rg__pl_lset *labels,
                     const struct rg__pl_lset *annos, const struct rg_notify_alert *a)
{
    rg__pl_raw(w, "{");
    if (annos->n) {
        rg__pl_raw(w, "\"annotations\":");
        rg__pl_lset_json(w, annos);
        rg__pl_raw(w, ",");
    }
    if (a->ends_at_ms) {
        rg__pl_raw(w, "\"endsAt\":");
        rg__pl_ms(w, a->ends_at_ms, 0);
        rg__pl_raw(w, ",");
    }
    rg__pl_raw(w, "\"startsAt\":");
    rg__pl_ms(w, a->starts_at_ms, 0);
    if (a->generator_url && a->generator_url[0]) {
        rg__pl_raw(w, ",\"generatorURL\":");
        rg__pl_s(w, a->generator_url);
    }
    rg__pl_raw(w, ",\"labels\":");
    rg__pl_lset_json(w, labels);
    rg__pl_raw(w, "}");
}

int rg_payload_alertmanager(const struct rg_notify_alert *alerts, size_t n,
                            const struct rg_label *ext, size_t next, struct rg_buf *out)
{
    struct rg__pl_lset labels = { 0 }, annos = { 0 };
    struct rg__pl_w w = { out, 0 };

    rg__pl_raw(&w, "[");
    for (size_t i = 0; i < n && !w.err; i++) {
        const struct rg_notify_alert *a = &alerts[i];

        if ((w.err = rg__pl_lset_build(&labels, a->labels, a->nlabels, ext, next)) ||
            (w.err = rg__pl_lset_build(&annos, a->annotations, a->nannotations, NULL, 0)))
            break;
        if (i)
            rg__pl_raw(&w, ",");
        am_alert(&w, &labels, &annos, a);
    }
    rg__pl_raw(&w, "]");
    rg__pl_lset_cleanup(&annos);
    rg__pl_lset_cleanup(&labels);
    return w.err;
}

/* ---- Alert groups ------------------------------------------------------------------ */

/* Keeps in @common only the pairs that @s has with the same value. */
static void lset_intersect(struct rg__pl_lset *common, const struct rg__pl_lset *s)
{
    size_t m = 0;

    for (size_t i = 0; i < common->n; i++) {
        const char *v = rg__pl_lset_get(s, common->v[i]->name);

        if (v && strcmp(v, common->v[i]->value) == 0)
            common->v[m++] = common->v[i];
    }
    common->n = m;
}

static int lset_copy(struct rg__pl_lset *dst, const struct rg__pl_lset *src)
{
    if (src->n > dst->cap) {
        const struct rg_label **v = realloc(dst->v, src->n * sizeof(*v));

        if (!v)
            return RG_ENOMEM;
        dst->v = v;
        dst->cap = src->n;
    }
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
    dst->n = src->n;
    return 0;
}

int rg__pl_group_build(struct rg__pl_group *gv, const struct rg_notify_group *g,
                       const struct rg_notify_alert *alerts, size_t n, int64_t now_ms)
{
    static const struct rg_notify_group none;
    int err;

    memset(gv, 0, sizeof(*gv));
    if (!g)
        g = &none;
    if (n) {
        gv->labels = calloc(n, sizeof(*gv->labels));
        gv->annotations = calloc(n, sizeof(*gv->annotations));
        if (!gv->labels || !gv->annotations) {
            err = RG_ENOMEM;
            goto fail;
        }
    }
    gv->n = n;
    for (size_t i = 0; i < n; i++) {
        const struct rg_notify_alert *a = &alerts[i];

        if ((err = rg__pl_lset_build(&gv->labels[i], a->labels, a->nlabels, g->external_labels,
                                     g->nexternal_labels)) ||
            (err = rg__pl_lset_build(&gv->annotations[i], a->annotations, a->nannotations,
                                     NULL, 0)))
            goto fail;
        if (rg_payload_alert_status(a, now_ms) == RG_NOTIFY_FIRING)
            gv->firing++;
        else
            gv->resolved++;
    }
    /* Common pairs are those of the first alert that every other alert shares
     * (Alertmanager's template.Data). */
    if (n && ((err = lset_copy(&gv->common_labels, &gv->labels[0])) ||
              (err = lset_copy(&gv->common_annotations, &gv->annotations[0]))))
        goto fail;
    for (size_t i = 1; i < n; i++) {
        lset_intersect(&gv->common_labels, &gv->labels[i]);
        lset_intersect(&gv->common_annotations, &gv->annotations[i]);
    }
    if ((err = rg__pl_lset_build(&gv->group_labels, g->group_labels, g->ngroup_labels, NULL, 0)))
        goto fail;
    return 0;

fail:
    rg__pl_group_cleanup(gv);
    return err;
}

void rg__pl_group_cleanup(struct rg__pl_group *gv)
{
    if (!gv)
        return;
    for (size_t i = 0; i < gv->n; i++) {
        if (gv->labels)
            rg__pl_lset_cleanup(&gv->labels[i]);
        if (gv->annotations)
            rg__pl_lset_cleanup(&gv->annotations[i]);
    }
    free(gv->labels);
    free(gv->annotations);
    rg__pl_lset_cleanup(&gv->common_labels);
    rg__pl_lset_cleanup(&gv->common_annotations);
    rg__pl_lset_cleanup(&gv->group_labels);
    memset(gv, 0, sizeof(*gv));
}

int rg__pl_group_subject(struct rg_buf *out, const struct rg__pl_group *gv)
{
    size_t extra = 0;
    int err;

    if (gv->firing)
        err = rg_buf_printf(out, "[FIRING:%zu]", gv->firing);
    else
        err = rg_buf_puts(out, "[RESOLVED]");
    for (size_t i = 0; !err && i < gv->group_labels.n; i++)
        if (!(err = rg_buf_putc(out, ' ')))
            err = rg_buf_puts(out, gv->group_labels.v[i]->value);
    for (size_t i = 0; !err && i < gv->common_labels.n; i++) {
        const struct rg_label *l = gv->common_labels.v[i];

        if (rg__pl_lset_get(&gv->group_labels, l->name))
            continue;
        err = rg_buf_puts(out, extra++ ? " " : " (");
        if (!err)
            err = rg_buf_puts(out, l->value);
    }
    if (!err && extra)
        err = rg_buf_putc(out, ')');
    return err;
}

/* Go's strconv.Quote for the label values of a group key: the common escapes, other
 * control bytes and invalid UTF-8 as \xNN, everything else as it is. */
static int go_quote(struct rg_buf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    int err = rg_buf_putc(out, '"');

    for (size_t i = 0; !err && i < len;) {
        unsigned char c = p[i];
        size_t u = rg_utf8_seq_len(s + i, len - i);
        const char *esc = NULL;

        switch (c) {
        case '\a': esc = "\\a"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\v': esc = "\\v"; break;
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        default: break;
        }
        if (esc) {
            err = rg_buf_puts(out, esc);
            i++;
        } else if (u == 0 || c < 0x20 || c == 0x7f) {
            err = rg_buf_printf(out, "\\x%02x", c);
            i++;
        } else {
            err = rg_buf_append(out, p + i, u);
            i += u;
        }
    }
    return err ? err : rg_buf_putc(out, '"');
}

int rg__pl_group_key(struct rg_buf *out, const struct rg_notify_group *g,
                     const struct rg__pl_group *gv)
{
    int err;

    if (g && g->group_key)
        return rg_buf_puts(out, g->group_key);
    /* aggrGroup.GroupKey(): the root route's key "{}", a colon, and the group labels
     * as model.LabelSet.String() prints them. */
    err = rg_buf_puts(out, "{}:{");
    for (size_t i = 0; !err && i < gv->group_labels.n; i++) {
        const struct rg_label *l = gv->group_labels.v[i];

        if ((i && (err = rg_buf_puts(out, ", "))) || (err = rg_buf_puts(out, l->name)) ||
            (err = rg_buf_putc(out, '=')))
            break;
        err = go_quote(out, l->value);
    }
    return err ? err : rg_buf_putc(out, '}');
}

/* regexp.QuoteMeta, which Alertmanager applies to the receiver name. */
static int quote_meta(struct rg_buf *out, const char *s)
{
    struct rg_buf q = { 0 };
    int err = rg_buf_reserve(&q, strlen(s) + 1);

    for (const char *p = s; !err && *p; p++) {
        if (strchr("\\.+*?()|[]{}^$", *p) && (err = rg_buf_putc(&q, '\\')))
            break;
        err = rg_buf_putc(&q, *p);
    }
    if (!err)
        err = rg__pl_str(out, q.data ? q.data : "", q.len);
    rg_buf_cleanup(&q);
    return err;
}

void rg__pl_webhook_alert(struct rg__pl_w *w, const struct rg__pl_group *gv,
                          const struct rg_notify_alert *a, size_t i, int64_t now_ms)
{
    char fp[RG_PAYLOAD_FP_SIZE];

    rg_payload_fingerprint_hex(rg__pl_lset_fingerprint(&gv->labels[i]), fp);
    rg__pl_raw(w, "{\"status\":\"");
    rg__pl_raw(w, rg_payload_status_name(rg_payload_alert_status(a, now_ms)));
    rg__pl_raw(w, "\",\"labels\":");
    rg__pl_lset_json(w, &gv->labels[i]);
    rg__pl_raw(w, ",\"annotations\":");
    rg__pl_lset_json(w, &gv->annotations[i]);
    rg__pl_raw(w, ",\"startsAt\":");
    put_go_time(w, a->starts_at_ms);
    rg__pl_raw(w, ",\"endsAt\":");
    put_go_time(w, a->ends_at_ms);
    rg__pl_raw(w, ",\"generatorURL\":");
    rg__pl_s(w, a->generator_url);
    rg__pl_raw(w, ",\"fingerprint\":\"");
    rg__pl_raw(w, fp);
    rg__pl_raw(w, "\"}");
}

int rg_payload_webhook_alerts(const struct rg_notify_group *g, const struct rg_notify_alert *alerts,
                              size_t n, int64_t now_ms, struct rg_buf *out)
{
    struct rg__pl_group gv;
    struct rg_buf key = { 0 };
    struct rg__pl_w w = { out, 0 };

    if ((w.err = rg__pl_group_build(&gv, g, alerts, n, now_ms)))
        return w.err;
    w.err = rg__pl_group_key(&key, g, &gv);
    /* notify/webhook.Message embeds *template.Data (receiver .. externalURL) before its
     * own fields (version, groupKey, truncatedAlerts). */
    rg__pl_raw(&w, "{\"receiver\":");
    if (!w.err)
        w.err = quote_meta(out, g && g->receiver ? g->receiver : "");
    rg__pl_raw(&w, ",\"status\":");
    rg__pl_raw(&w, gv.firing ? "\"firing\"" : "\"resolved\"");
    rg__pl_raw(&w, ",\"alerts\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            rg__pl_raw(&w, ",");
        rg__pl_webhook_alert(&w, &gv, &alerts[i], i, now_ms);
    }
    rg__pl_raw(&w, "],\"groupLabels\":");
    rg__pl_lset_json(&w, &gv.group_labels);
    rg__pl_raw(&w, ",\"commonLabels\":");
    rg__pl_lset_json(&w, &gv.common_labels);
    rg__pl_raw(&w, ",\"commonAnnotations\":");
    rg__pl_lset_json(&w, &gv.common_annotations);
    rg__pl_raw(&w, ",\"externalURL\":");
    rg__pl_s(&w, g ? g->external_url : NULL);
    rg__pl_raw(&w, ",\"version\":\"4\",\"groupKey\":");
    rg__pl_sn(&w, key.data, key.len);
    /* json.Encoder ends every value with a newline. */
    rg__pl_printf(&w, ",\"truncatedAlerts\":%" PRIu64 "}\n",
                  g ? g->truncated_alerts : (uint64_t)0);
    rg_buf_cleanup(&key);
    rg__pl_group_cleanup(&gv);
    return w.err;
}

/* ---- Deployment events ------------------------------------------------------------- */

static const char *str_or(const char *s, const char *dflt)
{
    return s && s[0] ? s : dflt;
}

int rg__pl_event_title(struct rg_buf *out, const struct rg_notify_deploy_event *ev)
{
    const char *dep = str_or(ev->deployment, "deployment");
    const char *phase = str_or(ev->phase, "?");
    int err;

    switch (ev->kind) {
    case RG_NOTIFY_EVENT_ROLLBACK:
        err = rg_buf_printf(out, "%s: rollback in phase %s", dep, phase);
        break;
    case RG_NOTIFY_EVENT_HUMAN_TRIGGER:
        err = rg_buf_printf(out, "%s: rollback requested in phase %s", dep, phase);
        break;
    case RG_NOTIFY_EVENT_PROMOTE:
        err = rg_buf_printf(out, "%s: promote from phase %s", dep, phase);
        break;
    case RG_NOTIFY_EVENT_PHASE_STARTED:
        err = rg_buf_printf(out, "%s: phase %s started", dep, phase);
        break;
    case RG_NOTIFY_EVENT_RESET:
        err = rg_buf_printf(out, "%s: reset to phase %s", dep, phase);
        break;
    case RG_NOTIFY_EVENT_TEST:
        err = rg_buf_printf(out, "%s: test notification", dep);
        break;
    default:
        err = rg_buf_printf(out, "%s: %s in phase %s", dep, str_or(ev->verdict, "?"), phase);
        break;
    }
    if (!err && ev->previous_verdict && ev->previous_verdict[0] && ev->verdict &&
        strcmp(ev->previous_verdict, ev->verdict) != 0)
        err = rg_buf_printf(out, " (was %s)", ev->previous_verdict);
    if (!err && ev->reason && ev->reason[0])
        err = rg_buf_printf(out, ": %s", ev->reason);
    return err;
}

static void event_check(struct rg__pl_w *w, const struct rg_notify_check *c)
{
    rg__pl_raw(w, "{\"name\":");
    rg__pl_s(w, c->name);
    rg__pl_raw(w, c->kind == RG_NOTIFY_CHECK_TRIGGER ? ",\"kind\":\"trigger\""
                                                     : ",\"kind\":\"gate\"");
    rg__pl_raw(w, ",\"signal\":");
    rg__pl_s_or_null(w, c->signal);
    rg__pl_raw(w, ",\"value\":");
    rg__pl_num(w, c->value);
    rg__pl_raw(w, ",\"op\":");
    rg__pl_s(w, c->op);
    rg__pl_raw(w, ",\"threshold\":");
    rg__pl_num(w, c->threshold);
    rg__pl_raw(w, ",\"baseline\":");
    rg__pl_num(w, c->has_baseline ? c->baseline : NAN);
    rg__pl_raw(w, ",\"state\":");
    rg__pl_s(w, c->state);
    rg__pl_raw(w, ",\"since\":");
    rg__pl_ms(w, c->since_ms, 1);
    rg__pl_raw(w, "}");
}

void rg__pl_event_json(struct rg__pl_w *w, const struct rg_notify_deploy_event *ev,
                       const char *dedup, int with_checks)
{
    rg__pl_raw(w, "{\"schema\":\"rollgate.deployment_event/v1\",\"kind\":\"");
    rg__pl_raw(w, rg_payload_event_kind_name(ev->kind));
    rg__pl_raw(w, "\",\"deployment\":");
    rg__pl_s(w, ev->deployment);
    rg__pl_raw(w, ",\"phase\":");
    rg__pl_s(w, ev->phase);
    rg__pl_raw(w, ",\"phase_started_at\":");
    rg__pl_ms(w, ev->phase_start_ms, 1);
    rg__pl_raw(w, ",\"traffic_weight\":");
    rg__pl_num(w, ev->traffic_weight);
    rg__pl_raw(w, ",\"verdict\":");
    rg__pl_s_or_null(w, ev->verdict);
    rg__pl_raw(w, ",\"previous_verdict\":");
    rg__pl_s_or_null(w, ev->previous_verdict);
    rg__pl_raw(w, ",\"reason\":");
    rg__pl_s(w, ev->reason);
    rg__pl_raw(w, ",\"at\":");
    rg__pl_ms(w, ev->at_ms, 0);
    rg__pl_raw(w, ",\"dedup_key\":");
    rg__pl_s(w, dedup);
    rg__pl_raw(w, ",\"url\":");
    rg__pl_s_or_null(w, ev->url);
    rg__pl_raw(w, ",\"checks\":[");
    for (size_t i = 0; with_checks && i < ev->nchecks; i++) {
        if (i)
            rg__pl_raw(w, ",");
        event_check(w, &ev->checks[i]);
    }
    rg__pl_raw(w, "],\"rollgate_version\":");
    rg__pl_s(w, ev->version ? ev->version : RG_VERSION);
    rg__pl_raw(w, "}");
}

int rg_payload_webhook_event(const struct rg_notify_deploy_event *ev, struct rg_buf *out)
{
    char key[RG_PAYLOAD_KEY_SIZE];
    const char *dedup = ev->dedup_key;
    struct rg__pl_w w = { out, 0 };

    if (!dedup) {
        if ((w.err = rg_payload_deploy_dedup_key(ev, key)))
            return w.err;
        dedup = key;
    }
    rg__pl_event_json(&w, ev, dedup, 1);
    rg__pl_raw(&w, "\n");
    return w.err;
}
