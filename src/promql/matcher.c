/* promql/matcher.c - label matchers: PCRE2 compilation and anchored matching.
 *
 * Prometheus compiles a regex matcher as "^(?s:" + pattern + ")$" with Go's RE2
 * engine: the pattern must match the whole label value, and "." also matches a
 * newline. We get the same semantics from PCRE2 by compiling "(?:" + pattern +
 * ")" with PCRE2_ANCHORED | PCRE2_ENDANCHORED (the match must span the whole
 * subject, backtracking as needed), PCRE2_DOTALL, PCRE2_DOLLAR_ENDONLY (RE2's
 * "$" does not match before a final newline) and PCRE2_UTF with
 * PCRE2_MATCH_INVALID_UTF, so label values that are not valid UTF-8 simply do
 * not match instead of failing. Patterns are JIT-compiled when the platform
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

int rg__promql_matcher_compile(struct rg_promql_matcher *m, char *msg, size_t msglen)
{
    pcre2_code *code;
    pcre2_match_data *md;
    size_t vlen, erroff;
    char *pat;
    int errcode;

    if (m->op != RG_MATCH_RE && m->op != RG_MATCH_NRE)
        return 0;
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
        if (msglen)
            snprintf(msg, msglen, "%s", (const char *)buf);
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
