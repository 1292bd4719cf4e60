/* sticky_session C API: the core of the nginx sticky_session module
 * (session id extraction, streaming body scanner, session store over
 * caller-provided memory), without nginx.
 *
 * Generated from src/ffi/c.rs by cbindgen (`make header`); do not edit.
 * Link with libsticky_session.a (-lpthread -ldl -lm). */

#ifndef STICKY_SESSION_H
#define STICKY_SESSION_H

#include <stddef.h>
#include <stdint.h>

/**
 * Success; for lookups, a live session was found.
 */
#define STICKY_OK 0

/**
 * Nothing found: no id in the input, or no such session.
 */
#define STICKY_NOT_FOUND 1

/**
 * The session existed but outlived its idle timeout or max age.
 */
#define STICKY_EXPIRED 2

/**
 * An argument is invalid (NULL where a value is needed, bad name or length).
 */
#define STICKY_EINVAL -1

/**
 * The memory given to a store is too small, misaligned or not a store.
 */
#define STICKY_ENOMEM -2

/**
 * An internal error; the call had no effect.
 */
#define STICKY_EINTERNAL -3

/**
 * Outcome of `sticky_store_learn`: a new session was recorded.
 */
#define STICKY_LEARNED_NEW 0

/**
 * The session already pointed at this server; its idle time was reset.
 */
#define STICKY_LEARNED_REFRESHED 1

/**
 * The session is live on another server and was left there.
 */
#define STICKY_LEARNED_KEPT 2

/**
 * The session was moved to this server (`rebind` was non-zero).
 */
#define STICKY_LEARNED_REBOUND 3

/**
 * Scan bodies as HTML: URL attributes and hidden form fields.
 */
#define STICKY_MODE_HTML 0

/**
 * Scan bodies as text: any same-site URL.
 */
#define STICKY_MODE_TEXT 1

/**
 * `sticky_extract` source: a request target `/path;NAME=ID?NAME=ID`, the
 * query first, then path parameters.
 */
#define STICKY_SOURCE_TARGET 0

/**
 * `sticky_extract` source: an `application/x-www-form-urlencoded` body.
 */
#define STICKY_SOURCE_FORM 1

/**
 * `sticky_extract` source: a `Cookie` header value.
 */
#define STICKY_SOURCE_COOKIE 2

/**
 * Id parameter names and the longest id accepted.
 */
typedef struct sticky_config_t sticky_config_t;

/**
 * A streaming body scanner for one response.
 */
typedef struct sticky_scanner_t sticky_scanner_t;

/**
 * A session store over caller-provided memory.
 */
typedef struct sticky_store_t sticky_store_t;

/**
 * Called with each id found: `id` points into the chunk being fed (or the
 * scanner's carry) and is valid only during the call.
 */
typedef void (*sticky_found_fn)(void *user, const uint8_t *id, size_t len);

/**
 * Lock for store writers, supplied by the caller (e.g. a robust pthread
 * mutex in the same shared memory). Writers (`sticky_store_learn`,
 * `sticky_store_expire`) must never run concurrently: two unlocked writers,
 * threads or processes, can leave one id paired with the other's server.
 * Readers never take it.
 */
typedef void (*sticky_lock_fn)(void *user);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Creates a configuration from `count` NUL-terminated parameter names (at
 * most 8, letters, digits, `_-.`, 1-32 bytes) and the longest id accepted
 * (1-512). Stores the handle in `*out`.
 *
 * # Safety
 * `names` must point at `count` valid C strings; `out` must be writable.
 */
int sticky_config_new(const char *const *names,
                      size_t count,
                      size_t max_id_len,
                      struct sticky_config_t **out);

/**
 * Releases a configuration. Scanners made from it must be freed first.
 *
 * # Safety
 * `config` must be NULL or a handle from `sticky_config_new`, not used after.
 */
void sticky_config_free(struct sticky_config_t *config);

/**
 * Finds the first id in `input` read as `source` (a `STICKY_SOURCE_*`). On `STICKY_OK`, `*id` and
 * `*id_len` describe the id inside `input`.
 *
 * # Safety
 * `config` must be a live handle; `input` must point at `len` bytes; `id`
 * and `id_len` must be writable.
 */
int sticky_extract(const struct sticky_config_t *config,
                   int source,
                   const uint8_t *input,
                   size_t len,
                   const uint8_t **id,
                   size_t *id_len);

/**
 * Creates a scanner for one response body from the site `host` (the
 * request's Host, without port), in `STICKY_MODE_HTML` or `STICKY_MODE_TEXT`.
 *
 * # Safety
 * `config` must outlive the scanner; `host` must point at `host_len` bytes;
 * `out` must be writable.
 */
int sticky_scanner_new(const struct sticky_config_t *config,
                       const uint8_t *host,
                       size_t host_len,
                       int mode,
                       struct sticky_scanner_t **out);

