/* A C program using the sticky_session core through include/sticky_session.h:
 * id extraction, the streaming scanner fed 3 bytes at a time, and a session
 * store in shared memory used by two processes under a robust mutex, and
 * by four threads learning and looking up at once under the writers' lock.
 * Run by `make test` (make capi); exits non-zero on the first wrong result. */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sticky_session.h"

static int checks;

#define CHECK(cond)                                                         \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            fprintf(stderr, "capi example: %s:%d: check failed: %s\n",      \
                    __FILE__, __LINE__, #cond);                             \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static int
id_is(const uint8_t *id, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(id, want, len) == 0;
}

/* Collects found ids into one comma-separated string. */
struct found {
    char list[256];
};

static void
on_found(void *user, const uint8_t *id, size_t len)
{
    struct found *f = user;
    size_t used = strlen(f->list);

    if (used + len + 2 < sizeof(f->list)) {
        if (used) {
            f->list[used++] = ',';
        }
        memcpy(f->list + used, id, len);
        f->list[used + len] = '\0';
    }
}

static void
lock(void *m)
{
    int rc = pthread_mutex_lock(m);

    if (rc == EOWNERDEAD) {
        /* The previous holder died: the store is consistent after any
         * prefix of an update, so just mark the mutex usable again. */
        pthread_mutex_consistent(m);
    }
}

static void
unlock(void *m)
{
    pthread_mutex_unlock(m);
}

/* Four threads share a store of one bucket (so every write races for the
 * same eight slots): each learns its own ids for its own server under the writers'
 * lock and looks up the others' without it. An id must never read back
 * another thread's server. */
#define THREADS 4
#define THREAD_IDS 20000

struct worker {
    pthread_t       thread;
    sticky_store_t *store;
    uint32_t        server;
    int             index;
    long            wrong;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    char           id[32];
    uint32_t       server;

    for (int i = 0; i < THREAD_IDS; i++) {
        int len = snprintf(id, sizeof(id), "t%d-%d", w->index, i);
        int rc = sticky_store_learn(w->store, (const uint8_t *) id, len, w->server, 1000, 600,
                                    0, 0);
        if (rc < 0) {
            w->wrong++;
        }
        /* Its own id, just learned: absent (evicted) or on its server. */
        rc = sticky_store_lookup(w->store, (const uint8_t *) id, len, 1000, 600, 0, &server);
        if (rc == STICKY_OK && server != w->server) {
            w->wrong++;
        }
        /* Someone else's id from a moment ago: absent or theirs. */
        len = snprintf(id, sizeof(id), "t%d-%d", (w->index + 1) % THREADS, i / 2);
        rc = sticky_store_lookup(w->store, (const uint8_t *) id, len, 1000, 600, 0, &server);
        if (rc == STICKY_OK && server != (uint32_t) (100 + (w->index + 1) % THREADS)) {
            w->wrong++;
        }
    }
    return NULL;
}

static void
threads_share_one_store(void)
{
    size_t           size = sticky_store_size(8);
    uint64_t        *mem = calloc(1, size);
    uint64_t         secret[2] = { 7, 8 };
    pthread_mutex_t  mutex = PTHREAD_MUTEX_INITIALIZER;
    sticky_store_t  *st;
    struct worker    w[THREADS];
    char             id[32];
    uint32_t         server;
    long             found = 0;

    CHECK(mem != NULL);
    CHECK(sticky_store_format(mem, size, secret, lock, unlock, &mutex, &st) == STICKY_OK);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker) { .store = st, .server = 100 + i, .index = i };  /* 100 + index */
        CHECK(pthread_create(&w[i].thread, NULL, work, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(w[i].thread, NULL) == 0);
        CHECK(w[i].wrong == 0);
    }
    /* Afterwards, every surviving id is on its own thread's server. */
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < THREAD_IDS; i++) {
            int len = snprintf(id, sizeof(id), "t%d-%d", t, i);
            if (sticky_store_lookup(st, (const uint8_t *) id, len, 1000, 600, 0, &server)
                == STICKY_OK)
            {
                found++;
                CHECK(server == (uint32_t) (100 + t));
            }
        }
    }
    CHECK(found > 0 && (size_t) found <= sticky_store_capacity(st));
    sticky_store_free(st);
    free(mem);
}

