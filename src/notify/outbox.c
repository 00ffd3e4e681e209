/* notify/outbox.c - append-only, CRC-framed event log with replay, bounds and compaction.
 *
 * See outbox.h for the file format and guarantees. Memory layout: each live event is
 * one allocation (the struct, its header pointer array, its strings and payload), found
 * by id through an open-addressing hash table (linear probing, backward-shift deletion,
 * so no tombstones), kept in a doubly linked list in id order (oldest first, for
 * "drop the oldest" and for compaction), and, while waiting, in its notifier's binary
 * min-heap ordered by (next attempt, id).
 */
#include "notify/outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#define FILE_MAGIC      "RGOUTBOX"
#define FILE_VERSION    1u
#define HEADER_BYTES    16u
#define FRAME_BYTES     8u            /* u32 length + u32 CRC */
#define MAX_HEADERS     1024u
#define MAX_STR         65535u
#define MAX_RECORD      (UINT32_C(1) << 30)

enum rec_type {
    REC_EVENT = 1,
    REC_ACK = 2,
    REC_DROP = 3,
};

struct ev {
    struct rg_outbox_event pub;       /* first member: the public view */
    uint64_t rec_bytes;               /* bytes of its record in the log (frame included) */
    struct ev *prev, *next;           /* id order */
    size_t heap_idx;                  /* position in the queue heap; SIZE_MAX in flight */
    size_t queue;                     /* index into ob->queues */
};

struct queue {
    char *name;                       /* owned */
    struct ev **heap;                 /* owned array of borrowed events */
    size_t heap_len, heap_cap;
    struct rg_outbox_queue_stats st;
};

struct rg_outbox {
    struct rg_outbox_config cfg;      /* path owned */
    char *tmp_path;                   /* "<path>.compact", owned */
    int fd;
    uint64_t file_bytes;
    uint64_t live_bytes;
    uint64_t next_id;
    int dirty;                        /* marks written since the last fsync */
    uint64_t compact_floor;           /* no automatic compaction below this size */
    struct ev **tab;                  /* hash table by id, power-of-two size */
    size_t tab_cap, count;
    struct ev *head, *tail;           /* oldest, newest */
    struct queue *queues;
    size_t nqueues;
    struct rg_outbox_stats st;
    struct rg_buf scratch;            /* record encoding */
};

/* ---- CRC-32 (IEEE 802.3, reflected) ---------------------------------------------------- */

static uint32_t crc_table[256];

