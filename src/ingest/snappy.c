/* ingest/snappy.c - bounded snappy block decompression (see snappy.h).
 *
 * Order of checks, each cheaper than the next: framed-format signature, the varint
 * length preamble against the limit, then the real decompression by libsnappy, which
 * validates the whole stream and fails unless it produces exactly the declared length.
 */
#include "ingest/snappy.h"

#include <snappy-c.h>
#include <string.h>

#include "util/err.h"

/* The first chunk of every framed stream: type 0xff, 24-bit length 6, "sNaPpY". */
static const unsigned char framed_magic[10] = {
    0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'
};

int rg_snappy_is_framed(const void *in, size_t len)
{
    return len >= sizeof(framed_magic) && memcmp(in, framed_magic, sizeof(framed_magic)) == 0;
}

int rg_snappy_declared_len(const void *in, size_t len, size_t *out)
{
    if (len == 0)
        return RG_EBADMSG;
    if (snappy_uncompressed_length(in, len, out) != SNAPPY_OK)
        return RG_EBADMSG;
    return 0;
}

static int fail(struct rg_buf *out, const char **reason, const char *msg, int err)
{
    out->len = 0;
    if (out->data)
        out->data[0] = '\0';
    if (reason)
        *reason = msg;
    return err;
}

int rg_snappy_uncompress(const void *in, size_t len, size_t limit, struct rg_buf *out,
                         const char **reason)
{
    size_t declared;
    size_t got;
    int err;

    if (len == 0)
        return fail(out, reason, "snappy: empty body", RG_EBADMSG);
    if (rg_snappy_is_framed(in, len))
        return fail(out, reason, "snappy framed format not supported", RG_EBADMSG);
    if (rg_snappy_declared_len(in, len, &declared) != 0)
        return fail(out, reason, "snappy: corrupt length preamble", RG_EBADMSG);
    /* The limit is enforced on the declared size, before the buffer is grown: the
     * preamble is the only thing a hostile sender controls for free. */
    if (declared > limit)
        return fail(out, reason, "snappy: uncompressed body over the size limit", RG_ETOOBIG);

    rg_buf_reset(out);
    err = rg_buf_reserve(out, declared);
    if (err)
        return fail(out, reason, "out of memory", err);
    got = out->cap;
    if (snappy_uncompress(in, len, out->data, &got) != SNAPPY_OK || got != declared)
        return fail(out, reason, "snappy: corrupt input", RG_EBADMSG);
    out->len = got;
    out->data[got] = '\0';
    if (reason)
        *reason = NULL;
    return 0;
}
