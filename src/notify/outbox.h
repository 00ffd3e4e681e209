/* notify/outbox.h - the durable outbox of notification events (an append-only log).
 *
 * Every event a notifier emits is appended to one log file in the data directory and
 * fsync'd before rg_outbox_append() returns 0: from then on it counts as emitted, and
 * a crash at any moment (kill -9, power loss after the fsync) cannot lose it. Delivery
 * outcomes are appended as small "acked" and "dropped" records; they are written at
 * once but fsync'd lazily (rg_outbox_sync(), or the next append's fsync), because a
 * lost ack only makes the event be delivered again, with the same dedup key.
 *
 * Record format (little-endian): u32 body length, u32 CRC-32 (IEEE, reflected
 * 0xEDB88320) of the body, body. The body's first byte is the record type. The file
 * starts with a 16-byte header ("RGOUTBOX", u32 version 1, u32 zero). On open the log
 * is replayed: events without an ack or drop record are live again and due at once.
 * Replay stops at the first record whose length runs past the end of the file or
 * whose CRC does not match: that is a torn write of the last append, which never
 * returned 0, so nothing accepted is lost; the file is truncated there so later
 * appends follow valid records.
 *
 * Compaction: when dead bytes (records of delivered or dropped events, and the marks
 * themselves) exceed the live events' bytes and the file is larger than
 * compact_min_bytes, the live events are written to "<path>.compact", fsync'd,
 * renamed over the log and the directory fsync'd, so either the old or the new log
 * survives a crash. The live set is bounded by max_events and max_bytes: an append
 * that would exceed either first drops the oldest live events (reason "outbox_full").
 *
 * In memory each event sits in a hash table by id and, per notifier, in a min-heap by
 * (next attempt, id), so finding the next due event is O(1) and rescheduling
 * O(log n). Attempt counts and next-attempt times are kept in memory only: after a
 * restart every undelivered event is due at once, which is what a restart should do.
 *
 * I/O is synchronous (write + fsync per append, or per rg_outbox_append_batch()); the
 * records are small, and the batch form gives one fsync per rule evaluation.
 * Not thread-safe: one thread (the loop thread) owns an outbox.
 */
#ifndef RG_NOTIFY_OUTBOX_H
#define RG_NOTIFY_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

/** Why an event left the outbox without being delivered. */
enum rg_outbox_drop {
    RG_OUTBOX_DROP_EXPIRED = 0,    /* "expired": older than the retry policy's max age */
    RG_OUTBOX_DROP_REJECTED,       /* "rejected": permanent failure (4xx other than 429) */
    RG_OUTBOX_DROP_FULL,           /* "outbox_full": oldest dropped to make room */
    RG_OUTBOX_DROP_NO_NOTIFIER,    /* "no_notifier": its notifier is no longer configured */
    RG_OUTBOX_DROP__COUNT,
};

struct rg_outbox;                  /* opaque */
struct rg_outbox_event;

struct rg_outbox_config {
    const char *path;              /* log file, e.g. "<data-dir>/notify.outbox"; copied */
    uint64_t max_bytes;            /* bound on live event bytes; 0 = 64 MiB */
    size_t max_events;             /* bound on live events; 0 = 100,000 */
    uint64_t compact_min_bytes;    /* no compaction below this file size; 0 = 1 MiB */
    /* Called for every drop (any reason), before the event is freed; may be NULL.
     * The callback must not call into the outbox. */
    void (*on_drop)(void *ud, const struct rg_outbox_event *ev, enum rg_outbox_drop why);
    void *on_drop_ud;
};

/** One event as the outbox holds it. Borrowed: valid until the event is acked or
 *  dropped (which an append may do when the outbox is full) or the outbox closed. */
struct rg_outbox_event {
    uint64_t id;                   /* unique, increasing across restarts */
    const char *notifier;          /* NUL-terminated */
    const char *dedup_key;         /* NUL-terminated, may be empty */
    const char *content_type;      /* NUL-terminated, may be empty */
    const char *const *headers;    /* "Name: value" lines */
    size_t nheaders;
    const char *payload;
    size_t payload_len;
    int64_t created_ms;            /* wall clock, ms since the epoch */
    uint32_t attempts;             /* attempts started since this process loaded it */
    int64_t next_attempt_ms;       /* wall clock; meaningless while in flight */
    int64_t last_backoff_ms;       /* delay chosen after the last failure, 0 at first */
    int in_flight;                 /* taken by rg_outbox_take(), not yet settled */
};

/** What rg_outbox_append() records; everything is copied. */
struct rg_outbox_entry {
    const char *notifier;          /* 1..65535 bytes */
    const char *dedup_key;         /* NULL or up to 65535 bytes */
    const char *content_type;      /* NULL or up to 65535 bytes */
    const char *const *headers;    /* "Name: value" lines, each up to 65535 bytes */
    size_t nheaders;               /* up to 1024 */
    const char *payload;
    size_t payload_len;            /* up to max_bytes */
    int64_t created_ms;            /* wall clock */
};