static void crc_init(void)
{
    if (crc_table[1])
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t c = 0xFFFFFFFFu;

    while (n--)
        c = crc_table[(c ^ *b++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- little-endian encoding ------------------------------------------------------------- */

static int put_u8(struct rg_buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    return rg_buf_append(b, &c, 1);
}

static int put_u16(struct rg_buf *b, unsigned v)
{
    unsigned char c[2] = { (unsigned char)v, (unsigned char)(v >> 8) };
    return rg_buf_append(b, c, 2);
}

static int put_u32(struct rg_buf *b, uint32_t v)
{
    unsigned char c[4];
    for (int i = 0; i < 4; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    return rg_buf_append(b, c, 4);
}

static int put_u64(struct rg_buf *b, uint64_t v)
{
    unsigned char c[8];
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    return rg_buf_append(b, c, 8);
}

static int put_str16(struct rg_buf *b, const char *s, size_t n)
{
    if (put_u16(b, (unsigned)n))
        return RG_ENOMEM;
    return rg_buf_append(b, s, n);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* A bounded reader over one record body. */
struct rd {
    const unsigned char *p, *end;
    int bad;
};

static const unsigned char *take(struct rd *r, size_t n)
{
    const unsigned char *p = r->p;

    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    r->p += n;
    return p;
}

static unsigned get8(struct rd *r)
{
    const unsigned char *p = take(r, 1);
    return p ? p[0] : 0;
}

static unsigned get16(struct rd *r)
{
    const unsigned char *p = take(r, 2);
    return p ? (unsigned)p[0] | (unsigned)p[1] << 8 : 0;
}

static uint32_t get32(struct rd *r)
{
    const unsigned char *p = take(r, 4);
    return p ? get_u32(p) : 0;
}

static uint64_t get64(struct rd *r)
{
    const unsigned char *p = take(r, 8);
    return p ? get_u64(p) : 0;
}

/* Appends a frame around the body that starts at @body_off of @b (already written). */
static int frame_close(struct rg_buf *b, size_t frame_off)
{
    size_t body_off = frame_off + FRAME_BYTES;
    size_t n = b->len - body_off;
    uint32_t crc = crc32_of(b->data + body_off, n);
    unsigned char *f = (unsigned char *)b->data + frame_off;

    for (int i = 0; i < 4; i++) {
        f[i] = (unsigned char)((uint32_t)n >> (8 * i));
        f[4 + i] = (unsigned char)(crc >> (8 * i));
    }
    return 0;
}

static int frame_open(struct rg_buf *b, size_t *frame_off)
{
    *frame_off = b->len;
    return put_u64(b, 0);
}

static size_t opt_len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Appends an EVENT record for the given fields. */
static int encode_event(struct rg_buf *b, uint64_t id, const struct rg_outbox_entry *e)
{
    size_t f;
    int err = 0;

    err |= frame_open(b, &f);
    err |= put_u8(b, REC_EVENT);
    err |= put_u64(b, id);
    err |= put_u64(b, (uint64_t)e->created_ms);
    err |= put_str16(b, e->notifier, strlen(e->notifier));
    err |= put_str16(b, e->dedup_key ? e->dedup_key : "", opt_len(e->dedup_key));
    err |= put_str16(b, e->content_type ? e->content_type : "", opt_len(e->content_type));
    err |= put_u16(b, (unsigned)e->nheaders);
    for (size_t i = 0; i < e->nheaders; i++)
        err |= put_str16(b, e->headers[i], strlen(e->headers[i]));
    err |= put_u32(b, (uint32_t)e->payload_len);
    err |= rg_buf_append(b, e->payload ? e->payload : "", e->payload_len);
    if (err)
        return RG_ENOMEM;
    return frame_close(b, f);
}

static int encode_mark(struct rg_buf *b, enum rec_type type, uint64_t id, unsigned reason)
{
    size_t f;
    int err = 0;

    err |= frame_open(b, &f);
    err |= put_u8(b, type);
    err |= put_u64(b, id);
    if (type == REC_DROP)
        err |= put_u8(b, reason);
    if (err)
        return RG_ENOMEM;
    return frame_close(b, f);
}

static uint64_t event_record_bytes(const struct rg_outbox_entry *e)
{
    uint64_t n = FRAME_BYTES + 1 + 8 + 8 + 2 * 4 + 4;

    n += strlen(e->notifier) + opt_len(e->dedup_key) + opt_len(e->content_type);
    for (size_t i = 0; i < e->nheaders; i++)
        n += 2 + strlen(e->headers[i]);
    return n + e->payload_len;
}

/* ---- file I/O ---------------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes @b at the end of the log. A failed write is cut off again, so a later
 * append never follows a half-written record. */
static int log_write(struct rg_outbox *ob, const struct rg_buf *b)
{
    int err = write_all(ob->fd, b->data, b->len);

    if (err) {
        if (ftruncate(ob->fd, (off_t)ob->file_bytes) == 0)
            lseek(ob->fd, 0, SEEK_END);
        return err;
    }
    ob->file_bytes += b->len;
    return 0;
}

static int log_fsync(struct rg_outbox *ob)
{
    if (fdatasync(ob->fd))
        return -errno;
    ob->st.fsyncs++;
    ob->dirty = 0;
    return 0;
}

static int dir_fsync(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, err = 0;

    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return RG_ENOMEM;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    if (fsync(fd))
        err = -errno;
    close(fd);
    return err;
}

/* ---- in-memory index --------------------------------------------------------------------- */

static size_t slot_of(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int tab_grow(struct rg_outbox *ob)
{
    size_t ncap = ob->tab_cap ? ob->tab_cap * 2 : 64;
    struct ev **nt = calloc(ncap, sizeof(*nt));

    if (!nt)
        return RG_ENOMEM;
    for (size_t i = 0; i < ob->tab_cap; i++) {
        struct ev *e = ob->tab[i];
        size_t s;
        if (!e)
            continue;
        for (s = slot_of(e->pub.id, ncap); nt[s]; s = (s + 1) & (ncap - 1))
            ;
        nt[s] = e;
    }
    free(ob->tab);
    ob->tab = nt;
    ob->tab_cap = ncap;
    return 0;
}

static struct ev *tab_find(const struct rg_outbox *ob, uint64_t id, size_t *slot)
{
    if (!ob->tab_cap)
        return NULL;
    for (size_t s = slot_of(id, ob->tab_cap);; s = (s + 1) & (ob->tab_cap - 1)) {
        struct ev *e = ob->tab[s];
        if (!e)
            return NULL;
        if (e->pub.id == id) {
            if (slot)
                *slot = s;
            return e;
        }
    }
}

static int tab_insert(struct rg_outbox *ob, struct ev *e)
{
    size_t s;

    if ((ob->count + 1) * 2 > ob->tab_cap && tab_grow(ob))
        return RG_ENOMEM;
    for (s = slot_of(e->pub.id, ob->tab_cap); ob->tab[s]; s = (s + 1) & (ob->tab_cap - 1))
        ;
    ob->tab[s] = e;
    ob->count++;
    return 0;
}

/* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
static void tab_remove(struct rg_outbox *ob, size_t hole)
{
    size_t mask = ob->tab_cap - 1;

    ob->tab[hole] = NULL;
    for (size_t s = (hole + 1) & mask; ob->tab[s]; s = (s + 1) & mask) {
        size_t home = slot_of(ob->tab[s]->pub.id, ob->tab_cap);
        /* Move the entry into the hole unless its home lies cyclically in (hole, s]. */
        int stays = hole <= s ? (home > hole && home <= s) : (home > hole || home <= s);
        if (!stays) {
            ob->tab[hole] = ob->tab[s];
            ob->tab[s] = NULL;
            hole = s;
        }
    }
    ob->count--;
}

static int ev_less(const struct ev *a, const struct ev *b)
{
    if (a->pub.next_attempt_ms != b->pub.next_attempt_ms)
        return a->pub.next_attempt_ms < b->pub.next_attempt_ms;
    return a->pub.id < b->pub.id;
}

static void heap_set(struct queue *q, size_t i, struct ev *e)
{
    q->heap[i] = e;
    e->heap_idx = i;
}

static void heap_up(struct queue *q, size_t i)
{
    struct ev *e = q->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(e, q->heap[parent]))
            break;
        heap_set(q, i, q->heap[parent]);
        i = parent;
    }
    heap_set(q, i, e);
}

static void heap_down(struct queue *q, size_t i)
{
    struct ev *e = q->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->heap_len)
            break;
        if (c + 1 < q->heap_len && ev_less(q->heap[c + 1], q->heap[c]))
            c++;
        if (!ev_less(q->heap[c], e))
            break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, e);
}

