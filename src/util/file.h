/* util/file.h - whole-file reads and crash-safe whole-file writes.
 *
 * State that must survive a restart (alert timers, deployment phases) is written
 * with rg_file_write_atomic(): a temporary file in the same directory, fsync, rename
 * over the target, fsync of the directory. A crash at any moment leaves either the
 * old or the new content, never a mix. Blocking calls: use them for small files only.
 */
#ifndef RG_UTIL_FILE_H
#define RG_UTIL_FILE_H

#include <stddef.h>

#include "util/buf.h"

/** Replaces @path with @len bytes of @data atomically and durably.
 *  Returns 0 or a negated errno (RG_ENOMEM on allocation failure). */
int rg_file_write_atomic(const char *path, const void *data, size_t len);

/** Reads all of @path into @out (appended). Files over @max bytes give RG_ETOOBIG.
 *  Returns 0, RG_ENOENT when absent, RG_ETOOBIG, or a negated errno. */
int rg_file_read(const char *path, size_t max, struct rg_buf *out);

#endif
