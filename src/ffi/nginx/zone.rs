//! The shared memory zone: nginx's slab pool, with the session table as its
//! one allocation, guarded by the pool's own mutex. A new zone starts from the
//! previous configuration's zone of the same name when it was resized, else
//! from its state file; state files are written by worker 0 periodically and
//! by the master at exit, and worker 0 merges a state file that another
//! process wrote over its own (the old nginx of a binary upgrade).

use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr::{addr_of_mut, null_mut};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use ngx::ffi::{
    ngx_add_timer, ngx_cycle_t, ngx_event_t, ngx_int_t, ngx_list_part_t, ngx_log_t, ngx_msec_t,
    ngx_pagesize, ngx_shm_zone_t, ngx_shmtx_lock, ngx_shmtx_t, ngx_shmtx_unlock, ngx_slab_calloc,
    ngx_slab_pool_t, ngx_str_t, NGX_ERROR, NGX_LOG_EMERG, NGX_LOG_NOTICE, NGX_LOG_WARN, NGX_OK,
};

use super::sync_zone::ZoneSync;
use super::util::{bytes, guard, now};
use crate::placement::Counts;
use crate::route::Routes;
use crate::state::{self, FileId, StateError};
use crate::store::{Bind, Expiry, Header, Learned, Slot, Table, WriteLock, HEADER_SIZE, WAYS};
use crate::sync::{Kind, SyncStats};

/// Slots start on a cache line so a bucket spans exactly two.
const SLOTS_OFFSET: usize = HEADER_SIZE.next_multiple_of(64);

/// Per-configuration view of one zone; `shm_zone->data` points at it.
#[repr(C)]
pub struct ZoneCtx {
    shpool: *mut ngx_slab_pool_t,
    header: *const Header,
    slots: *const Slot,
    nslots: usize,
    /// `state=` file (full path), empty for none.
    pub state: ngx_str_t,
    /// Longest lifetime any upstream using the zone gives a session: what a
    /// carry-over or a state file keeps.
    pub keep: Expiry,
    /// The zone, for its name in messages.
    pub shm_zone: *mut ngx_shm_zone_t,
    /// Seconds between periodic writes of the state file (the shortest
    /// `save_every=` of the upstreams sharing the zone).
    pub save_every: u32,
    /// When this process last started writing the state file (0: never).
    last_saved: core::cell::Cell<u32>,
    /// The state file as this process last wrote, read or merged it
    /// (zeroed: none): another one at the path is merged.
    known: core::cell::Cell<FileId>,
    /// This process has seen another one write the state file (the other
    /// nginx of a binary upgrade) and written its own at once in answer.
    answered: core::cell::Cell<bool>,
    /// `sync=` settings (NULL: no sync), in the configuration's pool.
    pub sync: *const ZoneSync,
    /// Sync counters, in the zone (NULL until the zone is initialised).
    sync_stats: *const SyncStats,
    /// Live sessions per server, in the zone (NULL if it could not be
    /// allocated), for `balance=sessions`.
    counts: *const Counts,
    /// Routes learned from ids (NULL: no upstream of the zone uses `route=`,
    /// or it could not be allocated).
    routes: *const Routes,
    /// Some upstream using the zone reads routes in ids.
    pub wants_routes: bool,
    /// Some upstream using the zone places new sessions by their counts:
    /// worker 0 recounts them periodically.
    pub balance: bool,
}