static int heap_push(struct queue *q, struct ev *e)
{
    if (q->heap_len == q->heap_cap) {
        size_t ncap = q->heap_cap ? q->heap_cap * 2 : 16;
        struct ev **nh = realloc(q->heap, ncap * sizeof(*nh));
        if (!nh)
            return RG_ENOMEM;
        q->heap = nh;
        q->heap_cap = ncap;
    }
    q->heap[q->heap_len++] = e;
    heap_up(q, q->heap_len - 1);
    return 0;
}

static void heap_remove(struct queue *q, struct ev *e)
{
    size_t i = e->heap_idx;
    struct ev *last;

    e->heap_idx = SIZE_MAX;
    last = q->heap[--q->heap_len];
    if (i == q->heap_len)
        return;
    heap_set(q, i, last);
    heap_up(q, i);
    heap_down(q, last->heap_idx);
}

static struct queue *queue_find(const struct rg_outbox *ob, const char *name)
{
    for (size_t i = 0; i < ob->nqueues; i++)
        if (!strcmp(ob->queues[i].name, name))
            return &ob->queues[i];
    return NULL;
}

static int queue_get(struct rg_outbox *ob, const char *name, size_t *idx)
{
    struct queue *q = queue_find(ob, name), *nq;

    if (q) {
        *idx = (size_t)(q - ob->queues);
        return 0;
    }
    nq = realloc(ob->queues, (ob->nqueues + 1) * sizeof(*nq));
    if (!nq)
        return RG_ENOMEM;
    ob->queues = nq;
    q = &nq[ob->nqueues];
    memset(q, 0, sizeof(*q));
    q->name = strdup(name);
    if (!q->name)
        return RG_ENOMEM;
    *idx = ob->nqueues++;
    return 0;
}

/* Builds the single allocation of an event from its fields. */
static struct ev *ev_new(uint64_t id, const struct rg_outbox_entry *e)
{
    size_t nn = strlen(e->notifier), kn = opt_len(e->dedup_key);
    size_t cn = opt_len(e->content_type), hn = 0, size;
    struct ev *ev;
    char *p;
    const char **hv;

    for (size_t i = 0; i < e->nheaders; i++)
        hn += strlen(e->headers[i]) + 1;
    size = sizeof(*ev) + e->nheaders * sizeof(char *) + nn + kn + cn + 3 + hn +
           e->payload_len + 1;
    ev = malloc(size);
    if (!ev)
        return NULL;
    memset(ev, 0, sizeof(*ev));
    hv = (const char **)(ev + 1);
    p = (char *)(hv + e->nheaders);
    ev->pub.id = id;
    ev->pub.notifier = p;
    memcpy(p, e->notifier, nn + 1);
    p += nn + 1;
    ev->pub.dedup_key = p;
    if (kn)
        memcpy(p, e->dedup_key, kn);
    p[kn] = 0;
    p += kn + 1;
    ev->pub.content_type = p;
    if (cn)
        memcpy(p, e->content_type, cn);
    p[cn] = 0;
    p += cn + 1;
    for (size_t i = 0; i < e->nheaders; i++) {
        size_t l = strlen(e->headers[i]);
        hv[i] = p;
        memcpy(p, e->headers[i], l + 1);
        p += l + 1;
    }
    ev->pub.headers = hv;
    ev->pub.nheaders = e->nheaders;
    ev->pub.payload = p;
    if (e->payload_len)
        memcpy(p, e->payload, e->payload_len);
    p[e->payload_len] = 0;
    ev->pub.payload_len = e->payload_len;
    ev->pub.created_ms = e->created_ms;
    ev->rec_bytes = event_record_bytes(e);
    ev->heap_idx = SIZE_MAX;
    return ev;
}