/**
 * Feeds the next chunk of the body; `found` is called for each id completed
 * by it, before this returns, except an id equal to the one reported just
 * before (a page repeats its session id in every link). Chunks may be
 * split anywhere.
 *
 * # Safety
 * `scanner` must be a live handle; `chunk` must point at `len` bytes.
 */
int sticky_scanner_feed(struct sticky_scanner_t *scanner,
                        const uint8_t *chunk,
                        size_t len,
                        sticky_found_fn found,
                        void *user);

/**
 * Ends the body: reports an id cut off by the end, if any. The scanner can
 * then be fed a new body.
 *
 * # Safety
 * `scanner` must be a live handle.
 */
int sticky_scanner_finish(struct sticky_scanner_t *scanner, sticky_found_fn found, void *user);

/**
 * Releases a scanner.
 *
 * # Safety
 * `scanner` must be NULL or a handle from `sticky_scanner_new`, not used after.
 */
void sticky_scanner_free(struct sticky_scanner_t *scanner);

/**
 * Bytes of memory a store needs to hold `sessions` sessions (rounded up to
 * whole buckets of 8), or 0 when that many cannot be addressed.
 */
size_t sticky_store_size(size_t sessions);

/**
 * Formats `len` bytes at `mem` (8-byte aligned, e.g. the caller's shared
 * memory) as an empty store whose ids are hashed with the 16-byte `secret`
 * (random per store; keep it to reopen a saved store). Existing contents are
 * erased. `lock`/`unlock` guard writers (see `StickyLockFn`); they may be
 * NULL only when a single thread of a single process ever writes.
 *
 * # Safety
 * `mem` must point at `len` writable bytes outliving the handle; `secret`
 * must point at 2 integers; `out` must be writable.
 */
int sticky_store_format(void *mem,
                        size_t len,
                        const uint64_t *secret,
                        sticky_lock_fn lock,
                        sticky_lock_fn unlock,
                        void *lock_user,
                        struct sticky_store_t **out);

/**
 * Opens a store formatted earlier at `mem` (by this or another process).
 *
 * # Safety
 * As for `sticky_store_format`, except that `mem` is not modified.
 */
int sticky_store_attach(void *mem,
                        size_t len,
                        sticky_lock_fn lock,
                        sticky_lock_fn unlock,
                        void *lock_user,
                        struct sticky_store_t **out);

/**
 * Releases a store handle; the memory itself is the caller's.
 *
 * # Safety
 * `store` must be NULL or a handle from this API, not used after.
 */
void sticky_store_free(struct sticky_store_t *store);

/**
 * Sessions the store can hold.
 *
 * # Safety
 * `store` must be a live handle.
 */
size_t sticky_store_capacity(const struct sticky_store_t *store);

/**
 * Looks up the session `id` at time `now` (seconds): `STICKY_OK` with its
 * server in `*server` (and its idle time reset), `STICKY_NOT_FOUND`, or
 * `STICKY_EXPIRED`. `max_age` 0 means no limit. Lock-free.
 *
 * # Safety
 * `store` must be a live handle; `id` must point at `id_len` bytes; `server` writable.
 */
int sticky_store_lookup(const struct sticky_store_t *store,
                        const uint8_t *id,
                        size_t id_len,
                        uint32_t now,
                        uint32_t idle,
                        uint32_t max_age,
                        uint32_t *server);

/**
 * Records that session `id` lives on `server`. A live session on another
 * server is kept there unless `rebind` is non-zero. Returns a
 * `STICKY_LEARNED_*` outcome, or a negative error.
 *
 * # Safety
 * `store` must be a live handle; `id` must point at `id_len` bytes.
 */
int sticky_store_learn(const struct sticky_store_t *store,
                       const uint8_t *id,
                       size_t id_len,
                       uint32_t server,
                       uint32_t now,
                       uint32_t idle,
                       uint32_t max_age,
                       int rebind);

/**
 * Clears every session that has expired at `now`, returning how many (or
 * a negative error). Not needed for correctness (expired sessions read as
 * absent and are reused first); for callers that want the memory tidy.
 *
 * # Safety
 * `store` must be a live handle.
 */
int sticky_store_expire(const struct sticky_store_t *store,
                        uint32_t now,
                        uint32_t idle,
                        uint32_t max_age);

/**
 * Live sessions at `now`.
 *
 * # Safety
 * `store` must be a live handle.
 */
size_t sticky_store_live(const struct sticky_store_t *store,
                         uint32_t now,
                         uint32_t idle,
                         uint32_t max_age);

/**
 * The identity nginx gives a server: a stable hash of its address text
 * (`10.0.0.1:8080`), so C programs can share tables with the module's view.
 *
 * # Safety
 * `name` must point at `len` bytes.
 */
uint32_t sticky_server_id(const uint8_t *name, size_t len);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* STICKY_SESSION_H */
