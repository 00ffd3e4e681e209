/* promql/format.c - number and timestamp text exactly as Prometheus (Go) writes
 * them: strconv.FormatFloat(v, 'f', -1, 64) and (v, 'g', -1, 64), and the JSON
 * API's seconds-with-milliseconds timestamps.
 *
 * Go's "-1" precision means the shortest decimal that parses back to the same
 * double, choosing the closest such decimal when several have that length. We
 * find it with the C library, which rounds correctly both ways: for a length p,
 * printf("%.*e") gives the p-digit decimal nearest to v; if strtod maps it back
 * to v, p digits suffice. If not, the only other p-digit candidate that can lie
 * inside v's rounding interval is its neighbour on the far side of v (at a power
 * of two the interval is lopsided), so that one is tried too. The smallest such
 * p (1..17) is found by bisection. strtod
 * rounds half to even exactly as Go's interval test includes or excludes its
 * end points, so "parses back" and "Go accepts" are the same test. The digits
 * are then laid out as Go's fmtF / fmtE do.
 */
#include "promql/kernels.h"
#include "util/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest digits of a positive finite double: value = 0.d[0]d[1]... x 10^dp. */
struct digits {
    char d[24];   /* significant digits, no trailing zeros */
    int nd;       /* number of digits */
    int dp;       /* decimal point position */
};

/* Parses the output of "%.*e": "D.DDDDe+XX" into @out (digits as printed). */
static void parse_e(const char *s, struct digits *out)
{
    int exp;

    out->nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            out->d[out->nd++] = *s;
    exp = atoi(s + 1);
    out->dp = exp + 1;
}

/* Renders @dg as a decimal in exponent form that strtod accepts. */
static double digits_value(const struct digits *dg)
{
    char buf[48];
    int n = 0;

    buf[n++] = '0';
    buf[n++] = '.';
    memcpy(buf + n, dg->d, (size_t)dg->nd);
    n += dg->nd;
    snprintf(buf + n, sizeof(buf) - (size_t)n, "e%d", dg->dp);
    return strtod(buf, NULL);
}

/* Moves @dg one unit in its last place up (@up) or down, keeping nd digits. */
static void step_digits(struct digits *dg, int up)
{
    int i = dg->nd - 1;

    if (up) {
        while (i >= 0 && dg->d[i] == '9')
            dg->d[i--] = '0';
        if (i >= 0) {
            dg->d[i]++;
        } else {
            /* 99..9 + 1 = 100..0: one more decade. */
            dg->d[0] = '1';
            dg->dp++;
        }
        return;
    }
    if (dg->d[0] == '1') {
        int rest_zero = 1;

        for (int k = 1; k < dg->nd; k++)
            rest_zero &= dg->d[k] == '0';
        if (rest_zero) {
            /* Below 10^k the p-digit grid is ten times finer: 100 - 1 = 99.9. */
            memset(dg->d, '9', (size_t)dg->nd);
            dg->dp--;
            return;
        }
    }
    while (dg->d[i] == '0')
        dg->d[i--] = '9';
    dg->d[i]--;
}

/* Sets @out to the p-digit decimal that parses back to @a, if there is one:
 * the correctly rounded p-digit value or, failing that, its neighbour on the
 * other side of @a. Returns 1 when found. */
static int try_digits(double a, int p, struct digits *out)
{
    char buf[40];
    double got;

    snprintf(buf, sizeof(buf), "%.*e", p - 1, a);
    parse_e(buf, out);
    got = digits_value(out);
    if (got == a)
        return 1;
    step_digits(out, got < a);
    return digits_value(out) == a;
}

static void shortest_digits(double a, struct digits *out)
{
    int lo = 1, hi = 17;

    /* A p-digit decimal inside the rounding interval is also a (p+1)-digit one,
     * and then the (p+1)-digit value bracketing @a on its side lies between it
     * and @a, inside too: "some p-digit decimal parses back" is monotonic in p,
     * so bisect for the smallest p. Seventeen digits always suffice. */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;

        if (try_digits(a, mid, out))
            hi = mid;
        else
            lo = mid + 1;
    }
    try_digits(a, lo, out);
    while (out->nd > 1 && out->d[out->nd - 1] == '0')
        out->nd--;
}