/* Links a new event everywhere, due at @due_ms. */
static int ev_link(struct rg_outbox *ob, struct ev *ev, int64_t due_ms)
{
    size_t qi;
    struct queue *q;

    if (queue_get(ob, ev->pub.notifier, &qi))
        return RG_ENOMEM;
    q = &ob->queues[qi];
    ev->queue = qi;
    ev->pub.next_attempt_ms = due_ms;
    if (tab_insert(ob, ev))
        return RG_ENOMEM;
    if (heap_push(q, ev)) {
        size_t slot = 0;
        if (tab_find(ob, ev->pub.id, &slot))
            tab_remove(ob, slot);
        return RG_ENOMEM;
    }
    /* Ids increase, so a new event is always the newest. */
    ev->prev = ob->tail;
    ev->next = NULL;
    if (ob->tail)
        ob->tail->next = ev;
    else
        ob->head = ev;
    ob->tail = ev;
    q->st.pending++;
    ob->live_bytes += ev->rec_bytes;
    return 0;
}

static void ev_unlink_free(struct rg_outbox *ob, struct ev *ev)
{
    struct queue *q = &ob->queues[ev->queue];
    size_t slot;

    if (ev->heap_idx != SIZE_MAX) {
        heap_remove(q, ev);
        q->st.pending--;
    } else {
        q->st.in_flight--;
    }
    if (tab_find(ob, ev->pub.id, &slot))
        tab_remove(ob, slot);
    if (ev->prev)
        ev->prev->next = ev->next;
    else
        ob->head = ev->next;
    if (ev->next)
        ev->next->prev = ev->prev;
    else
        ob->tail = ev->prev;
    ob->live_bytes -= ev->rec_bytes;
    free(ev);
}

/* ---- replay --------------------------------------------------------------------------- */

static int replay_event(struct rg_outbox *ob, struct rd *r, int64_t now_ms)
{
    struct rg_outbox_entry e;
    const char *hdrs[MAX_HEADERS];
    char *strs[3 + MAX_HEADERS];
    size_t nstr = 0;
    uint64_t id;
    unsigned nh;
    struct ev *ev = NULL;
    int rc = 0;

    memset(&e, 0, sizeof(e));
    id = get64(r);
    e.created_ms = (int64_t)get64(r);
    for (int i = 0; i < 3 && !r->bad; i++) {
        unsigned n = get16(r);
        const unsigned char *p = take(r, n);
        if (!p || !(strs[nstr] = strndup((const char *)p, n))) {
            rc = r->bad ? RG_EBADMSG : RG_ENOMEM;
            goto out;
        }
        nstr++;
    }
    nh = get16(r);
    if (nh > MAX_HEADERS)
        r->bad = 1;
    for (unsigned i = 0; i < nh && !r->bad; i++) {
        unsigned n = get16(r);
        const unsigned char *p = take(r, n);
        if (!p || !(strs[nstr] = strndup((const char *)p, n))) {
            rc = r->bad ? RG_EBADMSG : RG_ENOMEM;
            goto out;
        }
        hdrs[i] = strs[nstr++];
    }
    e.payload_len = get32(r);
    e.payload = (const char *)take(r, e.payload_len);
    if (r->bad || r->p != r->end || nstr < 3 || !strs[0][0]) {
        rc = RG_EBADMSG;
        goto out;
    }
    e.notifier = strs[0];
    e.dedup_key = strs[1];
    e.content_type = strs[2];
    e.headers = hdrs;
    e.nheaders = nh;
    if (id >= ob->next_id)
        ob->next_id = id + 1;
    if (tab_find(ob, id, NULL))
        goto out;                     /* a duplicate id: keep the first */
    ev = ev_new(id, &e);
    if (!ev) {
        rc = RG_ENOMEM;
        goto out;
    }
    if (ev_link(ob, ev, now_ms)) {
        free(ev);
        rc = RG_ENOMEM;
    }
out:
    while (nstr)
        free(strs[--nstr]);
    return rc;
}

static int replay(struct rg_outbox *ob, const unsigned char *data, size_t len, int64_t now_ms,
                  size_t *good_len)
{
    size_t off = HEADER_BYTES;

    while (len - off >= FRAME_BYTES) {
        uint32_t n = get_u32(data + off), crc = get_u32(data + off + 4);
        const unsigned char *body = data + off + FRAME_BYTES;
        struct rd r;
        int rc = 0;

        if (n == 0 || n > MAX_RECORD || n > len - off - FRAME_BYTES)
            break;
        if (crc32_of(body, n) != crc)
            break;
        r.p = body + 1;
        r.end = body + n;
        r.bad = 0;
        switch (body[0]) {
        case REC_EVENT:
            rc = replay_event(ob, &r, now_ms);
            break;
        case REC_ACK:
        case REC_DROP: {
            uint64_t id = get64(&r);
            struct ev *ev;
            if (body[0] == REC_DROP)
                (void)get8(&r);
            if (r.bad || r.p != r.end) {
                rc = RG_EBADMSG;
                break;
            }
            if (id >= ob->next_id)
                ob->next_id = id + 1;
            ev = tab_find(ob, id, NULL);
            if (ev)
                ev_unlink_free(ob, ev);
            break;
        }
        default:
            rc = RG_EBADMSG;
        }
        if (rc == RG_ENOMEM)
            return rc;
        if (rc)
            break;                    /* a record the CRC accepted but we cannot read */
        off += FRAME_BYTES + n;
    }
    *good_len = off;
    return 0;
}