/// Counters of a zone whose shared copy could not be allocated.
static NO_SYNC_STATS: SyncStats = SyncStats::new();

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

    /// The routes learned from ids, when some upstream of the zone uses them.
    pub fn routes(&self) -> Option<&Routes> {
        // SAFETY: routes is NULL or a Routes allocated in the zone by init_zone.
        unsafe { self.routes.as_ref() }
    }

    /// Live sessions per server, when the zone has its counts.
    pub fn counts(&self) -> Option<&Counts> {
        // SAFETY: counts is NULL or a Counts allocated in the zone by init_zone.
        unsafe { self.counts.as_ref() }
    }

    /// The zone's sync counters.
    pub fn sync_stats(&self) -> &SyncStats {
        // SAFETY: sync_stats is NULL or a SyncStats allocated in the zone by
        // init_zone, mapped as long as the zone.
        unsafe { self.sync_stats.as_ref() }.unwrap_or(&NO_SYNC_STATS)
    }

    /// The sync part of the status report, if the zone syncs.
    pub fn sync_report(&self) -> Option<crate::status::SyncReport> {
        // SAFETY: sync is NULL or the configuration's ZoneSync.
        let zs = unsafe { self.sync.as_ref() }?;
        let s = self.sync_stats();
        let load = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        Some(crate::status::SyncReport {
            endpoint: zs.spec.to_string(),
            state: crate::sync::State::from_u64(load(&s.state)).as_str(),
            published: load(&s.published),
            applied: load(&s.applied),
            dropped: load(&s.dropped),
            resyncs: load(&s.resyncs),
            conflicts: load(&s.conflicts),
            failures: load(&s.failures),
            last_error: crate::sync::ErrorKind::from_u64(load(&s.last_error)).map(|e| e.as_str()),
            delay_ms: s
                .delay_quantile_ms(0.5)
                .zip(s.delay_quantile_ms(0.99))
                .map(|(a, b)| (a, b, load(&s.delay_max_us))),
        })
    }

    /// Queues session `key` for the other nginx, if the zone syncs.
    pub fn publish(&self, kind: Kind, key: u64) {
        // SAFETY: sync is NULL or the configuration's ZoneSync.
        if let Some(zs) = unsafe { self.sync.as_ref() } {
            zs.publish(self.sync_stats(), kind, key);
        }
    }

    /// The writers' lock: the slab pool mutex, which nginx's master releases
    /// if a worker dies holding it.
    pub fn lock(&self) -> ShmLock {
        // SAFETY: shpool is the zone's slab pool, valid while the zone is mapped.
        ShmLock(unsafe { &raw mut (*self.shpool).mutex })
    }

    /// The zone's name.
    pub fn name(&self) -> String {
        if self.shm_zone.is_null() {
            return String::new();
        }
        // SAFETY: shm_zone is the zone this context belongs to.
        String::from_utf8_lossy(unsafe { bytes(&(*self.shm_zone).shm.name) }).into_owned()
    }

    fn state_path(&self) -> Option<&Path> {
        // SAFETY: state was allocated in the cycle pool by the directive handler.
        let p = unsafe { bytes(&self.state) };
        (!p.is_empty()).then(|| Path::new(OsStr::from_bytes(p)))
    }

    /// Takes the state file at its path now as this zone's own: a zone
    /// that goes on from the running configuration's (a reload), whose
    /// worker 0 wrote that file, merges only what is written after.
    fn known_as_is(&self) {
        self.known
            .set(self.state_path().map_or(FileId::NONE, FileId::at));
    }

    /// Records `key` → `server`, warning (at most once a minute per zone)
    /// when the zone is full and a live session had to be evicted.
    pub fn learn(
        &self,
        table: &Table<'_>,
        log: *mut ngx_log_t,
        key: u64,
        server: u32,
        exp: Expiry,
        bind: Bind,
    ) -> Learned {
        let stats = table.stats();
        let evicted = stats.evicted.load(Ordering::Relaxed);
        let now = now();
        let outcome = table.learn(&self.lock(), key, server, now, exp, bind);
        match outcome {
            Learned::New => self.publish(Kind::Keep, key),
            Learned::Rebound => self.publish(Kind::Rebind, key),
            Learned::Refreshed | Learned::Kept => {}
        }
        if matches!(outcome, Learned::New | Learned::Rebound) {
            if let Some(c) = self.counts() {
                c.add(server);
            }
        }
        let after = stats.evicted.load(Ordering::Relaxed);
        if after != evicted && stats.evict_warning_due(now) && !log.is_null() {
            {
                ngx::ngx_log_error!(
                    NGX_LOG_WARN,
                    log,
                    "sticky_session: zone \"{}\" is full: the least recently used sessions are \
                     evicted ({} so far, capacity {}); consider a larger zone",
                    self.name(),
                    after,
                    table.capacity()
                );
            }
        }
        outcome
    }

    /// Writes the state file, if the zone has one, on this thread.
    pub fn save(&self, log: *mut ngx_log_t) {
        if let Some(job) = self.job(Work::Save) {
            let result = job.run();
            job.report(log, result);
        }
    }

    /// What writing (or merging) the state file takes, for a thread of its own.
    fn job(&self, work: Work) -> Option<StateJob> {
        let path = self.state_path()?;
        self.table()?;
        Some(StateJob {
            work,
            path: path.to_path_buf(),
            header: self.header as usize,
            slots: self.slots as usize,
            nslots: self.nslots,
            mutex: self.lock().0 as usize,
            keep: self.keep,
            now: now(),
        })
    }
}

