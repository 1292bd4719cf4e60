//! Balancer callbacks: round robin, except that a request whose id the table
//! knows goes to the server that issued the id, if that server is usable.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::{addr_of_mut, null_mut};

use ngx::ffi::{
    ngx_conf_t, ngx_http_request_t, ngx_http_upstream_get_round_robin_peer,
    ngx_http_upstream_init_round_robin, ngx_http_upstream_rr_peer_data_t,
    ngx_http_upstream_rr_peer_t, ngx_http_upstream_rr_peers_t, ngx_http_upstream_srv_conf_t,
    ngx_int_t, ngx_palloc, ngx_peer_connection_t, ngx_rwlock_unlock, ngx_rwlock_wlock, ngx_str_t,
    NGX_BUSY, NGX_ERROR, NGX_LOG_EMERG, NGX_OK,
};

use super::conf::{ctx_index, srv_conf, SrvConf};
use super::context::{PoolCarry, RequestCtx};
use super::placement::next_turn;
use super::request::candidates;
use super::util::{bytes, guard, now};
use crate::placement::{least_loaded, Counts};
use crate::scanner::{Between, Scanner};
use crate::session::{Candidate, Choice, Learning, Status};
use crate::store::{server_id, Lookup, Table};
use crate::sync::Kind;

/// Per-request balancer data, one pool allocation per upstream request.
/// Round robin's data comes first: round robin's init fills it in place, and
/// its callbacks (free, SSL session reuse) can be handed this pointer. A
/// balancer written before us that keeps data of its own (`random`, `hash`,
/// `ip_hash`: round robin's data first, then theirs) leaves `rrp` unused:
/// `inner` points at theirs, and its callbacks are handed that.
#[repr(C)]
struct PeerData {
    rrp: ngx_http_upstream_rr_peer_data_t,
    ctx: RequestCtx,
    /// The inner balancer's data (`&rrp`, or its own).
    inner: *mut c_void,
    /// The inner balancer's `get` (round robin's, `least_conn`'s, ...).
    inner_get: ngx::ffi::ngx_event_get_peer_pt,
    /// Its `free` and SSL session callbacks, when `inner` is its own.
    inner_free: ngx::ffi::ngx_event_free_peer_pt,
    inner_set_session: ngx::ffi::ngx_event_set_peer_session_pt,
    inner_save_session: ngx::ffi::ngx_event_save_peer_session_pt,
}

impl PeerData {
    /// Round robin's data of this request, wherever the inner balancer keeps it.
    fn rrp(&mut self) -> &mut ngx_http_upstream_rr_peer_data_t {
        // SAFETY: inner is &self.rrp or a live struct that starts with
        // round robin's data (checked in init_peer).
        unsafe { &mut *(self.inner as *mut ngx_http_upstream_rr_peer_data_t) }
    }
}

// ngx_palloc aligns to NGX_ALIGNMENT (sizeof(unsigned long)): enough for
// PeerData and the pool-allocated scanner.
const _: () =
    assert!(core::mem::align_of::<PeerData>() <= core::mem::size_of::<core::ffi::c_ulong>());
const _: () = assert!(
    core::mem::align_of::<Scanner<PoolCarry>>() <= core::mem::size_of::<core::ffi::c_ulong>()
);