static int read_file(int fd, unsigned char **out, size_t *len)
{
    struct stat sb;
    unsigned char *buf;
    size_t got = 0, size;

    if (fstat(fd, &sb))
        return -errno;
    size = (size_t)sb.st_size;
    buf = malloc(size ? size : 1);
    if (!buf)
        return RG_ENOMEM;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? -errno : RG_EIO;
            free(buf);
            return err;
        }
        got += (size_t)n;
    }
    *out = buf;
    *len = size;
    return 0;
}

static int write_header(int fd)
{
    unsigned char h[HEADER_BYTES];

    memcpy(h, FILE_MAGIC, 8);
    for (int i = 0; i < 4; i++) {
        h[8 + i] = (unsigned char)(FILE_VERSION >> (8 * i));
        h[12 + i] = 0;
    }
    return write_all(fd, (const char *)h, sizeof(h));
}

/* ---- bounds --------------------------------------------------------------------------- */

static int drop_ev(struct rg_outbox *ob, struct ev *ev, enum rg_outbox_drop why, int write)
{
    int err = 0;

    if (write) {
        rg_buf_reset(&ob->scratch);
        err = encode_mark(&ob->scratch, REC_DROP, ev->pub.id, (unsigned)why);
        if (!err)
            err = log_write(ob, &ob->scratch);
        if (!err)
            ob->dirty = 1;
    }
    ob->queues[ev->queue].st.dropped[why]++;
    if (ob->cfg.on_drop)
        ob->cfg.on_drop(ob->cfg.on_drop_ud, &ev->pub, why);
    ev_unlink_free(ob, ev);
    return err;
}

/* Drops the oldest events until @extra_events more events of @extra_bytes fit. The
 * drop records go into @b (the batch being built) so they share its write. */
static int make_room(struct rg_outbox *ob, size_t extra_events, uint64_t extra_bytes,
                     struct rg_buf *b)
{
    while (ob->head && (ob->count + extra_events > ob->cfg.max_events ||
                        ob->live_bytes + extra_bytes > ob->cfg.max_bytes)) {
        struct ev *ev = ob->head;
        if (encode_mark(b, REC_DROP, ev->pub.id, RG_OUTBOX_DROP_FULL))
            return RG_ENOMEM;
        drop_ev(ob, ev, RG_OUTBOX_DROP_FULL, 0);
    }
    return 0;
}

/* ---- public API --------------------------------------------------------------------------- */

void rg_outbox_config_default(struct rg_outbox_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_bytes = 64u << 20;
    cfg->max_events = 100000;
    cfg->compact_min_bytes = 1u << 20;
}

int rg_outbox_open(const struct rg_outbox_config *cfg, int64_t now_ms, struct rg_outbox **out)
{
    struct rg_outbox *ob;
    unsigned char *data = NULL;
    size_t len = 0, good = HEADER_BYTES;
    int created = 0, err;

    *out = NULL;
    if (!cfg || !cfg->path || !cfg->path[0])
        return RG_EINVAL;
    crc_init();
    ob = calloc(1, sizeof(*ob));
    if (!ob)
        return RG_ENOMEM;
    ob->cfg = *cfg;
    ob->fd = -1;
    ob->next_id = 1;
    if (!ob->cfg.max_bytes)
        ob->cfg.max_bytes = 64u << 20;
    if (!ob->cfg.max_events)
        ob->cfg.max_events = 100000;
    if (!ob->cfg.compact_min_bytes)
        ob->cfg.compact_min_bytes = 1u << 20;
    ob->cfg.path = strdup(cfg->path);
    ob->tmp_path = malloc(strlen(cfg->path) + sizeof(".compact"));
    if (!ob->cfg.path || !ob->tmp_path) {
        err = RG_ENOMEM;
        goto fail_alloc;
    }
    strcpy(ob->tmp_path, cfg->path);
    strcat(ob->tmp_path, ".compact");
    /* A compaction interrupted by a crash leaves its temporary file behind; the log
     * itself was never touched, so the leftover is simply discarded. */
    unlink(ob->tmp_path);

    ob->fd = open(ob->cfg.path, O_RDWR | O_CLOEXEC | O_APPEND);
    if (ob->fd < 0 && errno == ENOENT) {
        ob->fd = open(ob->cfg.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND, 0600);
        created = 1;
    }
    if (ob->fd < 0) {
        err = -errno;
        goto fail_alloc;
    }
    if (flock(ob->fd, LOCK_EX | LOCK_NB)) {
        err = errno == EWOULDBLOCK ? RG_EEXIST : -errno;
        goto fail_file;
    }
    err = read_file(ob->fd, &data, &len);
    if (err)
        goto fail_file;
    if (len >= 8 && memcmp(data, FILE_MAGIC, 8)) {
        rg_error("event=outbox_open_failed path=%s reason=not_an_outbox", ob->cfg.path);
        err = RG_EBADMSG;
        goto fail_read;
    }
    if (len < HEADER_BYTES) {
        /* New, or torn while the header was written: nothing was ever accepted. */
        if (ftruncate(ob->fd, 0) || write_header(ob->fd) || fdatasync(ob->fd)) {
            err = -errno;
            goto fail_read;
        }
        created = 1;
        len = HEADER_BYTES;
    } else {
        err = replay(ob, data, len, now_ms, &good);
        if (err)
            goto fail_replay;
        if (good < len) {
            ob->st.torn_bytes = len - good;
            rg_warn("event=outbox_torn_tail path=%s offset=%zu ignored_bytes=%zu",
                    ob->cfg.path, good, len - good);
            if (ftruncate(ob->fd, (off_t)good) || fdatasync(ob->fd)) {
                err = -errno;
                goto fail_replay;
            }
            len = good;
        }
    }
    free(data);
    data = NULL;
    if (created && (err = dir_fsync(ob->cfg.path)))
        goto fail_replay;
    ob->file_bytes = len;
    ob->st.replayed = ob->count;
    for (size_t i = 0; i < ob->nqueues; i++)
        memset(&ob->queues[i].st.appended, 0,
               sizeof(ob->queues[i].st) - offsetof(struct rg_outbox_queue_stats, appended));
    /* A configuration with smaller bounds than the log's content applies at once. */
    rg_buf_reset(&ob->scratch);
    err = make_room(ob, 0, 0, &ob->scratch);
    if (!err && ob->scratch.len)
        err = log_write(ob, &ob->scratch);
    if (err)
        goto fail_replay;
    ob->compact_floor = ob->cfg.compact_min_bytes;
    if (ob->count)
        rg_info("event=outbox_replayed path=%s pending=%zu bytes=%llu", ob->cfg.path,
                ob->count, (unsigned long long)ob->file_bytes);
    *out = ob;
    return 0;

fail_replay:
    while (ob->head)
        ev_unlink_free(ob, ob->head);
fail_read:
    free(data);
fail_file:
    close(ob->fd);
fail_alloc:
    for (size_t i = 0; i < ob->nqueues; i++) {
        free(ob->queues[i].name);
        free(ob->queues[i].heap);
    }
    free(ob->queues);
    free(ob->tab);
    rg_buf_cleanup(&ob->scratch);
    free((char *)ob->cfg.path);
    free(ob->tmp_path);
    free(ob);
    return err;
}