/* Go's fmtF: integer part, then @prec fraction digits. */
static int put_f(struct rg_buf *b, const struct digits *dg, int prec)
{
    int err = 0;

    if (dg->dp > 0) {
        int m = dg->dp < dg->nd ? dg->dp : dg->nd;

        err = rg_buf_append(b, dg->d, (size_t)m);
        for (int i = m; !err && i < dg->dp; i++)
            err = rg_buf_putc(b, '0');
    } else {
        err = rg_buf_putc(b, '0');
    }
    if (!err && prec > 0) {
        err = rg_buf_putc(b, '.');
        for (int i = 1; !err && i <= prec; i++) {
            int j = dg->dp + i - 1;

            err = rg_buf_putc(b, (j >= 0 && j < dg->nd) ? dg->d[j] : '0');
        }
    }
    return err;
}

/* Go's fmtE: d.ddd, 'e', sign and at least two exponent digits. */
static int put_e(struct rg_buf *b, const struct digits *dg, int prec)
{
    int exp = dg->nd ? dg->dp - 1 : 0;
    int err = rg_buf_putc(b, dg->nd ? dg->d[0] : '0');

    if (!err && prec > 0) {
        err = rg_buf_putc(b, '.');
        for (int i = 1; !err && i <= prec; i++)
            err = rg_buf_putc(b, i < dg->nd ? dg->d[i] : '0');
    }
    if (!err)
        err = rg_buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return err;
}

/* Writes NaN/Inf and the sign; returns 1 when @v was fully written (*err set),
 * 0 when the digits still have to follow. */
static int put_special(double v, struct rg_buf *b, int *err)
{
    if (isnan(v)) {
        *err = rg_buf_puts(b, "NaN");
        return 1;
    }
    if (isinf(v)) {
        *err = rg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return 1;
    }
    *err = signbit(v) ? rg_buf_putc(b, '-') : 0;
    return *err != 0;
}

int rg_format_float(double v, struct rg_buf *out)
{
    struct digits dg = { .nd = 0, .dp = 0 };
    int err;

    if (put_special(v, out, &err))
        return err;
    /* An integer below 2^53 is its own shortest form: its rounding interval is
     * at most +-0.5 wide, so no other decimal with as few digits parses back. */
    if (fabs(v) < 9007199254740992.0 && v == floor(v))
        return rg_buf_printf(out, "%.0f", fabs(v));
    if (v != 0)
        shortest_digits(fabs(v), &dg);
    return put_f(out, &dg, dg.nd - dg.dp > 0 ? dg.nd - dg.dp : 0);
}

int rg_format_float_g(double v, struct rg_buf *out)
{
    struct digits dg = { .nd = 0, .dp = 0 };
    int err, exp;

    if (put_special(v, out, &err))
        return err;
    if (v != 0)
        shortest_digits(fabs(v), &dg);
    /* Go's 'g' with the shortest precision switches to the exponent form below
     * 1e-4 and from 1e6 on (strconv: "use precision 6 for this decision"),
     * whatever the number of digits. Zero has dp 0 and stays "0". */
    exp = dg.dp - 1;
    if (exp < -4 || exp >= 6)
        return put_e(out, &dg, dg.nd - 1);
    return put_f(out, &dg, dg.nd - dg.dp > 0 ? dg.nd - dg.dp : 0);
}

int rg_format_time(int64_t ms, struct rg_buf *out)
{
    /* Prometheus writes whole seconds, then '.' and the millisecond part always
     * as three digits (".500", ".050"), omitted only when it is zero. Work on the
     * magnitude as unsigned so that INT64_MIN has one too. */
    uint64_t mag = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    uint64_t frac = mag % 1000;
    int err;

    err = rg_buf_printf(out, "%s%llu", ms < 0 ? "-" : "", (unsigned long long)(mag / 1000));
    if (!err && frac)
        err = rg_buf_printf(out, ".%03llu", (unsigned long long)frac);
    return err;
}