int
main(void)
{
    const char      *names[] = { "PHPSESSID", "sid" };
    sticky_config_t *cfg;
    const uint8_t   *id;
    size_t           id_len;

    CHECK(sticky_config_new(names, 2, 64, &cfg) == STICKY_OK);
    CHECK(sticky_config_new(names, 0, 64, &cfg) == STICKY_EINVAL);

    /* Extraction: target (query first), form body, cookie. */
    const char *target = "/cart;sid=path1?a=1&PHPSESSID=abc123&b=2";
    CHECK(sticky_extract(cfg, STICKY_SOURCE_TARGET, (const uint8_t *) target,
                         strlen(target), &id, &id_len) == STICKY_OK);
    CHECK(id_is(id, id_len, "abc123"));
    CHECK(id >= (const uint8_t *) target && id < (const uint8_t *) target + strlen(target));
    const char *path_only = "/cart;sid=path1/x";
    CHECK(sticky_extract(cfg, STICKY_SOURCE_TARGET, (const uint8_t *) path_only,
                         strlen(path_only), &id, &id_len) == STICKY_OK);
    CHECK(id_is(id, id_len, "path1"));
    const char *form = "user=alice&PHPSESSID=f1&pw=x";
    CHECK(sticky_extract(cfg, STICKY_SOURCE_FORM, (const uint8_t *) form, strlen(form),
                         &id, &id_len) == STICKY_OK);
    CHECK(id_is(id, id_len, "f1"));
    const char *cookie = "theme=dark; sid=\"c1\"";
    CHECK(sticky_extract(cfg, STICKY_SOURCE_COOKIE, (const uint8_t *) cookie, strlen(cookie),
                         &id, &id_len) == STICKY_OK);
    CHECK(id_is(id, id_len, "c1"));
    const char *none = "/plain?x=1&sidx=2";
    CHECK(sticky_extract(cfg, STICKY_SOURCE_TARGET, (const uint8_t *) none, strlen(none),
                         &id, &id_len) == STICKY_NOT_FOUND);
    CHECK(sticky_extract(cfg, 42, (const uint8_t *) none, strlen(none), &id, &id_len)
          == STICKY_EINVAL);

    /* The scanner, fed 3 bytes at a time. */
    const char *page =
        "<html><a href=\"/next?x=1&amp;PHPSESSID=link1#top\">next</a>"
        "<a href=\"https://elsewhere.example/?sid=foreign\">away</a>"
        "<form action=\"/login\" method=\"post\">"
        "<input type=\"hidden\" name=\"PHPSESSID\" value=\"form1\"></form>"
        "<img src=\"//shop.example/i.png?sid=img1\"></html>";
    sticky_scanner_t *sc;
    struct found      f = { "" };
    CHECK(sticky_scanner_new(cfg, (const uint8_t *) "shop.example", 12, STICKY_MODE_HTML, &sc)
          == STICKY_OK);
    for (size_t i = 0; i < strlen(page); i += 3) {
        size_t n = strlen(page) - i < 3 ? strlen(page) - i : 3;
        CHECK(sticky_scanner_feed(sc, (const uint8_t *) page + i, n, on_found, &f) == STICKY_OK);
    }
    CHECK(sticky_scanner_finish(sc, on_found, &f) == STICKY_OK);
    CHECK(strcmp(f.list, "link1,form1,img1") == 0 || strcmp(f.list, "link1,img1,form1") == 0);
    sticky_scanner_free(sc);

    /* A store in shared memory, written by a child process. */
    size_t sessions = 10000;
    size_t size = sticky_store_size(sessions);
    size_t lock_room = 64;
    uint8_t *shm = mmap(NULL, lock_room + size, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm != MAP_FAILED);
    pthread_mutex_t    *mutex = (pthread_mutex_t *) shm;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    CHECK(pthread_mutex_init(mutex, &attr) == 0);

    uint64_t        secret[2] = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };
    sticky_store_t *st;
    CHECK(sticky_store_format(shm + lock_room, 16, secret, lock, unlock, mutex, &st)
          == STICKY_ENOMEM);
    CHECK(sticky_store_format(shm + lock_room, size, secret, lock, unlock, mutex, &st)
          == STICKY_OK);
    CHECK(sticky_store_capacity(st) >= sessions);

    const char *web1 = "10.0.0.1:80", *web2 = "10.0.0.2:80";
    uint32_t    s1 = sticky_server_id((const uint8_t *) web1, strlen(web1));
    uint32_t    s2 = sticky_server_id((const uint8_t *) web2, strlen(web2));
    CHECK(s1 != s2);

    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        sticky_store_t *cs;
        if (sticky_store_attach(shm + lock_room, size, lock, unlock, mutex, &cs) != STICKY_OK) {
            _exit(2);
        }
        int rc = sticky_store_learn(cs, (const uint8_t *) "sess-A", 6, s1, 1000, 600, 0, 0);
        sticky_store_free(cs);
        _exit(rc == STICKY_LEARNED_NEW ? 0 : 3);
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    uint32_t server = 0;
    CHECK(sticky_store_lookup(st, (const uint8_t *) "sess-A", 6, 1100, 600, 0, &server)
          == STICKY_OK);
    CHECK(server == s1);
    CHECK(sticky_store_lookup(st, (const uint8_t *) "sess-B", 6, 1100, 600, 0, &server)
          == STICKY_NOT_FOUND);
    /* The first issuer keeps its session unless rebinding after failover. */
    CHECK(sticky_store_learn(st, (const uint8_t *) "sess-A", 6, s2, 1200, 600, 0, 0)
          == STICKY_LEARNED_KEPT);
    CHECK(sticky_store_learn(st, (const uint8_t *) "sess-A", 6, s2, 1200, 600, 0, 1)
          == STICKY_LEARNED_REBOUND);
    CHECK(sticky_store_lookup(st, (const uint8_t *) "sess-A", 6, 1300, 600, 0, &server)
          == STICKY_OK);
    CHECK(server == s2);
    CHECK(sticky_store_live(st, 1300, 600, 0) == 1);
    /* Idle past the timeout: expired, then cleared. */
    CHECK(sticky_store_lookup(st, (const uint8_t *) "sess-A", 6, 1300 + 601, 600, 0, &server)
          == STICKY_EXPIRED);
    CHECK(sticky_store_expire(st, 1300 + 601, 600, 0) == 1);
    CHECK(sticky_store_lookup(st, (const uint8_t *) "sess-A", 6, 1300 + 602, 600, 0, &server)
          == STICKY_NOT_FOUND);

    sticky_store_free(st);
    threads_share_one_store();
    sticky_config_free(cfg);
    munmap(shm, lock_room + size);
    printf("capi example: %d checks passed\n", checks);
    return 0;
}
