/* notify/payload_internal.h - pieces shared by the payload builders (payload*.c).
 *
 * Not part of the module's interface: the JSON writer that escapes as Go's
 * encoding/json, the sorted label view behind every label map and fingerprint, the
 * Alertmanager-style group summary, and the event sentence shared by PagerDuty and
 * Slack. Everything here is pure; inputs are borrowed for the call.
 */
#ifndef RG_NOTIFY_PAYLOAD_INTERNAL_H
#define RG_NOTIFY_PAYLOAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "notify/payload.h"
#include "util/buf.h"

/** Appends @s (@len bytes) as a JSON string escaped as Go's encoding/json does with
 *  HTML escaping on. Returns 0 or RG_ENOMEM. */
int rg__pl_str(struct rg_buf *out, const char *s, size_t len);
/** The same for a C string; NULL is written as "". */
int rg__pl_cstr(struct rg_buf *out, const char *s);
/** The same, but NULL is written as null. */
int rg__pl_cstr_or_null(struct rg_buf *out, const char *s);
/** Appends a number: null for NaN, "+Inf"/"-Inf" strings, else Go's 'f' -1 form. */
int rg__pl_number(struct rg_buf *out, double v);
/** Appends a quoted rg_payload_rfc3339_ms() time, or null when @ms is 0 and @zero_null. */
int rg__pl_time(struct rg_buf *out, int64_t ms, int zero_null);

/** A writer with a sticky error: after the first failure every call is a no-op, so
 *  a builder writes its whole document and checks @err once at the end. */
struct rg__pl_w {
    struct rg_buf *out;   /* borrowed */
    int err;              /* first error (RG_ENOMEM), 0 while all went well */
};

/** Appends raw text (JSON punctuation and keys written by the caller). */
void rg__pl_raw(struct rg__pl_w *w, const char *s);
/** Appends @len raw bytes. */
void rg__pl_rawn(struct rg__pl_w *w, const char *s, size_t len);
/** Appends printf-formatted raw text. */
void rg__pl_printf(struct rg__pl_w *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Appends a JSON string (rg__pl_str); NULL is written as "". */
void rg__pl_s(struct rg__pl_w *w, const char *s);
/** Appends @len bytes as a JSON string. */
void rg__pl_sn(struct rg__pl_w *w, const char *s, size_t len);
/** Appends a JSON string, or null for NULL. */
void rg__pl_s_or_null(struct rg__pl_w *w, const char *s);
/** Appends a number as rg__pl_number(). */
void rg__pl_num(struct rg__pl_w *w, double v);
/** Appends a time as rg__pl_time(). */
void rg__pl_ms(struct rg__pl_w *w, int64_t ms, int zero_null);

/** A label set as a sorted view: borrowed labels, sorted by name, duplicates (first
 *  wins, alert labels before external ones) and empty values removed. */
struct rg__pl_lset {
    const struct rg_label **v;   /* owned array of borrowed labels */
    size_t n;
    size_t cap;
};

/** Fills @s (reusing its array) with @labels plus the @ext labels they lack. */
int rg__pl_lset_build(struct rg__pl_lset *s, const struct rg_label *labels, size_t n,
                      const struct rg_label *ext, size_t next);
/** Frees the view's array. NULL is a no-op. */
void rg__pl_lset_cleanup(struct rg__pl_lset *s);
/** The value of @name in @s, or NULL. */
const char *rg__pl_lset_get(const struct rg__pl_lset *s, const char *name);
/** Appends @s as a JSON object with sorted keys. */
void rg__pl_lset_json(struct rg__pl_w *w, const struct rg__pl_lset *s);
/** Prometheus' LabelSet.Fingerprint of @s. */
uint64_t rg__pl_lset_fingerprint(const struct rg__pl_lset *s);

/** The views of a group of alerts: merged labels and annotations of each alert,
 *  common labels and annotations, group labels, firing and resolved counts. */
struct rg__pl_group {
    struct rg__pl_lset *labels;       /* owned; one per alert */
    struct rg__pl_lset *annotations;  /* owned; one per alert */
    struct rg__pl_lset common_labels;
    struct rg__pl_lset common_annotations;
    struct rg__pl_lset group_labels;
    size_t n;
    size_t firing;
    size_t resolved;
};

/** Builds the views of @alerts as group @g (NULL = no group settings) at @now_ms. */
int rg__pl_group_build(struct rg__pl_group *gv, const struct rg_notify_group *g,
                       const struct rg_notify_alert *alerts, size_t n, int64_t now_ms);
/** Frees what @gv owns. NULL is a no-op. */
void rg__pl_group_cleanup(struct rg__pl_group *gv);
/** Appends, unquoted, Alertmanager's default subject of the group, with its spacing
 *  tidied: "[FIRING:2] <group label values> (<other common label values>)". */
int rg__pl_group_subject(struct rg_buf *out, const struct rg__pl_group *gv);
/** Appends the group key: @g->group_key, or Alertmanager's "{}:{name=\"value\", ...}". */
int rg__pl_group_key(struct rg_buf *out, const struct rg_notify_group *g,
                     const struct rg__pl_group *gv);
/** Appends the webhook JSON object of alert @i of @gv. */
void rg__pl_webhook_alert(struct rg__pl_w *w, const struct rg__pl_group *gv,
                          const struct rg_notify_alert *a, size_t i, int64_t now_ms);

/** Appends, unquoted, one sentence describing @ev ("checkout: rollback in phase
 *  canary (was hold): <reason>"). */
int rg__pl_event_title(struct rg_buf *out, const struct rg_notify_deploy_event *ev);
/** Appends the event document with dedup key @dedup; @with_checks 0 leaves the checks
 *  array empty. */
void rg__pl_event_json(struct rg__pl_w *w, const struct rg_notify_deploy_event *ev,
                       const char *dedup, int with_checks);
/** Appends @s cut to at most @max bytes on a UTF-8 boundary; when cut, the last bytes
 *  become "…" (U+2026) and the total still fits in @max (@max >= 3). */
int rg__pl_truncated(struct rg_buf *out, const char *s, size_t len, size_t max);

/** SHA-256 over @n byte ranges, as 64 lower-case hex digits and a NUL. Returns 0 or
 *  RG_ENOMEM (the only way OpenSSL's digest can fail here). */
int rg__pl_sha256_hex(const struct rg_slice *parts, size_t n, char out[RG_PAYLOAD_KEY_SIZE]);

#endif