/** Per-notifier counters (since open; replayed marks are not counted again). */
struct rg_outbox_queue_stats {
    size_t pending;                /* live events waiting for an attempt */
    size_t in_flight;              /* live events taken and not yet settled */
    uint64_t appended;
    uint64_t acked;
    uint64_t dropped[RG_OUTBOX_DROP__COUNT];
};

/** Whole-outbox figures. */
struct rg_outbox_stats {
    size_t events;                 /* live events */
    uint64_t live_bytes;           /* bytes of the live events' records */
    uint64_t file_bytes;           /* current log size */
    uint64_t compactions;
    uint64_t fsyncs;
    uint64_t replayed;             /* live events found at open */
    uint64_t torn_bytes;           /* bytes ignored at the end of the log at open */
};

/** Fills @cfg with the defaults (path NULL). */
void rg_outbox_config_default(struct rg_outbox_config *cfg);

/** Opens (creating if absent) and replays the log at @cfg->path; replayed events are
 *  due at @now_ms. Returns 0, RG_EINVAL (no path), RG_EBADMSG (the file is not an
 *  outbox), RG_EEXIST (another process holds it), RG_ENOMEM or a negated errno. */
int rg_outbox_open(const struct rg_outbox_config *cfg, int64_t now_ms, struct rg_outbox **out);

/** fsyncs pending marks, closes the file and frees everything. NULL is a no-op. */
void rg_outbox_close(struct rg_outbox *ob);

/** Appends one event durably (write + fsync) and makes it due at once. @id_out (may be
 *  NULL) receives its id. Returns 0, RG_EINVAL (bad entry), RG_ETOOBIG (larger than
 *  max_bytes), RG_ENOMEM or a negated errno (then nothing was appended). */
int rg_outbox_append(struct rg_outbox *ob, const struct rg_outbox_entry *e, uint64_t *id_out);

/** Appends @n events with one write and one fsync; all or none. @ids_out (may be NULL)
 *  receives n ids. Events of the batch count toward the bounds like any other. */
int rg_outbox_append_batch(struct rg_outbox *ob, const struct rg_outbox_entry *e, size_t n,
                           uint64_t *ids_out);

/** The earliest-due live event of @notifier that is not in flight and due at @now_ms,
 *  or NULL. */
const struct rg_outbox_event *rg_outbox_next_due(struct rg_outbox *ob, const char *notifier,
                                                 int64_t now_ms);

/** When @notifier's earliest waiting event is due (wall ms), or INT64_MAX if none. */
int64_t rg_outbox_next_due_ms(struct rg_outbox *ob, const char *notifier);

/** The live event @id, or NULL. */
const struct rg_outbox_event *rg_outbox_get(struct rg_outbox *ob, uint64_t id);

/** Marks @id in flight (out of the due queue) and counts an attempt. Returns 0,
 *  RG_ENOENT (not live) or RG_EINVAL (already in flight). */
int rg_outbox_take(struct rg_outbox *ob, uint64_t id);

/** Puts an in-flight (or waiting) event back in the due queue at @next_attempt_ms,
 *  remembering @backoff_ms. Returns 0 or RG_ENOENT. */
int rg_outbox_retry(struct rg_outbox *ob, uint64_t id, int64_t next_attempt_ms,
                    int64_t backoff_ms);

/** Makes every waiting event of @notifier due no later than @when_ms (a receiver that
 *  came back need not wait out each event's backoff). */
void rg_outbox_hurry(struct rg_outbox *ob, const char *notifier, int64_t when_ms);

/** Marks @id delivered: appends an ack record (fsync deferred) and frees the event.
 *  Returns 0, RG_ENOENT (not live: already acked or dropped) or a negated errno. */
int rg_outbox_ack(struct rg_outbox *ob, uint64_t id);

/** Drops @id for @why: appends a drop record (fsync deferred), calls on_drop, frees the
 *  event. Returns 0, RG_ENOENT or a negated errno. */
int rg_outbox_drop(struct rg_outbox *ob, uint64_t id, enum rg_outbox_drop why);

/** Drops every live event of @notifier (in flight or not) for @why; returns how many. */
size_t rg_outbox_drop_notifier(struct rg_outbox *ob, const char *notifier,
                               enum rg_outbox_drop why);

/** fsyncs marks written since the last fsync (no-op when none). Returns 0 or -errno. */
int rg_outbox_sync(struct rg_outbox *ob);

/** Rewrites the log with only the live events (normally automatic). Returns 0, or a
 *  negated errno / RG_ENOMEM with the old log left in place. */
int rg_outbox_compact(struct rg_outbox *ob);

/** Number of notifiers that have (or had) events, and their names (borrowed). */
size_t rg_outbox_notifier_count(const struct rg_outbox *ob);
const char *rg_outbox_notifier_name(const struct rg_outbox *ob, size_t i);

/** Counters of @notifier (zeros when unknown). */
void rg_outbox_queue_stats(const struct rg_outbox *ob, const char *notifier,
                           struct rg_outbox_queue_stats *out);

/** Whole-outbox figures. */
void rg_outbox_stats(const struct rg_outbox *ob, struct rg_outbox_stats *out);

/** "expired", "rejected", "outbox_full", "no_notifier" (metric label values). */
const char *rg_outbox_drop_name(enum rg_outbox_drop why);

#endif
