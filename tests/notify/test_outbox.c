/* tests/notify/test_outbox.c - the durable outbox: append, replay, ack and drop marks,
 * a torn or corrupt tail written by hand, compaction, bounds, crash-and-reopen, the due
 * queue order and batch appends. Each case works in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "notify/outbox.h"
#include "util/err.h"

struct fx {
    char dir[256];
    char path[300];
    struct rg_outbox_config cfg;
    size_t drops[RG_OUTBOX_DROP__COUNT];
    uint64_t dropped_ids[64];
    size_t ndropped;
};

static void on_drop(void *ud, const struct rg_outbox_event *ev, enum rg_outbox_drop why)
{
    struct fx *f = ud;
    f->drops[why]++;
    if (f->ndropped < 64)
        f->dropped_ids[f->ndropped++] = ev->id;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    snprintf(f->dir, sizeof(f->dir), "%s/rg-outbox-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/notify.outbox", f->dir);
    rg_outbox_config_default(&f->cfg);
    f->cfg.path = f->path;
    f->cfg.on_drop = on_drop;
    f->cfg.on_drop_ud = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[400];

    unlink(f->path);
    snprintf(p, sizeof(p), "%s.compact", f->path);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct rg_outbox_entry entry(const char *notifier, const char *key, const char *body,
                                    int64_t created)
{
    static const char *const hdrs[] = { "Idempotency-Key: k", "X-Rollgate-Signature: t=1,v1=ab" };
    struct rg_outbox_entry e = {
        .notifier = notifier, .dedup_key = key, .content_type = "application/json",
        .headers = hdrs, .nheaders = 2, .payload = body, .payload_len = strlen(body),
        .created_ms = created,
    };
    return e;
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) ? -1 : sb.st_size;
}

static void test_outbox__append_replay_ack_drop(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob;
    const struct rg_outbox_event *ev;
    struct rg_outbox_queue_stats qs;
    uint64_t id[3], id4;
    struct rg_outbox_entry e;

    assert_int_equal(rg_outbox_open(&f->cfg, 1000, &ob), 0);
    e = entry("hook", "k1", "{\"a\":1}", 100);
    assert_int_equal(rg_outbox_append(ob, &e, &id[0]), 0);
    e = entry("hook", "k2", "{\"a\":2}", 200);
    assert_int_equal(rg_outbox_append(ob, &e, &id[1]), 0);
    e = entry("pd", "k3", "", 300);
    assert_int_equal(rg_outbox_append(ob, &e, &id[2]), 0);
    assert_true(id[0] < id[1] && id[1] < id[2]);

    ev = rg_outbox_next_due(ob, "hook", 1000);
    assert_non_null(ev);
    assert_true(ev->id == id[0]);
    assert_int_equal(rg_outbox_take(ob, id[0]), 0);
    assert_int_equal(rg_outbox_take(ob, id[0]), RG_EINVAL);
    ev = rg_outbox_next_due(ob, "hook", 1000);
    assert_true(ev && ev->id == id[1]);
    assert_int_equal(rg_outbox_ack(ob, id[0]), 0);
    assert_int_equal(rg_outbox_ack(ob, id[0]), RG_ENOENT);
    assert_int_equal(rg_outbox_drop(ob, id[2], RG_OUTBOX_DROP_REJECTED), 0);
    assert_int_equal(f->drops[RG_OUTBOX_DROP_REJECTED], 1);
    rg_outbox_queue_stats(ob, "hook", &qs);
    assert_int_equal(qs.pending, 1);
    assert_int_equal(qs.acked, 1);
    rg_outbox_queue_stats(ob, "pd", &qs);
    assert_int_equal(qs.dropped[RG_OUTBOX_DROP_REJECTED], 1);
    assert_null(rg_outbox_next_due(ob, "pd", 1000));
    rg_outbox_close(ob);

    /* Replay: only the second event is live, with every field intact. */
    assert_int_equal(rg_outbox_open(&f->cfg, 5000, &ob), 0);
    assert_null(rg_outbox_get(ob, id[0]));
    assert_null(rg_outbox_get(ob, id[2]));
    ev = rg_outbox_next_due(ob, "hook", 5000);
    assert_non_null(ev);
    assert_true(ev->id == id[1]);
    assert_string_equal(ev->notifier, "hook");
    assert_string_equal(ev->dedup_key, "k2");
    assert_string_equal(ev->content_type, "application/json");
    assert_int_equal(ev->nheaders, 2);
    assert_string_equal(ev->headers[0], "Idempotency-Key: k");
    assert_string_equal(ev->headers[1], "X-Rollgate-Signature: t=1,v1=ab");
    assert_int_equal(ev->payload_len, 7);
    assert_memory_equal(ev->payload, "{\"a\":2}", 7);
    assert_int_equal(ev->created_ms, 200);
    assert_int_equal(ev->next_attempt_ms, 5000);
    assert_int_equal(ev->attempts, 0);
    /* Ids keep increasing across restarts. */
    e = entry("hook", "k4", "x", 400);
    assert_int_equal(rg_outbox_append(ob, &e, &id4), 0);
    assert_true(id4 > id[2]);
    rg_outbox_close(ob);
}