/// What a [`StateJob`] does with the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// Write the table to it.
    Save,
    /// Take in what another process wrote there ([`state::merge`]).
    Merge,
}

/// What a [`StateJob`] did.
enum Done {
    Saved(FileId),
    Merged(state::Merged),
}

/// One state file to write or merge: the table's place in shared memory
/// (mapped for the life of this process) and everything else owned, so that
/// a thread can walk the table, encode and fsync (or read, decode and
/// restore) while the event loop goes on. The only nginx function it calls
/// is the zone's mutex, which a merge takes for each session it restores.
struct StateJob {
    work: Work,
    path: std::path::PathBuf,
    header: usize,
    slots: usize,
    nslots: usize,
    /// The zone's `ngx_shmtx_t`.
    mutex: usize,
    keep: Expiry,
    now: u32,
}

impl StateJob {
    fn run(&self) -> Result<Done, StateError> {
        // The zone stays mapped until this process exits, which joins the
        // saving thread first (exit_process); readers of the table take no lock.
        // SAFETY: as above.
        let table = unsafe {
            Table::attach(
                &*(self.header as *const Header),
                core::slice::from_raw_parts(self.slots as *const Slot, self.nslots),
            )
        };
        let Some(table) = table else {
            return Err(StateError::Io(std::io::Error::other(
                "the zone's table is gone",
            )));
        };
        match self.work {
            Work::Save => {
                let bytes = state::encode(&table, self.now, self.keep);
                state::write_atomic(&self.path, &bytes, std::process::id())
                    .map(Done::Saved)
                    .map_err(StateError::Io)
            }
            Work::Merge => {
                let lock = ShmLock(self.mutex as *mut ngx_shmtx_t);
                state::merge(&self.path, &table, &lock, self.now, self.keep).map(Done::Merged)
            }
        }
    }

    /// Logs what the job did and records the file it left, in the zone of
    /// the running configuration that has this state file. On the event
    /// loop's thread.
    fn report(&self, log: *mut ngx_log_t, result: Result<Done, StateError>) {
        let path = self.path.display();
        let file = match result {
            Ok(Done::Saved(id)) => {
                ngx::ngx_log_debug!(log, "sticky_session: saved \"{}\"", path);
                id
            }
            Ok(Done::Merged(m)) => {
                if m.restored > 0 {
                    ngx::ngx_log_error!(
                        NGX_LOG_NOTICE,
                        log,
                        "sticky_session: merged {} of {} sessions from \"{}\", which another \
                         process wrote (the other nginx of a binary upgrade?)",
                        m.restored,
                        m.total,
                        path
                    );
                } else {
                    ngx::ngx_log_debug!(log, "sticky_session: \"{}\" had nothing new", path);
                }
                m.id
            }
            Err(e) => {
                let what = match self.work {
                    Work::Save => "cannot write state file",
                    Work::Merge => "not merged: the state file another process wrote at",
                };
                ngx::ngx_log_error!(
                    NGX_LOG_WARN,
                    log,
                    "sticky_session: {} \"{}\": {}",
                    what,
                    path,
                    e
                );
                return;
            }
        };
        // SAFETY: the running cycle and its zones (the job may have been
        // made in a configuration since replaced: found again by its file).
        unsafe {
            for_each_zone_ctx(ngx::ffi::ngx_cycle, |_, zctx| {
                if zctx.state_path() == Some(self.path.as_path()) {
                    zctx.known.set(file);
                }
            });
        }
    }
}

