//! The C API: the core (id extraction, the streaming body scanner, the
//! session store over caller-provided memory) for C programs, without nginx.
//! `include/sticky_session.h` is generated from this file by cbindgen
//! (`make header`).
//!
//! Conventions: opaque handles created by `*_new` and released by `*_free`
//! (NULL is accepted and ignored); every buffer comes with its length; ids
//! handed to the caller point into the caller's own buffers and live as long
//! as they do; functions return a `STICKY_*` status code and never unwind
//! into C (a Rust panic becomes `STICKY_EINTERNAL`).

use core::ffi::{c_char, c_int, c_void, CStr};
use core::mem::{align_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::extract::{cookie_ids, path_param_ids, query_ids, split_target};
use crate::id::{Names, MAX_ID_LEN_LIMIT, MAX_NAMES};
use crate::scanner::{Flow, Mode, Patterns, Scanner};
use crate::store::{
    self, Bind, Expiry, Header, Learned, Lookup, Slot, Table, WriteLock, HEADER_SIZE, WAYS,
};

/// Success; for lookups, a live session was found.
pub const STICKY_OK: c_int = 0;
/// Nothing found: no id in the input, or no such session.
pub const STICKY_NOT_FOUND: c_int = 1;
/// The session existed but outlived its idle timeout or max age.
pub const STICKY_EXPIRED: c_int = 2;
/// An argument is invalid (NULL where a value is needed, bad name or length).
pub const STICKY_EINVAL: c_int = -1;
/// The memory given to a store is too small, misaligned or not a store.
pub const STICKY_ENOMEM: c_int = -2;
/// An internal error; the call had no effect.
pub const STICKY_EINTERNAL: c_int = -3;

/// Outcome of `sticky_store_learn`: a new session was recorded.
pub const STICKY_LEARNED_NEW: c_int = 0;
/// The session already pointed at this server; its idle time was reset.
pub const STICKY_LEARNED_REFRESHED: c_int = 1;
/// The session is live on another server and was left there.
pub const STICKY_LEARNED_KEPT: c_int = 2;
/// The session was moved to this server (`rebind` was non-zero).
pub const STICKY_LEARNED_REBOUND: c_int = 3;

/// Scan bodies as HTML: URL attributes and hidden form fields.
pub const STICKY_MODE_HTML: c_int = 0;
/// Scan bodies as text: any same-site URL.
pub const STICKY_MODE_TEXT: c_int = 1;

/// Id parameter names and the longest id accepted.
pub struct StickyConfig {
    names: Names,
    max_id_len: usize,
    patterns: Patterns,
}

/// A streaming body scanner for one response.
pub struct StickyScanner {
    config: *const StickyConfig,
    host: Vec<u8>,
    scanner: Box<Scanner>,
}

/// Called with each id found: `id` points into the chunk being fed (or the
/// scanner's carry) and is valid only during the call.
pub type StickyFoundFn = Option<unsafe extern "C" fn(user: *mut c_void, id: *const u8, len: usize)>;

/// Lock for store writers, supplied by the caller (e.g. a robust pthread
/// mutex in the same shared memory). Writers (`sticky_store_learn`,
/// `sticky_store_expire`) must never run concurrently: two unlocked writers,
/// threads or processes, can leave one id paired with the other's server.
/// Readers never take it.
pub type StickyLockFn = Option<unsafe extern "C" fn(user: *mut c_void)>;

/// A session store over caller-provided memory.
pub struct StickyStore {
    header: *const Header,
    slots: *const Slot,
    nslots: usize,
    lock: StickyLockFn,
    unlock: StickyLockFn,
    lock_user: *mut c_void,
}

struct CallerLock<'a>(&'a StickyStore);

impl WriteLock for CallerLock<'_> {
    fn lock(&self) {
        if let Some(f) = self.0.lock {
            // SAFETY: the caller's lock function with the caller's argument.
            unsafe { f(self.0.lock_user) }
        }
    }
    fn unlock(&self) {
        if let Some(f) = self.0.unlock {
            // SAFETY: as above.
            unsafe { f(self.0.lock_user) }
        }
    }
}

