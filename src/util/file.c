/* util/file.c - whole-file read, and write-to-temporary + fsync + rename. */
#include "util/file.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rg_file_write_atomic(const char *path, const void *data, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    const char *p = data;
    const char *slash;
    int fd, dfd, err = 0;

    if (!tmp)
        return RG_ENOMEM;
    snprintf(tmp, plen + 16, "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = -errno;
        goto fail_open;
    }
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            goto fail_write;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd)) {
        err = -errno;
        goto fail_write;
    }
    if (close(fd)) {
        fd = -1;
        err = -errno;
        goto fail_write;
    }
    fd = -1;
    if (rename(tmp, path)) {
        err = -errno;
        goto fail_write;
    }
    /* The rename itself is durable only once the directory is synced. */
    slash = strrchr(path, '/');
    if (slash) {
        tmp[0] = '\0';
        snprintf(tmp, plen + 16, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
    } else {
        snprintf(tmp, plen + 16, ".");
    }
    dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(tmp);
    return 0;

fail_write:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
fail_open:
    free(tmp);
    return err;
}

int rg_file_read(const char *path, size_t max, struct rg_buf *out)
{
    char chunk[16384];
    size_t total = 0;
    ssize_t n;
    int fd, err = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RG_ENOENT : -errno;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            break;
        }
        total += (size_t)n;
        if (total > max) {
            err = RG_ETOOBIG;
            break;
        }
        if ((err = rg_buf_append(out, chunk, (size_t)n)))
            break;
    }
    close(fd);
    return err;
}