void rg_outbox_close(struct rg_outbox *ob)
{
    if (!ob)
        return;
    if (ob->dirty)
        log_fsync(ob);
    while (ob->head) {
        /* Freed without marks: these events are live and will be replayed. */
        struct ev *ev = ob->head;
        ob->head = ev->next;
        free(ev);
    }
    close(ob->fd);
    for (size_t i = 0; i < ob->nqueues; i++) {
        free(ob->queues[i].name);
        free(ob->queues[i].heap);
    }
    free(ob->queues);
    free(ob->tab);
    rg_buf_cleanup(&ob->scratch);
    free((char *)ob->cfg.path);
    free(ob->tmp_path);
    free(ob);
}

static int check_entry(const struct rg_outbox *ob, const struct rg_outbox_entry *e)
{
    size_t nn;

    if (!e->notifier || !(nn = strlen(e->notifier)) || nn > MAX_STR)
        return RG_EINVAL;
    if (opt_len(e->dedup_key) > MAX_STR || opt_len(e->content_type) > MAX_STR)
        return RG_EINVAL;
    if (e->nheaders > MAX_HEADERS || (e->nheaders && !e->headers))
        return RG_EINVAL;
    for (size_t i = 0; i < e->nheaders; i++)
        if (!e->headers[i] || strlen(e->headers[i]) > MAX_STR)
            return RG_EINVAL;
    if (e->payload_len && !e->payload)
        return RG_EINVAL;
    if (e->payload_len > UINT32_MAX || event_record_bytes(e) > ob->cfg.max_bytes ||
        event_record_bytes(e) > MAX_RECORD)
        return RG_ETOOBIG;
    return 0;
}

int rg_outbox_append_batch(struct rg_outbox *ob, const struct rg_outbox_entry *e, size_t n,
                           uint64_t *ids_out)
{
    struct rg_buf b = { 0 };
    uint64_t first = ob->next_id;
    int err = 0;

    for (size_t i = 0; i < n; i++)
        if ((err = check_entry(ob, &e[i])))
            return err;
    for (size_t i = 0; i < n && !err; i++) {
        uint64_t id = ob->next_id;
        struct ev *ev;

        err = make_room(ob, 1, event_record_bytes(&e[i]), &b);
        if (err)
            break;
        ev = ev_new(id, &e[i]);
        if (!ev || encode_event(&b, id, &e[i]) || ev_link(ob, ev, e[i].created_ms)) {
            free(ev);
            err = RG_ENOMEM;
            break;
        }
        ob->next_id++;
        if (ids_out)
            ids_out[i] = id;
    }
    if (!err)
        err = log_write(ob, &b);
    if (!err)
        err = log_fsync(ob);
    rg_buf_cleanup(&b);
    if (err) {
        /* All or none: take the batch's events out again. Drops made for room stay
         * dropped in memory; if their records were not written they come back on the
         * next open, which errs on the side of delivering. */
        for (uint64_t id = first; id < ob->next_id; id++) {
            struct ev *ev = tab_find(ob, id, NULL);
            if (ev)
                ev_unlink_free(ob, ev);
        }
        rg_error("event=outbox_append_failed path=%s err=%s", ob->cfg.path,
                 rg_err_name(err));
        return err;
    }
    for (uint64_t id = first; id < ob->next_id; id++) {
        struct ev *ev = tab_find(ob, id, NULL);
        if (ev)
            ob->queues[ev->queue].st.appended++;
    }
    return 0;
}