/// The thread writing this process's state files, if one was started, with
/// the jobs it runs and their results.
type Saving = std::thread::JoinHandle<Vec<(StateJob, Result<Done, StateError>)>>;
static SAVING: std::sync::Mutex<Option<Saving>> = std::sync::Mutex::new(None);

/// Logs what the saving thread did, once it is done; `wait` joins it.
fn reap_saving(log: *mut ngx_log_t, wait: bool) -> bool {
    let Ok(mut saving) = SAVING.lock() else {
        return false;
    };
    match saving.take() {
        Some(h) if wait || h.is_finished() => {
            if let Ok(results) = h.join() {
                for (job, result) in results {
                    job.report(log, result);
                }
            }
            true
        }
        Some(h) => {
            *saving = Some(h);
            false
        }
        None => true,
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
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx passes its zone, whose data we set to a ZoneCtx in the
        // directive handler; `data` is the previous cycle's ZoneCtx or NULL.
        unsafe {
            let ctx = (*shm_zone).data as *mut ZoneCtx;
            let old = data as *const ZoneCtx;
            let shared_key = (*ctx).sync.as_ref().map(|zs| zs.secret);
            if !old.is_null() {
                (*ctx).shpool = (*old).shpool;
                (*ctx).header = (*old).header;
                (*ctx).slots = (*old).slots;
                (*ctx).nslots = (*old).nslots;
                (*ctx).sync_stats = (*old).sync_stats;
                (*ctx).counts = (*old).counts;
                (*ctx).routes = (*old).routes;
                (*ctx).known_as_is();
                if let (Some(key), Some(table)) = (shared_key, (*ctx).table()) {
                    if table.secret() != key {
                        table.rekey(&(*ctx).lock(), key);
                        ngx::ngx_log_error!(
                            NGX_LOG_NOTICE,
                            (*shm_zone).shm.log,
                            "sticky_session: zone \"{}\" now hashes ids with its sync_key: \
                             its sessions start over (and come back from Redis)",
                            (*ctx).name()
                        );
                    }
                }
                return NGX_OK as ngx_int_t;
            }
            let shpool = (*shm_zone).shm.addr as *mut ngx_slab_pool_t;
            (*ctx).shpool = shpool;
            if !(*shpool).data.is_null() {
                // Already formatted by this master (e.g. a zone shared by two upstreams).
                adopt(ctx, (*shpool).data as *const Header);
                (*ctx).known_as_is();
                return NGX_OK as ngx_int_t;
            }
            (*ctx).sync_stats = ngx_slab_calloc(shpool, size_of::<SyncStats>()) as *const SyncStats;
            // Zeroed memory is an empty Counts (atomics, all free).
            (*ctx).counts = ngx_slab_calloc(shpool, size_of::<Counts>()) as *const Counts;
            if (*ctx).wants_routes {
                // Zeroed memory is an empty Routes.
                (*ctx).routes = ngx_slab_calloc(shpool, size_of::<Routes>()) as *const Routes;
            }
            // Take every other free page: the table is the zone's main tenant.
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
                ngx::ngx_log_error!(
                    NGX_LOG_EMERG,
                    (*shm_zone).shm.log,
                    "sticky_session: zone \"{}\" is too small",
                    String::from_utf8_lossy(bytes(&(*shm_zone).shm.name))
                );
                return NGX_ERROR as ngx_int_t;
            }
            debug_assert_eq!(mem as usize % align_of::<Header>(), 0);
            let header = mem as *const Header;
            let slots = (mem as *mut u8).add(SLOTS_OFFSET) as *const Slot;
            let nslots = (size - SLOTS_OFFSET) / size_of::<Slot>() / WAYS * WAYS;
            let log = (*shm_zone).shm.log;
            let slots = core::slice::from_raw_parts(slots, nslots);
            let previous = previous_zone(shm_zone);
            let file = match (previous, (*ctx).state_path()) {
                (None, Some(path)) => Some((path, state::read(path))),
                _ => None,
            };
            // What was read is known; a carry-over from a resized zone holds
            // what the file does, or more.
            match &file {
                Some((_, Ok((_, id)))) => (*ctx).known.set(*id),
                _ => (*ctx).known_as_is(),
            }
            let decoded = match &file {
                Some((path, Ok((b, _)))) => match state::decode(b) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        state_ignored(log, path, &e);
                        None
                    }
                },
                Some((path, Err(e))) => {
                    state_ignored(log, path, e);
                    None
                }
                None => None,
            };
            let secret = match (shared_key, previous.and_then(|p| p.table()), &decoded) {
                (Some(key), _, _) => key,
                (None, Some(old), _) => old.secret(),
                (None, None, Some(d)) => d.secret,
                (None, None, None) => random_secret(),
            };
            // Sessions hashed with another key can never be found again.
            let previous = previous.filter(|p| p.table().is_some_and(|t| t.secret() == secret));
            let decoded = match decoded {
                Some(d) if d.secret != secret => {
                    if let Some((path, _)) = &file {
                        ngx::ngx_log_error!(
                            NGX_LOG_NOTICE,
                            log,
                            "sticky_session: state file \"{}\" was written with another hash \
                             key (sync_key added or changed): not restored, Redis has the sessions",
                            path.display()
                        );
                    }
                    None
                }
                d => d,
            };
            let Some(table) = Table::format(&*header, slots, secret) else {
                return NGX_ERROR as ngx_int_t;
            };
            (*shpool).data = mem;
            adopt(ctx, header);
            let lock = (*ctx).lock();
            let now = now();
            let keep = (*ctx).keep;
            if let Some(old) = previous.and_then(|p| p.table()) {
                let (mut seen, mut kept) = (0usize, 0usize);
                old.for_each_entry(now, keep, |w, v| {
                    seen += 1;
                    kept += usize::from(table.restore(&lock, w, v, now, keep));
                });
                let mut live = 0usize;
                table.for_each_live(now, keep, |_| live += 1);
                ngx::ngx_log_error!(
                    NGX_LOG_NOTICE,
                    log,
                    "sticky_session: zone \"{}\" resized to {} sessions, kept {} of {}",
                    (*ctx).name(),
                    table.capacity(),
                    live,
                    seen
                );
            } else if let (Some(d), Some((path, _))) = (&decoded, &file) {
                d.restore_into(&table, &lock, now, keep);
                let mut live = 0usize;
                table.for_each_live(now, keep, |_| live += 1);
                ngx::ngx_log_error!(
                    NGX_LOG_NOTICE,
                    log,
                    "sticky_session: restored {} of {} sessions from \"{}\"",
                    live,
                    d.len(),
                    path.display()
                );
            }
            NGX_OK as ngx_int_t
        }
    })
}