fn guarded(f: impl FnOnce() -> c_int) -> c_int {
    guard(STICKY_EINTERNAL, f)
}

/// Runs `f`, answering `fallback` if it panics: nothing unwinds into C.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// # Safety
/// `p` must be NULL (then `len` must be 0) or point at `len` readable bytes.
unsafe fn slice<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        return (len == 0).then_some(&[]);
    }
    // SAFETY: per the contract.
    Some(unsafe { core::slice::from_raw_parts(p, len) })
}

/// Creates a configuration from `count` NUL-terminated parameter names (at
/// most 8, letters, digits, `_-.`, 1-32 bytes) and the longest id accepted
/// (1-512). Stores the handle in `*out`.
///
/// # Safety
/// `names` must point at `count` valid C strings; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn sticky_config_new(
    names: *const *const c_char,
    count: usize,
    max_id_len: usize,
    out: *mut *mut StickyConfig,
) -> c_int {
    guarded(|| {
        if out.is_null() || names.is_null() || count == 0 || count > MAX_NAMES {
            return STICKY_EINVAL;
        }
        if max_id_len == 0 || max_id_len > MAX_ID_LEN_LIMIT {
            return STICKY_EINVAL;
        }
        let mut list = Names::new();
        for i in 0..count {
            // SAFETY: names has count entries, each NULL or a C string.
            let p = unsafe { *names.add(i) };
            if p.is_null() {
                return STICKY_EINVAL;
            }
            // SAFETY: as above.
            let name = unsafe { CStr::from_ptr(p) }.to_bytes();
            if !list.push(name) {
                return STICKY_EINVAL;
            }
        }
        let config = Box::new(StickyConfig {
            names: list,
            max_id_len,
            patterns: Patterns::new(&list, max_id_len),
        });
        // SAFETY: out is writable.
        unsafe { *out = Box::into_raw(config) };
        STICKY_OK
    })
}

/// Releases a configuration. Scanners made from it must be freed first.
///
/// # Safety
/// `config` must be NULL or a handle from `sticky_config_new`, not used after.
#[no_mangle]
pub unsafe extern "C" fn sticky_config_free(config: *mut StickyConfig) {
    if !config.is_null() {
        // SAFETY: per the contract.
        guard((), || drop(unsafe { Box::from_raw(config) }));
    }
}

/// `sticky_extract` source: a request target `/path;NAME=ID?NAME=ID`, the
/// query first, then path parameters.
pub const STICKY_SOURCE_TARGET: c_int = 0;
/// `sticky_extract` source: an `application/x-www-form-urlencoded` body.
pub const STICKY_SOURCE_FORM: c_int = 1;
/// `sticky_extract` source: a `Cookie` header value.
pub const STICKY_SOURCE_COOKIE: c_int = 2;

/// Finds the first id in `input` read as `source` (a `STICKY_SOURCE_*`). On `STICKY_OK`, `*id` and
/// `*id_len` describe the id inside `input`.
///
/// # Safety
/// `config` must be a live handle; `input` must point at `len` bytes; `id`
/// and `id_len` must be writable.
#[no_mangle]
pub unsafe extern "C" fn sticky_extract(
    config: *const StickyConfig,
    source: c_int,
    input: *const u8,
    len: usize,
    id: *mut *const u8,
    id_len: *mut usize,
) -> c_int {
    guarded(|| {
        // SAFETY: per the contract.
        let (Some(c), Some(input)) = (unsafe { config.as_ref() }, unsafe { slice(input, len) })
        else {
            return STICKY_EINVAL;
        };
        if id.is_null() || id_len.is_null() {
            return STICKY_EINVAL;
        }
        // The id is recorded as an offset into `input`.
        let mut at: Option<(usize, usize)> = None;
        let base = input.as_ptr() as usize;
        let mut record = |v: &[u8]| {
            at = Some((v.as_ptr() as usize - base, v.len()));
            true
        };
        match source {
            STICKY_SOURCE_TARGET => {
                let (path, query) = split_target(input);
                if !query_ids(query, &c.names, c.max_id_len, &mut record) {
                    path_param_ids(path, &c.names, c.max_id_len, &mut record);
                }
            }
            STICKY_SOURCE_FORM => {
                query_ids(input, &c.names, c.max_id_len, &mut record);
            }
            STICKY_SOURCE_COOKIE => {
                cookie_ids(input, &c.names, c.max_id_len, &mut record);
            }
            _ => return STICKY_EINVAL,
        }
        match at {
            Some((off, n)) => {
                // SAFETY: id and id_len are writable; off..off+n lies inside input.
                unsafe {
                    *id = input.as_ptr().add(off);
                    *id_len = n;
                }
                STICKY_OK
            }
            None => STICKY_NOT_FOUND,
        }
    })
}