int rg_outbox_append(struct rg_outbox *ob, const struct rg_outbox_entry *e, uint64_t *id_out)
{
    return rg_outbox_append_batch(ob, e, 1, id_out);
}

const struct rg_outbox_event *rg_outbox_next_due(struct rg_outbox *ob, const char *notifier,
                                                 int64_t now_ms)
{
    struct queue *q = queue_find(ob, notifier);

    if (!q || !q->heap_len || q->heap[0]->pub.next_attempt_ms > now_ms)
        return NULL;
    return &q->heap[0]->pub;
}

int64_t rg_outbox_next_due_ms(struct rg_outbox *ob, const char *notifier)
{
    struct queue *q = queue_find(ob, notifier);

    if (!q || !q->heap_len)
        return INT64_MAX;
    return q->heap[0]->pub.next_attempt_ms;
}

const struct rg_outbox_event *rg_outbox_get(struct rg_outbox *ob, uint64_t id)
{
    struct ev *ev = tab_find(ob, id, NULL);
    return ev ? &ev->pub : NULL;
}

int rg_outbox_take(struct rg_outbox *ob, uint64_t id)
{
    struct ev *ev = tab_find(ob, id, NULL);
    struct queue *q;

    if (!ev)
        return RG_ENOENT;
    if (ev->heap_idx == SIZE_MAX)
        return RG_EINVAL;
    q = &ob->queues[ev->queue];
    heap_remove(q, ev);
    q->st.pending--;
    q->st.in_flight++;
    ev->pub.in_flight = 1;
    ev->pub.attempts++;
    return 0;
}

int rg_outbox_retry(struct rg_outbox *ob, uint64_t id, int64_t next_attempt_ms,
                    int64_t backoff_ms)
{
    struct ev *ev = tab_find(ob, id, NULL);
    struct queue *q;

    if (!ev)
        return RG_ENOENT;
    q = &ob->queues[ev->queue];
    ev->pub.last_backoff_ms = backoff_ms;
    if (ev->heap_idx != SIZE_MAX) {
        heap_remove(q, ev);
        q->st.pending--;
    } else {
        q->st.in_flight--;
    }
    ev->pub.in_flight = 0;
    ev->pub.next_attempt_ms = next_attempt_ms;
    if (heap_push(q, ev)) {
        /* Cannot requeue: keep it in flight so it is at least replayed after restart. */
        q->st.in_flight++;
        ev->pub.in_flight = 1;
        return RG_ENOMEM;
    }
    q->st.pending++;
    return 0;
}

void rg_outbox_hurry(struct rg_outbox *ob, const char *notifier, int64_t when_ms)
{
    struct queue *q = queue_find(ob, notifier);

    if (!q)
        return;
    for (size_t i = 0; i < q->heap_len; i++)
        if (q->heap[i]->pub.next_attempt_ms > when_ms)
            q->heap[i]->pub.next_attempt_ms = when_ms;
    /* Lowering keys keeps no heap order in general: rebuild bottom-up (Floyd). */
    for (size_t i = q->heap_len / 2; i-- > 0;)
        heap_down(q, i);
}

static void maybe_compact(struct rg_outbox *ob)
{
    uint64_t dead = ob->file_bytes - HEADER_BYTES - ob->live_bytes;

    if (ob->file_bytes < ob->compact_floor || dead <= ob->live_bytes)
        return;
    if (rg_outbox_compact(ob)) {
        /* Do not retry on every mark: wait until the log has grown by another step. */
        ob->compact_floor = ob->file_bytes + ob->cfg.compact_min_bytes;
    }
}

static int mark(struct rg_outbox *ob, uint64_t id, enum rec_type type, enum rg_outbox_drop why)
{
    struct ev *ev = tab_find(ob, id, NULL);
    int err;

    if (!ev)
        return RG_ENOENT;
    if (type == REC_DROP) {
        err = drop_ev(ob, ev, why, 1);
    } else {
        rg_buf_reset(&ob->scratch);
        err = encode_mark(&ob->scratch, REC_ACK, id, 0);
        if (!err)
            err = log_write(ob, &ob->scratch);
        if (!err)
            ob->dirty = 1;
        ob->queues[ev->queue].st.acked++;
        ev_unlink_free(ob, ev);
    }
    if (err)
        rg_warn("event=outbox_mark_failed id=%llu err=%s", (unsigned long long)id,
                rg_err_name(err));
    maybe_compact(ob);
    return err;
}

