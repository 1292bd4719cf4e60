//! Configuration of one `upstream {}` block, and where nginx keeps it.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering};

use ngx::ffi::{
    ngx_http_upstream_init_peer_pt, ngx_http_upstream_srv_conf_t, ngx_module_t, ngx_shm_zone_t,
    ngx_str_t, ngx_uint_t,
};

use super::request::Source;
use super::zone::ZoneCtx;
use crate::config::{self, Learn, Types};
use crate::id::Names;
use crate::scanner::Patterns;
use crate::store::Expiry;

/// Configuration of one `upstream {}` block.
pub struct SrvConf {
    /// A `sticky_session` directive is present.
    pub enabled: bool,
    /// `init_upstream` ran, i.e. no later balancer directive replaced ours.
    pub initialized: bool,
    /// Id parameter names.
    pub names: Names,
    /// Longest id accepted.
    pub max_id_len: usize,
    /// Idle timeout and absolute lifetime.
    pub expiry: Expiry,
    /// `fallback=off`: 502 rather than another server for a known session.
    pub strict: bool,
    /// The session table's zone.
    pub zone: *mut ngx_shm_zone_t,
    /// Body scanner needles, built once here.
    pub patterns: Option<Patterns>,
    /// Where a request's id is looked for, in order.
    pub lookup: Vec<Source>,
    /// `create=` variables (indexes), evaluated when a response header arrives.
    pub create: Vec<ngx_uint_t>,
    /// Content types whose bodies are scanned.
    pub types: Types,
    /// How many of a response's ids are learned.
    pub learn: Learn,
    /// Body bytes scanned per response, after inflating (`max_scan=`).
    pub max_scan: usize,
    /// Ids one response records with `learn=all` (`max_learn=`).
    pub max_learn: u32,
    /// Each configured peer's address and identity, primary and backup
    /// lists (see `balancer::peer_ids`).
    pub peer_ids: [Vec<(usize, u32)>; 2],
    /// Round robin's per-request init (or that of the balancer configured
    /// before us), which ours wraps.
    pub original_init_peer: ngx_http_upstream_init_peer_pt,
    /// `least_conn`, `random`, `hash` or `ip_hash` written before
    /// `sticky_session`: its init, which places the requests without a live
    /// session (round robin's when `None`).
    pub inner_init_upstream: ngx::ffi::ngx_http_upstream_init_pt,
    /// Where the directive is, for errors reported after parsing.
    pub file: ngx_str_t,
    /// Line of the directive.
    pub line: ngx_uint_t,
    /// `route=`: where ids carry their server's route.
    pub route: Option<crate::route::RouteSpec>,
    /// Routes named on `server` lines (`route=NAME`, nginx 1.29.6+), with
    /// their server's identity: they win over learned ones.
    pub explicit_routes: Vec<(Vec<u8>, u32)>,
    /// `balance=sessions`: new sessions go where the fewest live ones are.
    pub balance_sessions: bool,
    /// `sticky_session_drain` addresses, each with where it was written.
    pub drain: Vec<(Vec<u8>, ngx_str_t, ngx_uint_t)>,
}

impl Default for SrvConf {
    fn default() -> Self {
        SrvConf {
            enabled: false,
            initialized: false,
            names: Names::new(),
            max_id_len: 0,
            expiry: Expiry::idle(0),
            strict: false,
            zone: null_mut(),
            patterns: None,
            lookup: Vec::new(),
            create: Vec::new(),
            types: Types::default(),
            learn: Learn::First,
            max_scan: config::DEFAULT_MAX_SCAN,
            max_learn: config::DEFAULT_MAX_LEARN,
            peer_ids: [Vec::new(), Vec::new()],
            original_init_peer: None,
            inner_init_upstream: None,
            file: ngx_str_t::empty(),
            line: 0,
            drain: Vec::new(),
            balance_sessions: false,
            route: None,
            explicit_routes: Vec::new(),
        }
    }
}

impl SrvConf {
    /// The zone's per-configuration context.
    pub fn zone_ctx(&self) -> Option<&ZoneCtx> {
        if self.zone.is_null() {
            return None;
        }
        // SAFETY: zone was returned by ngx_shared_memory_add and its data set
        // to a pool-allocated ZoneCtx in the directive handler.
        unsafe { ((*self.zone).data as *const ZoneCtx).as_ref() }
    }
}

/// This module's index in `ctx`/`srv_conf` arrays, recorded from the module
/// when a configuration is read (nginx numbers modules per configuration,
/// before any callback of ours runs; workers inherit it with the fork).
static CTX_INDEX: AtomicUsize = AtomicUsize::new(0);

/// Records the module's index (preconfiguration).
pub fn set_ctx_index(module: &ngx_module_t) {
    CTX_INDEX.store(module.ctx_index, Ordering::Relaxed);
}

/// Index of this module's slots in `ctx`/`srv_conf` arrays.
pub fn ctx_index() -> usize {
    CTX_INDEX.load(Ordering::Relaxed)
}

/// Our configuration of an upstream, if the upstream has server confs.
///
/// # Safety
/// `us` must be a valid upstream configuration of the current cycle.
pub unsafe fn srv_conf<'a>(us: *const ngx_http_upstream_srv_conf_t) -> Option<&'a mut SrvConf> {
    // SAFETY: srv_conf is NULL for implicit upstreams, else an array with one
    // slot per HTTP module, ours holding a SrvConf from create_srv_conf.
    unsafe {
        let confs = (*us).srv_conf;
        if confs.is_null() {
            return None;
        }
        ((*confs.add(ctx_index())) as *mut SrvConf).as_mut()
    }
}
