/* ingest/snappy.h - bounded snappy block-format decompression for request bodies.
 *
 * Remote-write bodies are compressed with the snappy *block* format, whose first bytes
 * are the uncompressed length as a little-endian base-128 varint. This module reads
 * that preamble first and refuses a body whose declared size is over a limit before a
 * single byte is allocated, so a small hostile body cannot make the daemon reserve
 * gigabytes. It also recognises the snappy *framed* (streaming) format by its stream
 * identifier chunk and refuses it with a precise reason, since senders must not use it.
 * Decompression itself is done by the snappy library (snappy-c.h) into a caller-owned,
 * reusable struct rg_buf, so that steady-state decoding allocates nothing once the
 * buffer has grown to the largest request seen.
 *
 * Pure: no I/O. Thread-safe as long as each thread uses its own output buffer.
 */
#ifndef RG_INGEST_SNAPPY_H
#define RG_INGEST_SNAPPY_H

#include <stddef.h>

#include "util/buf.h"

/** Default cap on the uncompressed size of one request body (32 MiB). */
#define RG_SNAPPY_DEFAULT_LIMIT ((size_t)32 << 20)

/** Reads the declared uncompressed length of a snappy block into @out without
 *  decompressing anything. Returns 0, or RG_EBADMSG when @in (borrowed, @len bytes)
 *  does not start with a valid length preamble (including an empty body). */
int rg_snappy_declared_len(const void *in, size_t len, size_t *out);

/** True when @in (borrowed, @len bytes) starts with the stream identifier chunk of
 *  the snappy framed format (0xff 0x06 0x00 0x00 "sNaPpY"). */
int rg_snappy_is_framed(const void *in, size_t len);

/** Decompresses the snappy block @in (borrowed, @len bytes) into @out, replacing its
 *  contents (out->len is the uncompressed size; the bytes are followed by a NUL).
 *  @out keeps its allocation between calls; it is grown only when needed.
 *  @limit caps the declared uncompressed size (use RG_SNAPPY_DEFAULT_LIMIT).
 *  @reason (may be NULL) is set to a static, human-readable message on failure.
 *  Returns 0; RG_ETOOBIG when the declared size is over @limit (checked before any
 *  allocation); RG_EBADMSG for a framed stream, an empty body or corrupt data;
 *  RG_ENOMEM. On failure out->len is 0. */
int rg_snappy_uncompress(const void *in, size_t len, size_t limit, struct rg_buf *out,
                         const char **reason);

#endif