/// Creates a scanner for one response body from the site `host` (the
/// request's Host, without port), in `STICKY_MODE_HTML` or `STICKY_MODE_TEXT`.
///
/// # Safety
/// `config` must outlive the scanner; `host` must point at `host_len` bytes;
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn sticky_scanner_new(
    config: *const StickyConfig,
    host: *const u8,
    host_len: usize,
    mode: c_int,
    out: *mut *mut StickyScanner,
) -> c_int {
    guarded(|| {
        // SAFETY: per the contract.
        let Some(host) = (unsafe { slice(host, host_len) }) else {
            return STICKY_EINVAL;
        };
        let mode = match mode {
            STICKY_MODE_HTML => Mode::Html,
            STICKY_MODE_TEXT => Mode::Text,
            _ => return STICKY_EINVAL,
        };
        if config.is_null() || out.is_null() {
            return STICKY_EINVAL;
        }
        let s = Box::new(StickyScanner {
            config,
            host: host.to_vec(),
            scanner: Box::new(Scanner::new(mode)),
        });
        // SAFETY: out is writable.
        unsafe { *out = Box::into_raw(s) };
        STICKY_OK
    })
}

/// Feeds the next chunk of the body; `found` is called for each id completed
/// by it, before this returns, except an id equal to the one reported just
/// before (a page repeats its session id in every link). Chunks may be
/// split anywhere.
///
/// # Safety
/// `scanner` must be a live handle; `chunk` must point at `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sticky_scanner_feed(
    scanner: *mut StickyScanner,
    chunk: *const u8,
    len: usize,
    found: StickyFoundFn,
    user: *mut c_void,
) -> c_int {
    // SAFETY: per the contract.
    let Some(chunk) = (unsafe { slice(chunk, len) }) else {
        return STICKY_EINVAL;
    };
    // SAFETY: per the contract.
    unsafe {
        with_scanner(scanner, found, user, |s, p, host, report| {
            // The C callback cannot stop the scan: every id is reported.
            let _ = s.feed(p, host, chunk, &mut &mut *report);
        })
    }
}

/// Ends the body: reports an id cut off by the end, if any. The scanner can
/// then be fed a new body.
///
/// # Safety
/// `scanner` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn sticky_scanner_finish(
    scanner: *mut StickyScanner,
    found: StickyFoundFn,
    user: *mut c_void,
) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        with_scanner(scanner, found, user, |s, p, host, report| {
            let _ = s.finish(p, host, &mut &mut *report);
        })
    }
}

/// Runs one scanner step with its patterns and host, reporting ids to `found`.
///
/// # Safety
/// `scanner` must be NULL or a live handle whose config is alive.
unsafe fn with_scanner(
    scanner: *mut StickyScanner,
    found: StickyFoundFn,
    user: *mut c_void,
    step: impl FnOnce(&mut Scanner, &Patterns, &[u8], &mut dyn FnMut(&[u8]) -> Flow),
) -> c_int {
    guarded(|| {
        // SAFETY: per the contract.
        let Some(s) = (unsafe { scanner.as_mut() }) else {
            return STICKY_EINVAL;
        };
        // SAFETY: the config outlives the scanner.
        let Some(c) = (unsafe { s.config.as_ref() }) else {
            return STICKY_EINVAL;
        };
        let mut report = |id: &[u8]| {
            if let Some(f) = found {
                // SAFETY: the caller's callback, with a valid id slice.
                unsafe { f(user, id.as_ptr(), id.len()) }
            }
            Flow::Continue(())
        };
        step(&mut s.scanner, &c.patterns, &s.host, &mut report);
        STICKY_OK
    })
}