/// `init_upstream`: round robin's, then ours for every request.
pub unsafe extern "C" fn init_upstream(
    cf: *mut ngx_conf_t,
    us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx passes a valid cf and upstream whose SrvConf we enabled.
        unsafe {
            let Some(scf) = srv_conf(us) else {
                return NGX_ERROR as ngx_int_t;
            };
            let init = scf
                .inner_init_upstream
                .unwrap_or(ngx_http_upstream_init_round_robin);
            if init(cf, us) != NGX_OK as ngx_int_t {
                return NGX_ERROR as ngx_int_t;
            }
            if let Some(clash) = id_clash((*us).peer.data as *const ngx_http_upstream_rr_peers_t) {
                ngx::ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "sticky_session: servers \"{}\" and \"{}\" have the same identity hash in upstream \"{}\"",
                    clash.0,
                    clash.1,
                    String::from_utf8_lossy(bytes(&(*us).host))
                );
                return NGX_ERROR as ngx_int_t;
            }
            let peers = (*us).peer.data as *mut ngx_http_upstream_rr_peers_t;
            for (addr, file, line) in &scf.drain {
                if !drain(peers, addr) {
                    ngx::ngx_conf_log_error!(
                        NGX_LOG_EMERG,
                        cf,
                        "\"sticky_session_drain {}\" in {}:{} names no server of upstream \"{}\" \
                         (write the address as the status page shows it, e.g. 10.0.0.3:8080)",
                        String::from_utf8_lossy(addr),
                        String::from_utf8_lossy(bytes(file)),
                        line,
                        String::from_utf8_lossy(bytes(&(*us).host))
                    );
                    return NGX_ERROR as ngx_int_t;
                }
            }
            scf.peer_ids = peer_ids((*us).peer.data as *const ngx_http_upstream_rr_peers_t);
            scf.explicit_routes = explicit_routes(peers);
            scf.original_init_peer = (*us).peer.init;
            (*us).peer.init = Some(init_peer);
            scf.initialized = true;
            NGX_OK as ngx_int_t
        }
    })
}

extern "C" {
    fn ngx_http_sticky_session_peer_route(
        peer: *mut ngx_http_upstream_rr_peer_t,
        route: *mut ngx_str_t,
    ) -> ngx::ffi::ngx_uint_t;
}

/// The routes `server ... route=NAME` lines name (nginx 1.29.6+; read by C,
/// which knows whether the field exists), with their servers' identities.
///
/// # Safety
/// `peers` must be round robin's peers of this configuration.
unsafe fn explicit_routes(peers: *mut ngx_http_upstream_rr_peers_t) -> Vec<(Vec<u8>, u32)> {
    let mut routes = Vec::new();
    let mut list = peers;
    // SAFETY: lists and peers are NULL-terminated, in the configuration's pool.
    unsafe {
        while !list.is_null() {
            let mut peer = (*list).peer;
            while !peer.is_null() {
                let mut route = ngx_str_t::empty();
                if ngx_http_sticky_session_peer_route(peer, &mut route) != 0 && route.len > 0 {
                    routes.push((bytes(&route).to_vec(), server_id(bytes(&(*peer).name))));
                }
                peer = (*peer).next;
            }
            list = (*list).next;
        }
    }
    routes
}

/// `peer->down` of a draining server: nginx 1.29.6+'s own value for `drain`
/// (`NGX_HTTP_UPSTREAM_DRAINING`), which round robin skips for new requests
/// on every version while sessions keep using it.
pub const DRAINING: ngx::ffi::ngx_uint_t = 8;

/// Marks the peers whose address is `addr` (primary and backup lists) as
/// draining; answers whether there was one.
///
/// # Safety
/// `peers` must be round robin's peers of this configuration, not shared yet.
unsafe fn drain(peers: *mut ngx_http_upstream_rr_peers_t, addr: &[u8]) -> bool {
    let mut found = false;
    let mut list = peers;
    // SAFETY: lists and peers are NULL-terminated, still in the configuration's pool.
    unsafe {
        while !list.is_null() {
            let mut peer = (*list).peer;
            while !peer.is_null() {
                if bytes(&(*peer).name) == addr {
                    if (*peer).down == 0 {
                        (*peer).down = DRAINING as _;
                    }
                    found = true;
                }
                peer = (*peer).next;
            }
            list = (*list).next;
        }
    }
    found
}

