/* util/err.c - messages and names for RG_E* codes; negated errno falls back to libc. */
#include "util/err.h"

#include <string.h>

static const struct {
    int code;
    const char *name;
    const char *msg;
} errors[] = {
    { RG_OK,        "RG_OK",        "success" },
    { RG_ENOMEM,    "RG_ENOMEM",    "out of memory" },
    { RG_EINVAL,    "RG_EINVAL",    "invalid argument" },
    { RG_EBADMSG,   "RG_EBADMSG",   "malformed input" },
    { RG_ETOOBIG,   "RG_ETOOBIG",   "input too large" },
    { RG_ENOTSUP,   "RG_ENOTSUP",   "not supported" },
    { RG_ENOENT,    "RG_ENOENT",    "not found" },
    { RG_EEXIST,    "RG_EEXIST",    "already exists" },
    { RG_EORDER,    "RG_EORDER",    "out of order sample" },
    { RG_EDUP,      "RG_EDUP",      "duplicate sample for timestamp" },
    { RG_ETOOOLD,   "RG_ETOOOLD",   "sample too old" },
    { RG_EFUTURE,   "RG_EFUTURE",   "sample timestamp too far in the future" },
    { RG_ELIMIT,    "RG_ELIMIT",    "limit exceeded" },
    { RG_EPARSE,    "RG_EPARSE",    "parse error" },
    { RG_EEXEC,     "RG_EEXEC",     "execution error" },
    { RG_ETIMEDOUT, "RG_ETIMEDOUT", "timed out" },
    { RG_EIO,       "RG_EIO",       "I/O error" },
    { RG_ELABELS,   "RG_ELABELS",   "invalid label set" },
    { RG_ECANCELED, "RG_ECANCELED", "cancelled" },
};

const char *rg_strerror(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].msg;
    if (err < 0 && err > RG_E__BASE)
        return strerror(-err);
    return "unknown error";
}

const char *rg_err_name(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].name;
    if (err < 0 && err > RG_E__BASE) {
        const char *n = strerrorname_np(-err);
        return n ? n : "EUNKNOWN";
    }
    return "EUNKNOWN";
}