/// Releases a scanner.
///
/// # Safety
/// `scanner` must be NULL or a handle from `sticky_scanner_new`, not used after.
#[no_mangle]
pub unsafe extern "C" fn sticky_scanner_free(scanner: *mut StickyScanner) {
    if !scanner.is_null() {
        // SAFETY: per the contract.
        guard((), || drop(unsafe { Box::from_raw(scanner) }));
    }
}

/// Offset of the first slot: the header, rounded up to a cache line.
const SLOTS_AT: usize = HEADER_SIZE.next_multiple_of(64);

/// Bytes of memory a store needs to hold `sessions` sessions (rounded up to
/// whole buckets of 8), or 0 when that many cannot be addressed.
#[no_mangle]
pub extern "C" fn sticky_store_size(sessions: usize) -> usize {
    guard(0, || {
        let slots = sessions.div_ceil(WAYS).max(1).checked_mul(WAYS);
        slots.and_then(store_bytes).unwrap_or(0)
    })
}

/// Bytes from the start of a store to the end of its `nslots`-th slot.
fn store_bytes(nslots: usize) -> Option<usize> {
    nslots.checked_mul(size_of::<Slot>())?.checked_add(SLOTS_AT)
}

/// # Safety
/// `mem` must point at `len` bytes that stay mapped while the store is used.
unsafe fn layout(mem: *mut c_void, len: usize) -> Option<(*const Header, *const Slot, usize)> {
    if mem.is_null() || (mem as usize) % align_of::<Header>() != 0 || len < store_bytes(WAYS)? {
        return None;
    }
    let nslots = (len - SLOTS_AT) / size_of::<Slot>() / WAYS * WAYS;
    // SAFETY: SLOTS_AT < len, inside the caller's memory.
    let slots = unsafe { (mem as *mut u8).add(SLOTS_AT) } as *const Slot;
    Some((mem as *const Header, slots, nslots))
}

/// Formats `len` bytes at `mem` (8-byte aligned, e.g. the caller's shared
/// memory) as an empty store whose ids are hashed with the 16-byte `secret`
/// (random per store; keep it to reopen a saved store). Existing contents are
/// erased. `lock`/`unlock` guard writers (see `StickyLockFn`); they may be
/// NULL only when a single thread of a single process ever writes.
///
/// # Safety
/// `mem` must point at `len` writable bytes outliving the handle; `secret`
/// must point at 2 integers; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_format(
    mem: *mut c_void,
    len: usize,
    secret: *const u64,
    lock: StickyLockFn,
    unlock: StickyLockFn,
    lock_user: *mut c_void,
    out: *mut *mut StickyStore,
) -> c_int {
    guarded(|| {
        if secret.is_null() || out.is_null() {
            return STICKY_EINVAL;
        }
        // SAFETY: per the contract.
        let Some((header, slots, nslots)) = (unsafe { layout(mem, len) }) else {
            return STICKY_ENOMEM;
        };
        // SAFETY: the memory is the caller's and writable; all-zero bytes are
        // a valid Header and valid Slots (atomics of zero).
        let (header, slots_ref) = unsafe {
            core::ptr::write_bytes(mem as *mut u8, 0, SLOTS_AT + nslots * size_of::<Slot>());
            (&*header, core::slice::from_raw_parts(slots, nslots))
        };
        // SAFETY: secret points at 2 integers.
        let key = unsafe { [*secret, *secret.add(1)] };
        if Table::format(header, slots_ref, key).is_none() {
            return STICKY_ENOMEM;
        }
        let store = Box::new(StickyStore {
            header,
            slots,
            nslots,
            lock,
            unlock,
            lock_user,
        });
        // SAFETY: out is writable.
        unsafe { *out = Box::into_raw(store) };
        STICKY_OK
    })
}