static void write_raw(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void test_outbox__torn_tail_ignored(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob;
    struct rg_outbox_stats st;
    struct rg_outbox_entry e;
    uint64_t id;
    off_t good;
    /* A frame announcing 100 bytes of which only 10 were written. */
    const unsigned char torn[18] = { 100, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    /* A complete ack frame whose CRC is wrong. */
    const unsigned char badcrc[17] = { 9, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 2, 1, 0, 0, 0, 0, 0,
                                       0, 0 };

    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    e = entry("hook", "a", "one", 1);
    assert_int_equal(rg_outbox_append(ob, &e, NULL), 0);
    e = entry("hook", "b", "two", 2);
    assert_int_equal(rg_outbox_append(ob, &e, &id), 0);
    rg_outbox_close(ob);
    good = file_size(f->path);
    write_raw(f->path, torn, sizeof(torn));

    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    rg_outbox_stats(ob, &st);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.torn_bytes, sizeof(torn));
    assert_int_equal(file_size(f->path), good);          /* cut off */
    e = entry("hook", "c", "three", 3);
    assert_int_equal(rg_outbox_append(ob, &e, NULL), 0);
    rg_outbox_close(ob);

    /* The record after the cut is read; a bad CRC at the end is ignored too (the ack
     * it would carry for the first event must not apply). */
    write_raw(f->path, badcrc, sizeof(badcrc));
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    rg_outbox_stats(ob, &st);
    assert_int_equal(st.events, 3);
    assert_int_equal(st.torn_bytes, sizeof(badcrc));
    assert_non_null(rg_outbox_get(ob, 1));
    rg_outbox_close(ob);

    /* Every prefix of a record is a torn tail: a kill -9 anywhere in a write. */
    for (size_t cut = 1; cut < 40; cut += 3) {
        off_t before;
        int fd;
        assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
        before = file_size(f->path);
        e = entry("hook", "d", "four four four", 4);
        assert_int_equal(rg_outbox_append(ob, &e, NULL), 0);
        rg_outbox_close(ob);
        fd = open(f->path, O_WRONLY);
        assert_int_equal(ftruncate(fd, before + (off_t)cut), 0);
        close(fd);
        assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
        rg_outbox_stats(ob, &st);
        assert_int_equal(st.events, 3);
        assert_int_equal(file_size(f->path), before);
        rg_outbox_close(ob);
    }
}

static void test_outbox__compaction_keeps_live(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob;
    struct rg_outbox_stats st;
    uint64_t ids[200];
    char body[64];

    f->cfg.compact_min_bytes = 1;
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    for (int i = 0; i < 200; i++) {
        struct rg_outbox_entry e;
        snprintf(body, sizeof(body), "{\"event\":%d,\"pad\":\"xxxxxxxxxxxxxxxx\"}", i);
        e = entry(i % 2 ? "a" : "b", "k", body, i);
        assert_int_equal(rg_outbox_append(ob, &e, &ids[i]), 0);
    }
    /* Settle everything except every fifth event. */
    for (int i = 0; i < 200; i++) {
        if (i % 5 == 0)
            continue;
        if (i % 3)
            assert_int_equal(rg_outbox_ack(ob, ids[i]), 0);
        else
            assert_int_equal(rg_outbox_drop(ob, ids[i], RG_OUTBOX_DROP_EXPIRED), 0);
    }
    rg_outbox_stats(ob, &st);
    assert_true(st.compactions >= 1);
    assert_int_equal(st.events, 40);
    assert_int_equal(rg_outbox_compact(ob), 0);
    rg_outbox_stats(ob, &st);
    assert_int_equal(st.file_bytes, 16 + st.live_bytes);
    assert_int_equal(file_size(f->path), (off_t)st.file_bytes);
    rg_outbox_close(ob);

    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    rg_outbox_stats(ob, &st);
    assert_int_equal(st.events, 40);
    for (int i = 0; i < 200; i++) {
        const struct rg_outbox_event *ev = rg_outbox_get(ob, ids[i]);
        if (i % 5) {
            assert_null(ev);
            continue;
        }
        assert_non_null(ev);
        snprintf(body, sizeof(body), "{\"event\":%d,\"pad\":\"xxxxxxxxxxxxxxxx\"}", i);
        assert_int_equal(ev->payload_len, strlen(body));
        assert_memory_equal(ev->payload, body, strlen(body));
        assert_string_equal(ev->notifier, i % 2 ? "a" : "b");
    }
    rg_outbox_close(ob);
}

static void test_outbox__bound_drops_oldest(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob;
    struct rg_outbox_queue_stats qs;
    struct rg_outbox_stats st;
    struct rg_outbox_entry e;
    uint64_t ids[8];
    char big[600];

    f->cfg.max_events = 5;
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    for (int i = 0; i < 8; i++) {
        e = entry("hook", "k", "body", i);
        assert_int_equal(rg_outbox_append(ob, &e, &ids[i]), 0);
    }
    assert_int_equal(f->drops[RG_OUTBOX_DROP_FULL], 3);
    assert_int_equal(f->ndropped, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(f->dropped_ids[i] == ids[i]);
        assert_null(rg_outbox_get(ob, ids[i]));
    }
    rg_outbox_queue_stats(ob, "hook", &qs);
    assert_int_equal(qs.pending, 5);
    assert_int_equal(qs.dropped[RG_OUTBOX_DROP_FULL], 3);
    rg_outbox_close(ob);

    /* The drops are durable: the same five come back. */
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    rg_outbox_stats(ob, &st);
    assert_int_equal(st.events, 5);
    assert_non_null(rg_outbox_get(ob, ids[3]));
    rg_outbox_close(ob);

    /* A byte bound: each record here is about 700 bytes, so 2000 hold two. */
    f->cfg.max_events = 0;
    f->cfg.max_bytes = 2000;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    f->ndropped = 0;
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    for (int i = 0; i < 4; i++) {
        e = entry("hook", "k", big, 100 + i);
        assert_int_equal(rg_outbox_append(ob, &e, &ids[i]), 0);
    }
    rg_outbox_stats(ob, &st);
    assert_true(st.live_bytes <= 2000);
    assert_int_equal(st.events, 2);
    assert_non_null(rg_outbox_get(ob, ids[3]));
    /* One event larger than the whole bound is refused, and drops nothing. */
    big[0] = 0;
    {
        char *huge = calloc(1, 3000);
        memset(huge, 'y', 2999);
        e = entry("hook", "k", huge, 1);
        assert_int_equal(rg_outbox_append(ob, &e, NULL), RG_ETOOBIG);
        free(huge);
    }
    rg_outbox_stats(ob, &st);
    assert_int_equal(st.events, 2);
    rg_outbox_close(ob);
}

static void test_outbox__crash_resends(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob;
    struct rg_outbox_entry e;
    struct rg_outbox_queue_stats qs;
    uint64_t ids[3];

    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    for (int i = 0; i < 3; i++) {
        e = entry("hook", "k", "b", i);
        assert_int_equal(rg_outbox_append(ob, &e, &ids[i]), 0);
    }
    assert_int_equal(rg_outbox_take(ob, ids[0]), 0);
    assert_int_equal(rg_outbox_take(ob, ids[1]), 0);
    assert_int_equal(rg_outbox_retry(ob, ids[1], 99999, 500), 0);
    /* "Crash": close without settling anything. */
    rg_outbox_close(ob);

    assert_int_equal(rg_outbox_open(&f->cfg, 777, &ob), 0);
    rg_outbox_queue_stats(ob, "hook", &qs);
    assert_int_equal(qs.pending, 3);
    assert_int_equal(qs.in_flight, 0);
    for (int i = 0; i < 3; i++) {
        const struct rg_outbox_event *ev = rg_outbox_next_due(ob, "hook", 777);
        assert_non_null(ev);
        assert_true(ev->id == ids[i]);                 /* due at once, oldest first */
        assert_int_equal(ev->attempts, 0);
        assert_int_equal(rg_outbox_take(ob, ev->id), 0);
    }
    assert_null(rg_outbox_next_due(ob, "hook", 777));
    rg_outbox_close(ob);
}

static void test_outbox__due_order_retry_hurry(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob;
    struct rg_outbox_entry e;
    const struct rg_outbox_event *ev;
    uint64_t ids[50];

    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    for (int i = 0; i < 50; i++) {
        e = entry("hook", "k", "b", 10);
        assert_int_equal(rg_outbox_append(ob, &e, &ids[i]), 0);
    }
    /* Reschedule in a scrambled order; the queue yields them by due time. */
    for (int i = 0; i < 50; i++) {
        int j = (i * 17) % 50;
        assert_int_equal(rg_outbox_take(ob, ids[j]), 0);
        assert_int_equal(rg_outbox_retry(ob, ids[j], 1000 + j * 10, 5), 0);
    }
    assert_null(rg_outbox_next_due(ob, "hook", 999));
    assert_int_equal(rg_outbox_next_due_ms(ob, "hook"), 1000);
    assert_int_equal(rg_outbox_next_due_ms(ob, "nobody"), INT64_MAX);
    for (int i = 0; i < 10; i++) {
        ev = rg_outbox_next_due(ob, "hook", 1095);
        assert_non_null(ev);
        assert_true(ev->id == ids[i]);
        assert_int_equal(ev->last_backoff_ms, 5);
        assert_int_equal(rg_outbox_take(ob, ev->id), 0);
    }
    assert_null(rg_outbox_next_due(ob, "hook", 1095));
    rg_outbox_hurry(ob, "hook", 1200);
    for (int i = 10; i < 50; i++) {
        ev = rg_outbox_next_due(ob, "hook", 1200);
        assert_non_null(ev);
        assert_true(ev->next_attempt_ms <= 1200);
        assert_int_equal(rg_outbox_take(ob, ev->id), 0);
    }
    assert_null(rg_outbox_next_due(ob, "hook", INT64_MAX));
    rg_outbox_close(ob);
}

static void test_outbox__batch_one_fsync(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob;
    struct rg_outbox_stats before, after;
    struct rg_outbox_entry *es = calloc(1000, sizeof(*es));
    uint64_t *ids = calloc(1000, sizeof(*ids));

    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    for (int i = 0; i < 1000; i++)
        es[i] = entry(i % 3 ? "a" : "b", "k", "{\"x\":1}", i);
    rg_outbox_stats(ob, &before);
    assert_int_equal(rg_outbox_append_batch(ob, es, 1000, ids), 0);
    rg_outbox_stats(ob, &after);
    assert_int_equal(after.fsyncs - before.fsyncs, 1);
    assert_int_equal(after.events, 1000);
    for (int i = 1; i < 1000; i++)
        assert_true(ids[i] == ids[i - 1] + 1);
    /* A bad entry anywhere rejects the whole batch. */
    es[500].notifier = "";
    assert_int_equal(rg_outbox_append_batch(ob, es, 1000, NULL), RG_EINVAL);
    rg_outbox_stats(ob, &after);
    assert_int_equal(after.events, 1000);
    rg_outbox_close(ob);
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    rg_outbox_stats(ob, &after);
    assert_int_equal(after.events, 1000);
    assert_int_equal(after.replayed, 1000);
    rg_outbox_close(ob);
    free(es);
    free(ids);
}

static void test_outbox__bad_arguments(void **state)
{
    struct fx *f = *state;
    struct rg_outbox *ob, *ob2;
    struct rg_outbox_config cfg = f->cfg;
    struct rg_outbox_entry e = entry("hook", NULL, "", 0);
    const char *bad_hdr[] = { NULL };

    cfg.path = NULL;
    assert_int_equal(rg_outbox_open(&cfg, 0, &ob), RG_EINVAL);
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
    /* A second holder of the same log is refused. */
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob2), RG_EEXIST);
    e.notifier = NULL;
    assert_int_equal(rg_outbox_append(ob, &e, NULL), RG_EINVAL);
    e.notifier = "hook";
    e.headers = bad_hdr;
    e.nheaders = 1;
    assert_int_equal(rg_outbox_append(ob, &e, NULL), RG_EINVAL);
    e.nheaders = 0;
    e.dedup_key = NULL;
    e.content_type = NULL;
    assert_int_equal(rg_outbox_append(ob, &e, NULL), 0);   /* optional fields absent */
    assert_int_equal(rg_outbox_take(ob, 12345), RG_ENOENT);
    assert_int_equal(rg_outbox_retry(ob, 12345, 0, 0), RG_ENOENT);
    assert_int_equal(rg_outbox_drop(ob, 12345, RG_OUTBOX_DROP_EXPIRED), RG_ENOENT);
    assert_int_equal(rg_outbox_sync(ob), 0);
    assert_string_equal(rg_outbox_drop_name(RG_OUTBOX_DROP_FULL), "outbox_full");
    assert_string_equal(rg_outbox_drop_name(RG_OUTBOX_DROP_EXPIRED), "expired");
    assert_string_equal(rg_outbox_drop_name(RG_OUTBOX_DROP_REJECTED), "rejected");
    assert_int_equal(rg_outbox_drop_notifier(ob, "hook", RG_OUTBOX_DROP_NO_NOTIFIER), 1);
    assert_int_equal(rg_outbox_notifier_count(ob), 1);
    assert_string_equal(rg_outbox_notifier_name(ob, 0), "hook");
    rg_outbox_close(ob);
    rg_outbox_close(NULL);

    /* A file that is not an outbox is left alone. */
    unlink(f->path);
    {
        int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(write(fd, "something else entirely", 23), 23);
        close(fd);
    }
    assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), RG_EBADMSG);
    assert_int_equal(file_size(f->path), 23);
}