/// Each configured peer's address and identity, per list (primary, backup)
/// in list order, so that choosing a session's server does not hash every
/// peer's name per request. With an upstream `zone` the peers are copied to
/// shared memory later and the addresses no longer match: names are hashed.
///
/// # Safety
/// `peers` must be round robin's peers of this configuration.
unsafe fn peer_ids(peers: *const ngx_http_upstream_rr_peers_t) -> [Vec<(usize, u32)>; 2] {
    let mut ids = [Vec::new(), Vec::new()];
    // SAFETY: primary and backup lists are NULL-terminated and live for the cycle.
    unsafe {
        let mut list = peers;
        for cache in &mut ids {
            if list.is_null() {
                break;
            }
            let mut peer = (*list).peer;
            while !peer.is_null() {
                cache.push((peer as usize, server_id(bytes(&(*peer).name))));
                peer = (*peer).next;
            }
            list = (*list).next;
        }
    }
    ids
}

/// Two different server names with the same 32-bit identity, if any.
///
/// # Safety
/// `peers` must be round robin's peers of this configuration.
unsafe fn id_clash(peers: *const ngx_http_upstream_rr_peers_t) -> Option<(String, String)> {
    let mut seen: Vec<(u32, &[u8])> = Vec::new();
    let mut list = peers;
    // SAFETY: primary and backup lists are NULL-terminated and live for the cycle.
    unsafe {
        while !list.is_null() {
            let mut peer = (*list).peer;
            while !peer.is_null() {
                let name = bytes(&(*peer).name);
                let id = server_id(name);
                if let Some((_, other)) = seen.iter().find(|(i, n)| *i == id && *n != name) {
                    return Some((
                        String::from_utf8_lossy(other).into_owned(),
                        String::from_utf8_lossy(name).into_owned(),
                    ));
                }
                seen.push((id, name));
                peer = (*peer).next;
            }
            list = (*list).next;
        }
    }
    None
}

/// `init_peer`: round robin's per-request init, then the id lookup.
unsafe extern "C" fn init_peer(
    r: *mut ngx_http_request_t,
    us: *mut ngx_http_upstream_srv_conf_t,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx passes a live request with an upstream, and our upstream conf.
        unsafe {
            let Some(scf) = srv_conf(us) else {
                return NGX_ERROR as ngx_int_t;
            };
            // Round robin uses peer.data as its own when it is set.
            let pd = ngx_palloc((*r).pool, size_of::<PeerData>()) as *mut PeerData;
            if pd.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            let u = (*r).upstream;
            (*u).peer.data = pd as *mut c_void;
            let Some(original) = scf.original_init_peer else {
                return NGX_ERROR as ngx_int_t;
            };
            let rc = original(r, us);
            if rc != NGX_OK as ngx_int_t {
                return rc;
            }
            let inner = (*u).peer.data;
            (*pd).inner = inner;
            (*pd).inner_get = (*u).peer.get;
            (*pd).inner_free = None;
            (*pd).inner_set_session = None;
            (*pd).inner_save_session = None;
            let rrp = inner as *const ngx_http_upstream_rr_peer_data_t;
            if inner.is_null()
                || (*rrp).peers != (*us).peer.data as *mut ngx_http_upstream_rr_peers_t
            {
                // Not a balancer built on round robin's data: leave it alone.
                ngx::ngx_log_debug!(
                    (*(*r).connection).log,
                    "sticky_session: balancer before us keeps no round robin data, not sticky"
                );
                return NGX_OK as ngx_int_t;
            }
            if inner != pd as *mut c_void {
                // Its callbacks get its data back through ours.
                (*pd).inner_free = (*u).peer.free;
                (*pd).inner_set_session = (*u).peer.set_session;
                (*pd).inner_save_session = (*u).peer.save_session;
                (*u).peer.data = pd as *mut c_void;
                (*u).peer.free = Some(free_peer);
                (*u).peer.set_session = Some(set_session);
                (*u).peer.save_session = Some(save_session);
            }
            (*u).peer.get = Some(get_peer);

            // The request's context; a new upstream (internal redirect,
            // which clears r->ctx) gets a new one.
            let ctx = addr_of_mut!((*pd).ctx);
            ctx.write(RequestCtx {
                conf: scf,
                id: ngx_str_t::empty(),
                status: Status::None,
                learning: Learning::new(0, false, scf.max_learn),
                target: 0,
                served: None,
                scan: None,
                body_left: -1,
                scan_left: 0,
                scanner: null_mut(),
                inflater: null_mut(),
                took_memory: false,
                between: Between::START,
            });
            *(*r).ctx.add(ctx_index()) = ctx as *mut c_void;

            let Some(table) = scf.zone_ctx().and_then(|z| z.table()) else {
                return NGX_OK as ngx_int_t;
            };
            let ctx = &mut *ctx;
            let Some(chosen) = choose(r, scf, &table) else {
                return NGX_OK as ngx_int_t;
            };
            table.count(chosen.found);
            let routed = match (chosen.found, scf.route) {
                (Lookup::Miss | Lookup::Expired, Some(spec)) => {
                    spec.route_of(chosen.id).and_then(|route| {
                        let named = scf.explicit_routes.iter().find(|(r, _)| r == route);
                        named
                            .map(|&(_, server)| server)
                            .or_else(|| scf.zone_ctx()?.routes()?.lookup(route))
                    })
                }
                _ => None,
            };
            ctx.id = ngx_str_t {
                len: chosen.id.len(),
                data: chosen.id.as_ptr() as *mut u8,
            };
            let (status, target) = match routed {
                Some(server) => (Status::Route, Some(server)),
                None => chosen.status(),
            };
            ctx.status = status;
            ctx.target = target.unwrap_or(0);
            ctx.learning = Learning::new(chosen.key, status == Status::Hit, scf.max_learn);
            ngx::ngx_log_debug!(
                (*(*r).connection).log,
                "sticky_session: id lookup {} server {:08x}",
                ctx.status.as_str(),
                ctx.target
            );
            NGX_OK as ngx_int_t
        }
    })
}