/// Opens a store formatted earlier at `mem` (by this or another process).
///
/// # Safety
/// As for `sticky_store_format`, except that `mem` is not modified.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_attach(
    mem: *mut c_void,
    len: usize,
    lock: StickyLockFn,
    unlock: StickyLockFn,
    lock_user: *mut c_void,
    out: *mut *mut StickyStore,
) -> c_int {
    guarded(|| {
        if out.is_null() {
            return STICKY_EINVAL;
        }
        // SAFETY: per the contract.
        let Some((header, slots, _)) = (unsafe { layout(mem, len) }) else {
            return STICKY_ENOMEM;
        };
        // SAFETY: header lies in the caller's memory.
        let nslots = unsafe { (*header).slot_count() };
        // A header from elsewhere may claim any size: it must fit in `len`.
        if store_bytes(nslots).is_none_or(|need| need > len) {
            return STICKY_ENOMEM;
        }
        let store = StickyStore {
            header,
            slots,
            nslots,
            lock,
            unlock,
            lock_user,
        };
        if store.table().is_none() {
            return STICKY_ENOMEM;
        }
        // SAFETY: out is writable.
        unsafe { *out = Box::into_raw(Box::new(store)) };
        STICKY_OK
    })
}

impl StickyStore {
    fn table(&self) -> Option<Table<'_>> {
        // SAFETY: the pointers describe the caller's memory, valid while the handle is.
        let (h, s) = unsafe {
            (
                &*self.header,
                core::slice::from_raw_parts(self.slots, self.nslots),
            )
        };
        Table::attach(h, s)
    }
}

/// Releases a store handle; the memory itself is the caller's.
///
/// # Safety
/// `store` must be NULL or a handle from this API, not used after.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_free(store: *mut StickyStore) {
    if !store.is_null() {
        // SAFETY: per the contract.
        guard((), || drop(unsafe { Box::from_raw(store) }));
    }
}

/// Sessions the store can hold.
///
/// # Safety
/// `store` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_capacity(store: *const StickyStore) -> usize {
    // SAFETY: per the contract.
    guard(0, || unsafe { store.as_ref() }.map_or(0, |s| s.nslots))
}

/// Looks up the session `id` at time `now` (seconds): `STICKY_OK` with its
/// server in `*server` (and its idle time reset), `STICKY_NOT_FOUND`, or
/// `STICKY_EXPIRED`. `max_age` 0 means no limit. Lock-free.
///
/// # Safety
/// `store` must be a live handle; `id` must point at `id_len` bytes; `server` writable.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_lookup(
    store: *const StickyStore,
    id: *const u8,
    id_len: usize,
    now: u32,
    idle: u32,
    max_age: u32,
    server: *mut u32,
) -> c_int {
    if server.is_null() {
        return STICKY_EINVAL;
    }
    let run = |_: &StickyStore, t: &Table<'_>, id: &[u8]| {
        let exp = Expiry { idle, max_age };
        let found = t.lookup(t.key(id), now, exp);
        t.count(found);
        match found {
            Lookup::Hit(srv) => {
                // SAFETY: server is writable.
                unsafe { *server = srv };
                STICKY_OK
            }
            Lookup::Miss => STICKY_NOT_FOUND,
            Lookup::Expired => STICKY_EXPIRED,
        }
    };
    // SAFETY: per the contract.
    unsafe { with_session(store, id, id_len, run) }
}

/// Records that session `id` lives on `server`. A live session on another
/// server is kept there unless `rebind` is non-zero. Returns a
/// `STICKY_LEARNED_*` outcome, or a negative error.
///
/// # Safety
/// `store` must be a live handle; `id` must point at `id_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_learn(
    store: *const StickyStore,
    id: *const u8,
    id_len: usize,
    server: u32,
    now: u32,
    idle: u32,
    max_age: u32,
    rebind: c_int,
) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        with_session(store, id, id_len, |s, t, id| {
            let bind = if rebind != 0 {
                Bind::Rebind
            } else {
                Bind::Keep
            };
            match t.learn(
                &CallerLock(s),
                t.key(id),
                server,
                now,
                Expiry { idle, max_age },
                bind,
            ) {
                Learned::New => STICKY_LEARNED_NEW,
                Learned::Refreshed => STICKY_LEARNED_REFRESHED,
                Learned::Kept => STICKY_LEARNED_KEPT,
                Learned::Rebound => STICKY_LEARNED_REBOUND,
            }
        })
    }
}

