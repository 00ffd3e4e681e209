/* promql/matcher.c - label matchers: PCRE2 compilation and anchored matching.
 *
 * Prometheus compiles a regex matcher as "^(?s:" + pattern + ")$" with Go's RE2
 * engine: the pattern must match the whole label value, and "." also matches a
 * newline. We get the same semantics from PCRE2 by compiling "(?:" + pattern +
 * ")" with PCRE2_ANCHORED | PCRE2_ENDANCHORED (the match must span the whole
 * subject, backtracking as needed), PCRE2_DOTALL, PCRE2_DOLLAR_ENDONLY (RE2's
 * "$" does not match before a final newline) and PCRE2_UTF with
 * PCRE2_MATCH_INVALID_UTF, so label values that are not valid UTF-8 simply do
 * not match instead of failing. PCRE2 understands more than RE2 does, so the
 * constructs RE2 rejects (lookaround, atomic groups, backreferences, possessive
 * quantifiers, conditionals, recursion, comments) are refused first, with Go's
 * messages, so that a query accepted here is also accepted by Prometheus.
 * Patterns are JIT-compiled when the platform
 * supports it; matching then goes through pcre2_jit_match(), otherwise through
 * pcre2_match(). Each matcher owns one match-data block, so matching with the
 * same tree is not safe from two threads at once.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/syntax.h"
#include "util/err.h"

/* Finds the first construct of @re that RE2 does not support. Returns 0 when
 * there is none, else writes Go's message into @msg and returns -1. */
static int re2_unsupported(const char *re, char *msg, size_t msglen)
{
    size_t i = 0, n = strlen(re);

    while (i < n) {
        char c = re[i];
        if (c == '\\') {
            char e = i + 1 < n ? re[i + 1] : '\0';
            if (e == 'Q') {
                /* Everything up to \E is literal text. */
                const char *end = strstr(re + i + 2, "\\E");
                i = end ? (size_t)(end - re) + 2 : n;
                continue;
            }
            if ((e >= '1' && e <= '9') || e == 'g' || e == 'k' || e == 'K' || e == 'R' ||
                e == 'G' || e == 'X' || e == 'N') {
                snprintf(msg, msglen, "invalid escape sequence: `\\%c`", e);
                return -1;
            }
            i += 2;
            continue;
        }
        if (c == '[') {
            /* A class ends at the first "]" that is not its first member. */
            i++;
            if (i < n && re[i] == '^')
                i++;
            if (i < n && re[i] == ']')
                i++;
            while (i < n && re[i] != ']') {
                if (re[i] == '\\')
                    i++;
                else if (re[i] == '[' && i + 1 < n && re[i + 1] == ':') {
                    const char *end = strstr(re + i + 2, ":]");
                    if (end)
                        i = (size_t)(end - re) + 1;
                }
                i++;
            }
            i++;
            continue;
        }
        if (c == '(' && i + 2 < n && re[i + 1] == '?') {
            char k = re[i + 2];
            int bad = strchr("=!>|#(R&+0123456789", k) != NULL ||
                      (k == '<' && i + 3 < n && (re[i + 3] == '=' || re[i + 3] == '!'));
            if (bad) {
                snprintf(msg, msglen, "invalid or unsupported Perl syntax: `(?%c`", k);
                return -1;
            }
        }
        if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < n && re[i + 1] == '+') {
            snprintf(msg, msglen, "invalid nested repetition operator: `%c+`", c);
            return -1;
        }
        i++;
    }
    return 0;
}

int rg__promql_matcher_compile(struct rg_promql_matcher *m, char *msg, size_t msglen)
{
    pcre2_code *code;
    pcre2_match_data *md;
    size_t vlen, erroff;
    char *pat;
    int errcode;

    if (m->op != RG_MATCH_RE && m->op != RG_MATCH_NRE)
        return 0;
    if (re2_unsupported(m->value, msg, msglen))
        return RG_EINVAL;
    vlen = strlen(m->value);
    pat = malloc(vlen + 5);
    if (!pat)
        return RG_ENOMEM;
    memcpy(pat, "(?:", 3);
    memcpy(pat + 3, m->value, vlen);
    memcpy(pat + 3 + vlen, ")", 2);
    code = pcre2_compile((PCRE2_SPTR)pat, vlen + 4,
                         PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL |
                             PCRE2_DOLLAR_ENDONLY | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                         &errcode, &erroff, NULL);
    free(pat);
    if (!code) {
        PCRE2_UCHAR buf[160];
        if (pcre2_get_error_message(errcode, buf, sizeof(buf)) < 0)
            strcpy((char *)buf, "invalid pattern");
        /* Go's form is "<problem>: `<pattern>`"; PCRE2 names the problem. */
        if (msglen)
            snprintf(msg, msglen, "%s: `%s`", (const char *)buf, m->value);
        return errcode == PCRE2_ERROR_NOMEMORY ? RG_ENOMEM : RG_EINVAL;
    }
    /* JIT is an optimisation: when it is unavailable pcre2_match() still works. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md) {
        pcre2_code_free(code);
        return RG_ENOMEM;
    }
    m->re = code;
    m->md = md;
    return 0;
}

int rg_promql_matcher_re_match(void *re, const char *s, size_t len)
{
    struct rg_promql_matcher *m = re;
    size_t jitsize = 0;
    int rc;

    if (!m || !m->re || !m->md)
        return 0;
    if (pcre2_pattern_info(m->re, PCRE2_INFO_JITSIZE, &jitsize) == 0 && jitsize > 0)
        rc = pcre2_jit_match(m->re, (PCRE2_SPTR)(s ? s : ""), len, 0, 0, m->md, NULL);
    else
        rc = pcre2_match(m->re, (PCRE2_SPTR)(s ? s : ""), len, 0, 0, m->md, NULL);
    return rc >= 0;
}

int rg__promql_matcher_matches_empty(struct rg_promql_matcher *m)
{
    switch (m->op) {
    case RG_MATCH_EQ:
        return m->value[0] == '\0';
    case RG_MATCH_NE:
        return m->value[0] != '\0';
    case RG_MATCH_RE:
        return rg_promql_matcher_re_match(m, "", 0);
    case RG_MATCH_NRE:
        return !rg_promql_matcher_re_match(m, "", 0);
    }
    return 0;
}

void rg__promql_matcher_cleanup(struct rg_promql_matcher *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->value);
    if (m->md)
        pcre2_match_data_free(m->md);
    if (m->re)
        pcre2_code_free(m->re);
    m->name = m->value = NULL;
    m->re = m->md = NULL;
}