/// The request's session among the ids it carries, in `lookup=` order
/// (see [`Choice`]).
///
/// # Safety
/// `r` must be a live request; the id returned lives as long as it.
unsafe fn choose<'r>(
    r: *mut ngx_http_request_t,
    scf: &SrvConf,
    table: &Table<'_>,
) -> Option<Candidate<'r>> {
    let now = now();
    let mut choice = Choice::default();
    // A hit that wrote the session's last use is news for other nginx.
    let mut touched = 0;
    let mut consider = |id: &'r [u8]| {
        choice.consider(id, |id| {
            let key = table.key(id);
            let (found, wrote) = table.lookup_touched(key, now, scf.expiry);
            if wrote {
                touched = key;
            }
            (key, found)
        })
    };
    for &source in &scf.lookup {
        // SAFETY: r is live, per the contract.
        if unsafe { candidates(r, source, &scf.names, scf.max_id_len, &mut consider) } {
            break;
        }
    }
    let chosen = choice.chosen();
    if touched != 0 && chosen.as_ref().is_some_and(|c| c.key == touched) {
        if let Some(zone) = scf.zone_ctx() {
            zone.publish(Kind::Keep, touched);
        }
    }
    chosen
}

/// `get`: the session's server if usable, otherwise round robin. Records
/// which server was chosen, for the learner.
unsafe extern "C" fn get_peer(pc: *mut ngx_peer_connection_t, data: *mut c_void) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: data is the PeerData installed by init_peer for this request.
        unsafe {
            let pd = &mut *(data as *mut PeerData);
            let ctx = &mut pd.ctx;
            if matches!(ctx.status, Status::Hit | Status::Route) {
                match select(
                    &mut *(pd.inner as *mut ngx_http_upstream_rr_peer_data_t),
                    pc,
                    ctx.target,
                    &(*ctx.conf).peer_ids,
                ) {
                    Pick::Chosen => {
                        ctx.served = Some(ctx.target);
                        ngx::ngx_log_debug!(
                            (*pc).log,
                            "sticky_session: sticky peer {:08x}",
                            ctx.target
                        );
                        return NGX_OK as ngx_int_t;
                    }
                    Pick::Unusable if (*ctx.conf).strict && ctx.status == Status::Hit => {
                        ngx::ngx_log_debug!(
                            (*pc).log,
                            "sticky_session: peer {:08x} unusable, fallback=off",
                            ctx.target
                        );
                        ctx.served = None;
                        // As round robin answers when no peer is left: the
                        // upstream's name, never a peer's that may be gone.
                        (*pc).name = (*pd.rrp().peers).name;
                        return NGX_BUSY as ngx_int_t;
                    }
                    // Removed from the upstream: fall back even when strict,
                    // the session's server will never return.
                    Pick::Unusable | Pick::Absent => {}
                }
            }
            if (*ctx.conf).balance_sessions {
                let counts = (*ctx.conf).zone_ctx().and_then(|z| z.counts());
                let rrp = &mut *(pd.inner as *mut ngx_http_upstream_rr_peer_data_t);
                if let Some(id) = counts.and_then(|c| place(rrp, pc, c, &(*ctx.conf).peer_ids)) {
                    ctx.served = Some(id);
                    ngx::ngx_log_debug!((*pc).log, "sticky_session: placed on {:08x}", id);
                    return NGX_OK as ngx_int_t;
                }
            }
            ngx::ngx_log_debug!(
                (*pc).log,
                "sticky_session: round robin ({})",
                ctx.status.as_str()
            );
            let rc = match pd.inner_get {
                Some(get) => get(pc, pd.inner),
                None => ngx_http_upstream_get_round_robin_peer(pc, pd.inner),
            };
            ctx.served = if rc == NGX_OK as ngx_int_t && !(*pc).name.is_null() {
                Some(server_id(bytes(&*(*pc).name)))
            } else {
                None
            };
            rc
        }
    })
}