int rg_outbox_ack(struct rg_outbox *ob, uint64_t id)
{
    return mark(ob, id, REC_ACK, 0);
}

int rg_outbox_drop(struct rg_outbox *ob, uint64_t id, enum rg_outbox_drop why)
{
    if ((unsigned)why >= RG_OUTBOX_DROP__COUNT)
        return RG_EINVAL;
    return mark(ob, id, REC_DROP, why);
}

size_t rg_outbox_drop_notifier(struct rg_outbox *ob, const char *notifier,
                               enum rg_outbox_drop why)
{
    struct queue *q = queue_find(ob, notifier);
    size_t qi, n = 0;
    struct ev *ev, *next;

    if (!q || (unsigned)why >= RG_OUTBOX_DROP__COUNT)
        return 0;
    qi = (size_t)(q - ob->queues);
    for (ev = ob->head; ev; ev = next) {
        next = ev->next;
        if (ev->queue == qi) {
            drop_ev(ob, ev, why, 1);
            n++;
        }
    }
    maybe_compact(ob);
    return n;
}

int rg_outbox_sync(struct rg_outbox *ob)
{
    return ob->dirty ? log_fsync(ob) : 0;
}

int rg_outbox_compact(struct rg_outbox *ob)
{
    struct rg_buf b = { 0 };
    uint64_t bytes = HEADER_BYTES;
    int fd, err = 0;

    fd = open(ob->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    err = write_header(fd);
    for (struct ev *ev = ob->head; ev && !err; ev = ev->next) {
        struct rg_outbox_entry e = {
            .notifier = ev->pub.notifier, .dedup_key = ev->pub.dedup_key,
            .content_type = ev->pub.content_type, .headers = ev->pub.headers,
            .nheaders = ev->pub.nheaders, .payload = ev->pub.payload,
            .payload_len = ev->pub.payload_len, .created_ms = ev->pub.created_ms,
        };
        err = encode_event(&b, ev->pub.id, &e);
        if (!err && (b.len >= (1u << 20) || !ev->next)) {
            err = write_all(fd, b.data, b.len);
            bytes += b.len;
            rg_buf_reset(&b);
        }
    }
    rg_buf_cleanup(&b);
    if (!err && fdatasync(fd))
        err = -errno;
    if (close(fd) && !err)
        err = -errno;
    if (!err && rename(ob->tmp_path, ob->cfg.path))
        err = -errno;
    if (err) {
        unlink(ob->tmp_path);
        rg_warn("event=outbox_compact_failed path=%s err=%s", ob->cfg.path, rg_err_name(err));
        return err;
    }
    /* The rename is the commit point; the directory fsync makes it durable. A failure
     * after it leaves a valid log either way, so it is only logged. */
    if (dir_fsync(ob->cfg.path))
        rg_warn("event=outbox_dir_fsync_failed path=%s", ob->cfg.path);
    fd = open(ob->cfg.path, O_RDWR | O_CLOEXEC | O_APPEND);
    if (fd < 0) {
        err = -errno;
        rg_error("event=outbox_reopen_failed path=%s err=%s", ob->cfg.path, rg_err_name(err));
        return err;
    }
    if (flock(fd, LOCK_EX | LOCK_NB))
        rg_warn("event=outbox_lock_failed path=%s", ob->cfg.path);
    close(ob->fd);
    ob->fd = fd;
    ob->file_bytes = bytes;
    ob->dirty = 0;
    ob->st.compactions++;
    ob->compact_floor = ob->cfg.compact_min_bytes;
    rg_debug("event=outbox_compacted path=%s events=%zu bytes=%llu", ob->cfg.path, ob->count,
             (unsigned long long)bytes);
    return 0;
}

size_t rg_outbox_notifier_count(const struct rg_outbox *ob)
{
    return ob->nqueues;
}

const char *rg_outbox_notifier_name(const struct rg_outbox *ob, size_t i)
{
    return i < ob->nqueues ? ob->queues[i].name : NULL;
}

void rg_outbox_queue_stats(const struct rg_outbox *ob, const char *notifier,
                           struct rg_outbox_queue_stats *out)
{
    const struct queue *q = queue_find(ob, notifier);

    if (q)
        *out = q->st;
    else
        memset(out, 0, sizeof(*out));
}

void rg_outbox_stats(const struct rg_outbox *ob, struct rg_outbox_stats *out)
{
    *out = ob->st;
    out->events = ob->count;
    out->live_bytes = ob->live_bytes;
    out->file_bytes = ob->file_bytes;
}

const char *rg_outbox_drop_name(enum rg_outbox_drop why)
{
    switch (why) {
    case RG_OUTBOX_DROP_EXPIRED:
        return "expired";
    case RG_OUTBOX_DROP_REJECTED:
        return "rejected";
    case RG_OUTBOX_DROP_FULL:
        return "outbox_full";
    case RG_OUTBOX_DROP_NO_NOTIFIER:
        return "no_notifier";
    case RG_OUTBOX_DROP__COUNT:
        break;
    }
    return "unknown";
}