fn state_ignored(log: *mut ngx_log_t, path: &Path, e: &StateError) {
    match e {
        StateError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            ngx::ngx_log_error!(
                NGX_LOG_NOTICE,
                log,
                "sticky_session: no state file \"{}\" yet, starting empty",
                path.display()
            );
        }
        _ => {
            ngx::ngx_log_error!(
                NGX_LOG_WARN,
                log,
                "sticky_session: state file \"{}\" ignored, starting empty: {}",
                path.display(),
                e
            );
        }
    }
}

/// The zone of the same name in the running configuration, when this one
/// replaces it with another size (nginx unmaps the old one only after every
/// new zone is initialised).
///
/// # Safety
/// `shm_zone` must be the zone being initialised, during configuration.
unsafe fn previous_zone<'a>(shm_zone: *mut ngx_shm_zone_t) -> Option<&'a ZoneCtx> {
    // SAFETY: ngx_cycle is the running (old) cycle while a new one is built;
    // its shared memory list holds zones that are still mapped.
    unsafe {
        let cycle = ngx::ffi::ngx_cycle;
        if cycle.is_null() {
            return None;
        }
        let name = bytes(&(*shm_zone).shm.name);
        let mut found = None;
        for_each_zone(cycle, |z| {
            if (*z).tag == (*shm_zone).tag
                && (*z).shm.addr != (*shm_zone).shm.addr
                && bytes(&(*z).shm.name) == name
            {
                found = ((*z).data as *const ZoneCtx)
                    .as_ref()
                    .filter(|c| !c.header.is_null());
            }
        });
        found
    }
}

