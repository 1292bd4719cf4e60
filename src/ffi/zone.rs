//! The shared memory zone: nginx's slab pool, with the session table as its
//! one allocation, guarded by the pool's own mutex.

use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr::null_mut;

use ngx::ffi::{
    ngx_int_t, ngx_log_error_core, ngx_pagesize, ngx_shm_zone_t, ngx_shmtx_lock, ngx_shmtx_t,
    ngx_shmtx_unlock, ngx_slab_calloc, ngx_slab_pool_t, NGX_ERROR, NGX_LOG_EMERG, NGX_OK,
};

use crate::store::{Header, Slot, Table, WriteLock, HEADER_SIZE, WAYS};

/// Slots start on a cache line so a bucket spans exactly two.
const SLOTS_OFFSET: usize = HEADER_SIZE.next_multiple_of(64);

/// Per-configuration view of one zone; `shm_zone->data` points at it.
#[repr(C)]
pub struct ZoneCtx {
    shpool: *mut ngx_slab_pool_t,
    header: *const Header,
    slots: *const Slot,
    nslots: usize,
}

impl ZoneCtx {
    /// The table, once the zone is initialised.
    pub fn table(&self) -> Option<Table<'_>> {
        if self.header.is_null() {
            return None;
        }
        // header and slots were set by `init_zone` to a formatted table of
        // `nslots` slots inside the mapped zone, which outlives the
        // configuration this context belongs to.
        // SAFETY: as above; slots are atomics, so shared references across processes are sound.
        let (header, slots) = unsafe {
            (
                &*self.header,
                core::slice::from_raw_parts(self.slots, self.nslots),
            )
        };
        Table::attach(header, slots)
    }

    /// The writers' lock: the slab pool mutex, which nginx's master releases
    /// if a worker dies holding it.
    pub fn lock(&self) -> ShmLock {
        // SAFETY: shpool is the zone's slab pool, valid while the zone is mapped.
        ShmLock(unsafe { &raw mut (*self.shpool).mutex })
    }
}

/// [`WriteLock`] over nginx's `ngx_shmtx_t`.
pub struct ShmLock(*mut ngx_shmtx_t);

impl WriteLock for ShmLock {
    fn lock(&self) {
        // SAFETY: the mutex lives in the zone's slab pool header.
        unsafe { ngx_shmtx_lock(self.0) }
    }
    fn unlock(&self) {
        // SAFETY: as above; only called by the holder (store::Held).
        unsafe { ngx_shmtx_unlock(self.0) }
    }
}

/// `shm_zone->init`: format a new zone, or adopt the table of the previous
/// configuration's zone on reload (same name and size).
pub unsafe extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    super::guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx passes its zone, whose data we set to a ZoneCtx in the
        // directive handler; `data` is the previous cycle's ZoneCtx or NULL.
        unsafe {
            let ctx = (*shm_zone).data as *mut ZoneCtx;
            let old = data as *const ZoneCtx;
            if !old.is_null() {
                (*ctx).shpool = (*old).shpool;
                (*ctx).header = (*old).header;
                (*ctx).slots = (*old).slots;
                (*ctx).nslots = (*old).nslots;
                return NGX_OK as ngx_int_t;
            }
            let shpool = (*shm_zone).shm.addr as *mut ngx_slab_pool_t;
            (*ctx).shpool = shpool;
            if !(*shpool).data.is_null() {
                // Already formatted by this master (e.g. a zone shared by two upstreams).
                adopt(ctx, (*shpool).data as *const Header);
                return NGX_OK as ngx_int_t;
            }
            // Take every free page: the table is the zone's only tenant.
            let mut size = (*shpool).pfree * ngx_pagesize;
            let mut mem = null_mut();
            while size > SLOTS_OFFSET + WAYS * size_of::<Slot>() {
                mem = ngx_slab_calloc(shpool, size);
                if !mem.is_null() {
                    break;
                }
                size -= ngx_pagesize;
            }
            if mem.is_null() {
                ngx_log_error_core(
                    NGX_LOG_EMERG as _,
                    (*shm_zone).shm.log,
                    0,
                    c"sticky_session: zone \"%V\" is too small".as_ptr(),
                    &raw const (*shm_zone).shm.name,
                );
                return NGX_ERROR as ngx_int_t;
            }
            debug_assert_eq!(mem as usize % align_of::<Header>(), 0);
            let header = mem as *const Header;
            let slots = (mem as *mut u8).add(SLOTS_OFFSET) as *const Slot;
            let nslots = (size - SLOTS_OFFSET) / size_of::<Slot>() / WAYS * WAYS;
            let table = Table::format(
                &*header,
                core::slice::from_raw_parts(slots, nslots),
                random_secret(),
            );
            if table.is_none() {
                return NGX_ERROR as ngx_int_t;
            }
            (*shpool).data = mem;
            adopt(ctx, header);
            NGX_OK as ngx_int_t
        }
    })
}

/// Points `ctx` at the formatted table starting at `header`.
///
/// # Safety
/// `ctx` must be valid and `header` the start of a table made by `init_zone`.
unsafe fn adopt(ctx: *mut ZoneCtx, header: *const Header) {
    // SAFETY: per the contract; the slot count is what format() recorded.
    unsafe {
        (*ctx).header = header;
        (*ctx).slots = (header as *const u8).add(SLOTS_OFFSET) as *const Slot;
        (*ctx).nslots = (*header).slot_count();
    }
}

/// A random hash key, so ids hash differently in every zone.
fn random_secret() -> [u64; 2] {
    let mut buf = [0u8; 16];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // No entropy source: fall back to time and pid, still per-zone.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        buf[..8].copy_from_slice(&t.to_le_bytes());
        buf[8..].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
    }
    let (a, b) = buf.split_at(8);
    [
        u64::from_le_bytes(a.try_into().unwrap_or_default()),
        u64::from_le_bytes(b.try_into().unwrap_or_default()),
    ]
}
