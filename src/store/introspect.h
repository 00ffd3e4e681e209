/* store/introspect.h - read-only views of the store's internals for tests and benches.
 *
 * The public contract (store.h) hides how labels are interned and indexed; tests
 * still need to prove that strings are shared and released and that postings
 * shrink with the series they list. These functions expose counts only, never
 * pointers into the structures. Loop thread only, like the store itself.
 */
#ifndef RG_STORE_INTROSPECT_H
#define RG_STORE_INTROSPECT_H

#include <stddef.h>

#include "store/store.h"

/** Number of distinct interned strings alive. */
size_t rg__store_symbol_count(const struct rg_store *store);

/** Number of label name=value pairs with a postings list. */
size_t rg__store_pair_count(const struct rg_store *store);

/** Number of ids in the postings list of @name=@value (0 when absent). */
size_t rg__store_postings_len(const struct rg_store *store, const char *name,
                              const char *value);

#endif