/// Calls `f` for each shared memory zone of `cycle`.
///
/// # Safety
/// `cycle` must be a live cycle (or nginx's zeroed initial one).
pub unsafe fn for_each_zone(cycle: *const ngx_cycle_t, mut f: impl FnMut(*mut ngx_shm_zone_t)) {
    // SAFETY: shared_memory is an ngx_list_t of ngx_shm_zone_t, possibly never initialised.
    unsafe {
        let mut part: *const ngx_list_part_t = &(*cycle).shared_memory.part;
        while !part.is_null() {
            let elts = (*part).elts as *mut ngx_shm_zone_t;
            if elts.is_null() {
                break;
            }
            for i in 0..(*part).nelts {
                f(elts.add(i));
            }
            part = (*part).next;
        }
    }
}

/// Calls `f` for each zone of ours in `cycle` that has its context.
///
/// # Safety
/// As for [`for_each_zone`].
pub unsafe fn for_each_zone_ctx(
    cycle: *const ngx_cycle_t,
    mut f: impl FnMut(*mut ngx_shm_zone_t, &ZoneCtx),
) {
    // SAFETY: zones whose init is ours hold a ZoneCtx (or NULL) as data.
    unsafe {
        for_each_zone(cycle, |z| {
            let ours = (*z).init.is_some_and(|i| {
                core::ptr::fn_addr_eq(i, init_zone as unsafe extern "C" fn(_, _) -> _)
            });
            if ours {
                if let Some(zctx) = ((*z).data as *const ZoneCtx).as_ref() {
                    f(z, zctx);
                }
            }
        })
    }
}

/// Worker 0's timer that writes the state files.
static mut SAVE_EVENT: core::mem::MaybeUninit<ngx_event_t> = core::mem::MaybeUninit::zeroed();

/// Writes the state file of each zone of ours in `cycle` that has one.
///
/// # Safety
/// `cycle` must be live.
pub unsafe fn save_all(cycle: *mut ngx_cycle_t) {
    // SAFETY: the cycle's zones.
    unsafe {
        for_each_zone_ctx(cycle, |_, zctx| {
            if zctx.state.len > 0 {
                zctx.save((*cycle).log);
            }
        });
    }
}

/// How often the save timer looks at the state files (0: no zone has
/// one): each second, to merge within a second what another process wrote
/// (one `stat` per file), and to write those whose `save_every=` is due.
///
/// # Safety
/// `cycle` must be live.
unsafe fn tick(cycle: *mut ngx_cycle_t) -> ngx_msec_t {
    let mut any = false;
    // SAFETY: per the contract.
    unsafe { for_each_zone_ctx(cycle, |_, zctx| any |= zctx.state.len > 0) };
    if any {
        1000
    } else {
        0
    }
}

/// A worker that exits waits for its saving thread (the table it reads is
/// unmapped with the process) and logs its results. A worker 0 that has
/// answered another nginx using its state files (a binary upgrade under
/// way) writes them once more: after `WINCH` the other nginx then merges
/// what this one learned since, instead of waiting for this master's exit.
///
/// # Safety
/// `cycle` must be the process's live cycle.
pub unsafe fn stop_saving(cycle: *mut ngx_cycle_t) {
    // SAFETY: the cycle and its zones are valid while it is.
    unsafe {
        reap_saving((*cycle).log, true);
        for_each_zone_ctx(cycle, |_, zctx| {
            if zctx.answered.get() {
                zctx.save((*cycle).log);
            }
        });
    }
}