/// `free` for an inner balancer with data of its own: hands it its data.
unsafe extern "C" fn free_peer(
    pc: *mut ngx_peer_connection_t,
    data: *mut c_void,
    state: ngx::ffi::ngx_uint_t,
) {
    guard((), || {
        // SAFETY: data is the PeerData init_peer installed; inner_free is
        // the inner balancer's own free for its data.
        unsafe {
            let pd = &*(data as *const PeerData);
            if let Some(free) = pd.inner_free {
                free(pc, pd.inner, state);
            }
        }
    })
}

/// SSL session reuse for an inner balancer with data of its own.
unsafe extern "C" fn set_session(pc: *mut ngx_peer_connection_t, data: *mut c_void) -> ngx_int_t {
    guard(NGX_OK as ngx_int_t, || {
        // SAFETY: as in free_peer.
        unsafe {
            let pd = &*(data as *const PeerData);
            match pd.inner_set_session {
                Some(f) => f(pc, pd.inner),
                None => NGX_OK as ngx_int_t,
            }
        }
    })
}

/// SSL session saving for an inner balancer with data of its own.
unsafe extern "C" fn save_session(pc: *mut ngx_peer_connection_t, data: *mut c_void) {
    guard((), || {
        // SAFETY: as in free_peer.
        unsafe {
            let pd = &*(data as *const PeerData);
            if let Some(f) = pd.inner_save_session {
                f(pc, pd.inner);
            }
        }
    })
}

const BITS: usize = usize::BITS as usize;