/* A child process appends events (one fsync each) and reports every id whose append
 * returned 0; the parent kills it with SIGKILL at an arbitrary moment. Every reported
 * event must be in the log afterwards, across several kill-and-reopen rounds. */
static void test_outbox__kill9_loses_nothing(void **state)
{
    struct fx *f = *state;
    uint64_t *reported = calloc(100000, sizeof(*reported));
    size_t nrep = 0;

    for (int round = 0; round < 4; round++) {
        int pfd[2];
        pid_t pid;
        size_t seen_this_round = 0, kill_after = 40 + (size_t)round * 37;
        uint64_t id;
        struct rg_outbox *ob;

        assert_int_equal(pipe(pfd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            if (rg_outbox_open(&f->cfg, 0, &ob))
                _exit(2);
            for (int i = 0;; i++) {
                char body[64];
                struct rg_outbox_entry e;
                snprintf(body, sizeof(body), "{\"round\":%d,\"i\":%d}", round, i);
                e = entry("hook", "k", body, i);
                if (rg_outbox_append(ob, &e, &id))
                    _exit(3);
                if (write(pfd[1], &id, sizeof(id)) != (ssize_t)sizeof(id))
                    _exit(4);
            }
        }
        close(pfd[1]);
        while (read(pfd[0], &id, sizeof(id)) == (ssize_t)sizeof(id)) {
            reported[nrep++] = id;
            if (++seen_this_round == kill_after)
                kill(pid, SIGKILL);
        }
        close(pfd[0]);
        waitpid(pid, NULL, 0);

        assert_int_equal(rg_outbox_open(&f->cfg, 0, &ob), 0);
        for (size_t i = 0; i < nrep; i++)
            if (!rg_outbox_get(ob, reported[i]))
                fail_msg("round %d: event %llu was accepted but is lost", round,
                         (unsigned long long)reported[i]);
        rg_outbox_close(ob);
    }
    assert_true(nrep >= 4 * 40);
    free(reported);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outbox__append_replay_ack_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__torn_tail_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__compaction_keeps_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__bound_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__crash_resends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__due_order_retry_hurry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__batch_one_fsync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox__kill9_loses_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