/// Arms this process's timer that writes the state files, if any zone has one.
///
/// # Safety
/// `cycle` must be the process's live cycle; called once, from init_process.
pub unsafe fn save_periodically(cycle: *mut ngx_cycle_t) {
    // SAFETY: as in save_all; SAVE_EVENT is this process's own, set up once.
    unsafe {
        if tick(cycle) != 0 {
            let ev = (*addr_of_mut!(SAVE_EVENT)).as_mut_ptr();
            (*ev).handler = Some(save_timer);
            (*ev).log = (*cycle).log;
            (*ev).data = cycle as *mut c_void;
            (*ev).set_cancelable(1);
            ngx_add_timer(ev, tick(cycle));
        }
    }
}

/// Makes the calling (saving) thread yield to the event loop it was started
/// from: the lowest priority (nice 19, per thread on Linux), and free to run
/// on any CPU — a thread inherits its worker's `worker_cpu_affinity`, and on
/// the worker's pinned core it competed with the worker's requests (`make
/// bench`, a 64 MB zone saved every second: the client's 99.9th percentile
/// wait 3.4–3.6 ms without this, 1.4–2.1 ms with it). Best effort: a call
/// that fails leaves the thread as it was.
fn in_background() {
    // SAFETY: plain system calls on this thread (tid) with a fully
    // initialised CPU set; nothing else is touched.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        let mut all: libc::cpu_set_t = core::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut all);
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &all);
    }
}

/// Every tick, a state file that another process replaced is merged and
/// those that are due are written, by a thread, so the event loop only
/// collects the jobs (a 64 MB zone takes ~100 ms to walk, encode and
/// fsync). A job still running skips this round.
unsafe extern "C" fn save_timer(ev: *mut ngx_event_t) {
    guard((), || {
        // SAFETY: ev is SAVE_EVENT, armed by save_periodically in this process.
        unsafe {
            let cycle = ngx::ffi::ngx_cycle;
            if reap_saving((*cycle).log, false) {
                let (mut jobs, now) = (Vec::new(), now());
                for_each_zone_ctx(cycle, |_, zctx| {
                    let Some(path) = zctx.state_path() else {
                        return;
                    };
                    // Merged first, so that a save in the same round keeps it.
                    let file = FileId::at(path);
                    if file.replaces(zctx.known.get()) {
                        // Tried once: a file that cannot be merged is not
                        // read again every second.
                        zctx.known.set(file);
                        jobs.extend(zctx.job(Work::Merge));
                        if !zctx.answered.get() {
                            // Another nginx uses the file (the new one of a
                            // binary upgrade, a second after it started):
                            // it gets this one's sessions now, not at the
                            // next save_every= or when this one stops. Once:
                            // two nginx then merge each other's saves.
                            zctx.answered.set(true);
                            zctx.last_saved.set(0);
                        }
                    }
                    if state::save_due(zctx.last_saved.get(), zctx.save_every, now) {
                        zctx.last_saved.set(now);
                        jobs.extend(zctx.job(Work::Save));
                    }
                });
                if !jobs.is_empty() {
                    let spawned = std::thread::Builder::new()
                        .name("sticky-save".into())
                        .spawn(move || {
                            in_background();
                            jobs.into_iter()
                                .map(|j| {
                                    let r = j.run();
                                    (j, r)
                                })
                                .collect()
                        });
                    match (spawned, SAVING.lock()) {
                        (Ok(h), Ok(mut saving)) => *saving = Some(h),
                        (Err(e), _) => {
                            ngx::ngx_log_error!(
                                NGX_LOG_WARN,
                                (*cycle).log,
                                "sticky_session: cannot start the state saving thread: {}",
                                e
                            );
                        }
                        _ => {}
                    }
                }
            }
            if ngx::ffi::ngx_exiting == 0 && ngx::ffi::ngx_quit == 0 && ngx::ffi::ngx_terminate == 0
            {
                ngx_add_timer(ev, tick(cycle));
            }
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