/// Validates a store handle and a non-empty id, then runs `f` on the
/// attached table; never unwinds into C.
///
/// # Safety
/// `store` must be NULL or a live handle; `id` must point at `id_len` bytes.
unsafe fn with_session(
    store: *const StickyStore,
    id: *const u8,
    id_len: usize,
    f: impl FnOnce(&StickyStore, &Table<'_>, &[u8]) -> c_int,
) -> c_int {
    guarded(|| {
        // SAFETY: per the contract.
        let (Some(s), Some(id)) = (unsafe { store.as_ref() }, unsafe { slice(id, id_len) }) else {
            return STICKY_EINVAL;
        };
        let Some(t) = s.table() else {
            return STICKY_ENOMEM;
        };
        if id.is_empty() {
            return STICKY_EINVAL;
        }
        f(s, &t, id)
    })
}

/// Clears every session that has expired at `now`, returning how many (or
/// a negative error). Not needed for correctness (expired sessions read as
/// absent and are reused first); for callers that want the memory tidy.
///
/// # Safety
/// `store` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_expire(
    store: *const StickyStore,
    now: u32,
    idle: u32,
    max_age: u32,
) -> c_int {
    guarded(|| {
        // SAFETY: per the contract.
        let Some(s) = (unsafe { store.as_ref() }) else {
            return STICKY_EINVAL;
        };
        let Some(t) = s.table() else {
            return STICKY_ENOMEM;
        };
        let n = t.purge(&CallerLock(s), now, Expiry { idle, max_age });
        c_int::try_from(n).unwrap_or(c_int::MAX)
    })
}

/// Live sessions at `now`.
///
/// # Safety
/// `store` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn sticky_store_live(
    store: *const StickyStore,
    now: u32,
    idle: u32,
    max_age: u32,
) -> usize {
    guard(0, || {
        // SAFETY: per the contract.
        let Some(t) = (unsafe { store.as_ref() }).and_then(|s| s.table()) else {
            return 0;
        };
        let mut n = 0;
        t.for_each_live(now, Expiry { idle, max_age }, |_| n += 1);
        n
    })
}

/// The identity nginx gives a server: a stable hash of its address text
/// (`10.0.0.1:8080`), so C programs can share tables with the module's view.
///
/// # Safety
/// `name` must point at `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sticky_server_id(name: *const u8, len: usize) -> u32 {
    // SAFETY: per the contract.
    guard(0, || {
        unsafe { slice(name, len) }.map_or(0, store::server_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_size_never_wraps() {
        assert_eq!(sticky_store_size(8), SLOTS_AT + 8 * size_of::<Slot>());
        assert_eq!(sticky_store_size(usize::MAX / 4), 0, "too many to address");
        assert_eq!(sticky_store_size(usize::MAX), 0);
    }

    #[test]
    fn attach_refuses_a_header_claiming_more_slots_than_the_memory_holds() {
        let mut mem = vec![0u64; sticky_store_size(64) / 8];
        let len = mem.len() * 8;
        let secret = [1u64, 2];
        let mut store = core::ptr::null_mut();
        // SAFETY: mem is 8-byte aligned, len bytes long, and outlives the handles.
        unsafe {
            let p = mem.as_mut_ptr().cast();
            let rc = sticky_store_format(
                p,
                len,
                secret.as_ptr(),
                None,
                None,
                core::ptr::null_mut(),
                &mut store,
            );
            assert_eq!(rc, STICKY_OK);
            sticky_store_free(store);
            for buckets in [1u64 << 60, u64::MAX, (len as u64) / 128 + 1] {
                // The bucket count lives after the magic, version and ways words.
                mem[2] = buckets;
                let mut attached = core::ptr::null_mut();
                let rc =
                    sticky_store_attach(p, len, None, None, core::ptr::null_mut(), &mut attached);
                assert_eq!(rc, STICKY_ENOMEM, "{buckets} buckets in {len} bytes");
                assert!(attached.is_null());
            }
        }
    }
}