/// `balance=sessions`: makes the usable primary server with the fewest live
/// sessions per weight the request's peer; answers its identity, or `None`
/// to leave the choice to round robin (one server, none usable: backups;
/// a server whose count is not tracked).
///
/// # Safety
/// As for [`select`].
unsafe fn place(
    rrp: &mut ngx_http_upstream_rr_peer_data_t,
    pc: *mut ngx_peer_connection_t,
    counts: &Counts,
    ids: &[Vec<(usize, u32)>; 2],
) -> Option<u32> {
    // SAFETY: as in select: the peers list is locked while its peers are read.
    unsafe {
        let peers = rrp.peers;
        if (*peers).single() != 0 {
            return None;
        }
        let _locked = PeersLock::write(peers);
        #[cfg(ngx_peer_refs)]
        if !(*peers).config.is_null() && rrp.config != *(*peers).config {
            return None;
        }
        let mut candidates = Vec::new();
        let mut peer = (*peers).peer;
        let mut i = 0;
        while !peer.is_null() {
            if usable(rrp, &*peer, i) && (*peer).down == 0 {
                let id = match ids[0].get(i) {
                    Some(&(p, id)) if p == peer as usize => id,
                    _ => server_id(bytes(&(*peer).name)),
                };
                let held = counts.get(id)?;
                candidates.push((peer, i, id, held, (*peer).weight.max(1) as u32));
            }
            peer = (*peer).next;
            i += 1;
        }
        let loads: Vec<(u64, u32)> = candidates.iter().map(|c| (c.3, c.4)).collect();
        let (peer, i, id, _, _) = candidates[least_loaded(&loads, next_turn())?];
        match take(rrp, pc, peer, i) {
            Pick::Chosen => Some(id),
            Pick::Unusable | Pick::Absent => None,
        }
    }
}

/// What [`select`] found.
enum Pick {
    /// The session's server, now the request's peer.
    Chosen,
    /// The session's server exists but is down, failed, full, or tried.
    Unusable,
    /// No server with this identity in the upstream (removed, or a
    /// configuration whose peers changed).
    Absent,
}

/// Picks the peer whose identity is `target` if round robin would consider it
/// usable now, doing round robin's bookkeeping so its `free` stays balanced.
/// A session on a backup server keeps it only while every primary server is
/// unusable, as round robin itself would use backups; then it returns to the
/// primaries (and is rebound to the one that answers).
///
/// # Safety
/// `rrp` must be round robin's data of the current request and `pc` its peer connection.
unsafe fn select(
    rrp: &mut ngx_http_upstream_rr_peer_data_t,
    pc: *mut ngx_peer_connection_t,
    target: u32,
    ids: &[Vec<(usize, u32)>; 2],
) -> Pick {
    // rrp->peers and its peer lists are valid for this request; with a zone
    // they live in shared memory, guarded by each list's rwlock.
    // SAFETY: as above; we hold a list's rwlock while touching its peers, as round robin does.
    unsafe {
        let peers = rrp.peers;
        if (*peers).single() != 0 {
            // One server: round robin's own choice is the only one.
            return Pick::Absent;
        }
        {
            let _locked = PeersLock::write(peers);
            #[cfg(ngx_peer_refs)]
            if !(*peers).config.is_null() && rrp.config != *(*peers).config {
                return Pick::Absent;
            }
            if let Some((peer, i)) = find(peers, target, &ids[0]) {
                return take(rrp, pc, peer, i);
            }
        }
        let backup = (*peers).next;
        if backup.is_null() {
            return Pick::Absent;
        }
        {
            let _locked = PeersLock::write(peers);
            let mut peer = (*peers).peer;
            let mut i = 0;
            while !peer.is_null() {
                if usable(rrp, &*peer, i) {
                    return Pick::Absent;
                }
                peer = (*peer).next;
                i += 1;
            }
        }
        let _locked = PeersLock::write(backup);
        let Some((peer, i)) = find(backup, target, &ids[1]) else {
            return Pick::Absent;
        };
        // Every primary is unusable: move to the backups as round robin does.
        rrp.peers = backup;
        let words = (*backup).number.div_ceil(BITS);
        core::ptr::write_bytes(rrp.tried, 0, words);
        take(rrp, pc, peer, i)
    }
}

/// The peer of `list` whose identity is `target`, and its index. `ids` are
/// the list's cached identities by index, used when the address matches.
///
/// # Safety
/// `list` must be a live peer list, locked by the caller.
unsafe fn find(
    list: *mut ngx_http_upstream_rr_peers_t,
    target: u32,
    ids: &[(usize, u32)],
) -> Option<(*mut ngx_http_upstream_rr_peer_t, usize)> {
    // SAFETY: the list's peers are linked through `next` and NULL-terminated.
    unsafe {
        let mut peer = (*list).peer;
        let mut i = 0;
        while !peer.is_null() {
            let id = match ids.get(i) {
                Some(&(p, id)) if p == peer as usize => id,
                _ => server_id(bytes(&(*peer).name)),
            };
            if id == target {
                return Some((peer, i));
            }
            peer = (*peer).next;
            i += 1;
        }
    }
    None
}

/// Whether round robin would use peer `i` of the current list now.
///
/// # Safety
/// `rrp.tried` must cover index `i`; the peer's list must be locked.
unsafe fn usable(
    rrp: &ngx_http_upstream_rr_peer_data_t,
    p: &ngx_http_upstream_rr_peer_t,
    i: usize,
) -> bool {
    // SAFETY: tried has one bit per peer of the larger list.
    let tried = unsafe { *rrp.tried.add(i / BITS) } & (1usize << (i % BITS)) != 0;
    let now = ngx::ffi::ngx_time();
    // A draining server keeps the sessions it holds.
    let down = p.down != 0 && p.down as ngx::ffi::ngx_uint_t != DRAINING;
    !(tried
        || down
        || (p.max_fails != 0 && p.fails >= p.max_fails && now - p.checked <= p.fail_timeout)
        || (p.max_conns != 0 && p.conns >= p.max_conns))
}

/// Makes peer `i` of the current list the request's peer if it is usable,
/// with round robin's bookkeeping.
///
/// # Safety
/// As for [`usable`]; `peer` must be peer `i` of `rrp.peers`, locked by the caller.
unsafe fn take(
    rrp: &mut ngx_http_upstream_rr_peer_data_t,
    pc: *mut ngx_peer_connection_t,
    peer: *mut ngx_http_upstream_rr_peer_t,
    i: usize,
) -> Pick {
    // SAFETY: per the contract.
    unsafe {
        let p = &mut *peer;
        if !usable(rrp, p, i) {
            return Pick::Unusable;
        }
        rrp.current = peer;
        #[cfg(ngx_peer_refs)]
        {
            p.refs += 1;
        }
        *rrp.tried.add(i / BITS) |= 1usize << (i % BITS);
        let now = ngx::ffi::ngx_time();
        if now - p.checked > p.fail_timeout {
            p.checked = now;
        }
        (*pc).set_cached(0);
        (*pc).connection = core::ptr::null_mut();
        (*pc).sockaddr = p.sockaddr;
        (*pc).socklen = p.socklen;
        (*pc).name = &mut p.name;
        p.conns += 1;
        Pick::Chosen
    }
}

/// Round robin's peers write lock (a no-op without a zone), released on drop.
struct PeersLock(*mut ngx_http_upstream_rr_peers_t);

impl PeersLock {
    /// # Safety
    /// `peers` must be valid for the lifetime of the guard.
    unsafe fn write(peers: *mut ngx_http_upstream_rr_peers_t) -> Self {
        // SAFETY: with a zone, rwlock is the peers' lock in shared memory.
        unsafe {
            if !(*peers).shpool.is_null() {
                ngx_rwlock_wlock(&mut (*peers).rwlock);
            }
        }
        PeersLock(peers)
    }
}

impl Drop for PeersLock {
    fn drop(&mut self) {
        // SAFETY: taken in `write` on the same, still valid, peers.
        unsafe {
            if !(*self.0).shpool.is_null() {
                ngx_rwlock_unlock(&mut (*self.0).rwlock);
            }
        }
    }
}
