//! `sticky_session_status;`: a location handler answering each zone's
//! counters and live sessions per server, as JSON or (`?format=prometheus`)
//! in the Prometheus text format. Counting the live sessions walks the
//! tables; the walk goes a slice per turn of the event loop, so a status
//! request never holds other requests up, however large the zones.

use core::ffi::{c_char, c_void};
use std::collections::HashMap;

use ngx::ffi::{
    ngx_alloc_chain_link, ngx_command_t, ngx_conf_t, ngx_create_temp_buf, ngx_http_conf_ctx_t,
    ngx_http_core_loc_conf_t, ngx_http_core_module, ngx_http_discard_request_body,
    ngx_http_finalize_request, ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header,
    ngx_http_upstream_main_conf_t, ngx_http_upstream_module, ngx_http_upstream_rr_peers_t,
    ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_pool_cleanup_add, ngx_rwlock_rlock,
    ngx_rwlock_unlock, NGX_DONE, NGX_ERROR, NGX_HTTP_GET, NGX_HTTP_HEAD,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED, NGX_OK,
};

use super::conf::srv_conf;
use super::util::{array, bytes, guard, header_only, hold, now, post};
use super::zone::ZoneCtx;
use crate::status::{render_json, render_prometheus, UpstreamReport, ZoneReport};
use crate::store::server_id;

/// The directive: makes this location answer with the status report.
pub unsafe extern "C" fn directive(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guard(ngx::core::NGX_CONF_ERROR as *mut c_char, || {
        // SAFETY: called inside a location with the HTTP configuration context.
        unsafe {
            let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
            let clcf = *(*ctx).loc_conf.add(ngx_http_core_module.ctx_index)
                as *mut ngx_http_core_loc_conf_t;
            (*clcf).handler = Some(handler);
        }
        core::ptr::null_mut()
    })
}

unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t, || {
        // SAFETY: r is the request nginx hands its content handler.
        unsafe {
            let method = (*r).method as u32;
            if method & (NGX_HTTP_GET | NGX_HTTP_HEAD) == 0 {
                return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
            }
            let rc = ngx_http_discard_request_body(r);
            if rc != NGX_OK as ngx_int_t {
                return rc;
            }
            let prometheus = bytes(&(*r).args)
                .split(|&c| c == b'&')
                .any(|a| a == b"format=prometheus");
            let cln = ngx_pool_cleanup_add((*r).pool, 0);
            if cln.is_null() {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            }
            let walk = Box::into_raw(Box::new(Walk {
                r,
                event: core::mem::zeroed(),
                prometheus,
                now: now(),
                zones: zones(r)
                    .into_iter()
                    .map(|z| (z, 0, HashMap::new()))
                    .collect(),
                zone: 0,
                at: 0,
            }));
            (*cln).handler = Some(drop_walk);
            (*cln).data = walk.cast();
            let ev = &raw mut (*walk).event;
            (*ev).handler = Some(walk_step);
            (*ev).data = walk.cast();
            (*ev).log = (*(*r).connection).log;
            hold(r);
            post(ev);
            NGX_DONE as ngx_int_t
        }
    })
}

/// Slots counted per turn of the event loop: well under a millisecond.
const SLICE: usize = 1 << 16;

/// A status request being answered.
struct Walk {
    r: *mut ngx_http_request_t,
    event: ngx::ffi::ngx_event_t,
    prometheus: bool,
    now: u32,
    /// Each zone, with its live sessions and their count per server so far.
    zones: Vec<(*const ZoneCtx, u64, HashMap<u32, u64>)>,
    /// The zone and the slot the walk is at.
    zone: usize,
    at: usize,
}

/// Pool cleanup: frees the walk with its request.
unsafe extern "C" fn drop_walk(data: *mut c_void) {
    guard((), || {
        // SAFETY: the Box::into_raw pointer registered with this cleanup, freed once.
        drop(unsafe { Box::from_raw(data as *mut Walk) });
    })
}

/// One slice of the walk; the last one sends the report and finalizes.
unsafe extern "C" fn walk_step(ev: *mut ngx::ffi::ngx_event_t) {
    // SAFETY: ev is the walk's own event; the walk lives in the held request.
    let w = unsafe { &mut *((*ev).data as *mut Walk) };
    let r = w.r;
    let rc = guard(Some(NGX_ERROR as ngx_int_t), || {
        let mut budget = SLICE;
        while let Some((zone, entries, per_server)) = w.zones.get_mut(w.zone) {
            // SAFETY: zones live as long as the cycle, which outlives the request.
            let zone = unsafe { &**zone };
            let (table, keep) = (zone.table(), zone.keep);
            let Some(table) = table else {
                (w.zone, w.at) = (w.zone + 1, 0);
                continue;
            };
            let from = w.at;
            w.at = table.for_each_live_from(from, budget, w.now, keep, |server| {
                *entries += 1;
                *per_server.entry(server).or_insert(0) += 1;
            });
            budget -= (w.at - from).min(budget);
            if w.at >= table.capacity() {
                (w.zone, w.at) = (w.zone + 1, 0);
            }
            if budget == 0 {
                return None;
            }
        }
        // SAFETY: r is held until finalized below.
        let reports = unsafe { collect(r, &w.zones) };
        let (body, ctype): (String, &'static [u8]) = if w.prometheus {
            (render_prometheus(&reports), b"text/plain; version=0.0.4")
        } else {
            (render_json(&reports), b"application/json")
        };
        // SAFETY: as above.
        Some(unsafe { send(r, body.as_bytes(), ctype) })
    });
    // SAFETY: the held request: either the next slice, or its end.
    unsafe {
        match rc {
            None => post(ev),
            Some(rc) => ngx_http_finalize_request(r, rc),
        }
    }
}

/// The zones used by `sticky_session` upstreams, each once, in configuration order.
///
/// # Safety
/// `r` must be a live request.
unsafe fn zones(r: *mut ngx_http_request_t) -> Vec<*const ZoneCtx> {
    let mut zones: Vec<*const ZoneCtx> = Vec::new();
    // SAFETY: the upstream main conf and its upstreams live as long as the cycle.
    unsafe {
        let umcf = *(*r).main_conf.add(ngx_http_upstream_module.ctx_index)
            as *const ngx_http_upstream_main_conf_t;
        for &us in array::<*mut ngx_http_upstream_srv_conf_t>(&(*umcf).upstreams) {
            let Some(zone) = srv_conf(us)
                .filter(|scf| scf.enabled)
                .and_then(|scf| scf.zone_ctx())
            else {
                continue;
            };
            if !zones.iter().any(|&z| core::ptr::eq(z, zone)) {
                zones.push(zone);
            }
        }
    }
    zones
}

/// One report per zone used by a `sticky_session` upstream, in configuration
/// order, from the counts `walked` found.
///
/// # Safety
/// `r` must be a live request.
unsafe fn collect(
    r: *mut ngx_http_request_t,
    walked: &[(*const ZoneCtx, u64, HashMap<u32, u64>)],
) -> Vec<ZoneReport> {
    let mut reports: Vec<(*const ZoneCtx, ZoneReport)> = Vec::new();
    // SAFETY: the upstream main conf and its upstreams live as long as the cycle.
    unsafe {
        let umcf = *(*r).main_conf.add(ngx_http_upstream_module.ctx_index)
            as *const ngx_http_upstream_main_conf_t;
        for &us in array::<*mut ngx_http_upstream_srv_conf_t>(&(*umcf).upstreams) {
            let Some(scf) = srv_conf(us) else { continue };
            if !scf.enabled {
                continue;
            }
            let Some(zone) = scf.zone_ctx() else { continue };
            let Some(table) = zone.table() else { continue };
            let Some((_, entries, per_server)) =
                walked.iter().find(|(z, _, _)| core::ptr::eq(*z, zone))
            else {
                continue;
            };
            let at = match reports.iter().position(|(z, _)| core::ptr::eq(*z, zone)) {
                Some(i) => i,
                None => {
                    let s = table.stats();
                    let load = |c: &core::sync::atomic::AtomicU64| {
                        c.load(core::sync::atomic::Ordering::Relaxed)
                    };
                    reports.push((
                        zone,
                        ZoneReport {
                            name: zone.name(),
                            capacity: table.capacity() as u64,
                            entries: *entries,
                            hits: load(&s.hits),
                            misses: load(&s.misses),
                            expired: load(&s.expired),
                            learned: load(&s.learned),
                            rebound: load(&s.rebound),
                            evicted: load(&s.evicted),
                            unscanned: load(&s.unscanned),
                            scan_limited: load(&s.scan_limited),
                            refreshes: load(&s.refreshes),
                            moved: load(&s.moved),
                            learn_limited: load(&s.learn_limited),
                            upstreams: Vec::new(),
                            sync: zone.sync_report(),
                            routes: Vec::new(),
                        },
                    ));
                    reports.len() - 1
                }
            };
            let (names, draining) =
                server_names((*us).peer.data as *mut ngx_http_upstream_rr_peers_t);
            let servers = names
                .into_iter()
                .map(|name| {
                    let n = per_server
                        .get(&server_id(name.as_bytes()))
                        .copied()
                        .unwrap_or(0);
                    (name, n)
                })
                .collect();
            reports[at].1.upstreams.push(UpstreamReport {
                name: String::from_utf8_lossy(bytes(&(*us).host)).into_owned(),
                servers,
                draining,
            });
        }
    }
    // Routes, named by the address of their server in the zone's upstreams.
    for (zone, report) in &mut reports {
        // SAFETY: zones live as long as the cycle.
        let Some(routes) = (unsafe { &**zone }).routes() else {
            continue;
        };
        let names: Vec<(u32, &String)> = report
            .upstreams
            .iter()
            .flat_map(|u| {
                u.servers
                    .iter()
                    .map(|(name, _)| (server_id(name.as_bytes()), name))
            })
            .collect();
        let mut list = Vec::new();
        routes.for_each(|route, server| {
            let name = server.map(|s| {
                names
                    .iter()
                    .find(|(id, _)| *id == s)
                    .map_or_else(|| format!("{s:08x}"), |(_, n)| (*n).clone())
            });
            list.push((String::from_utf8_lossy(route).into_owned(), name));
        });
        list.sort();
        report.routes = list;
    }
    reports.into_iter().map(|(_, r)| r).collect()
}

/// Addresses of the primary and backup servers of round robin's peers, and
/// of those draining.
///
/// # Safety
/// `peers` must be NULL or round robin's peers of this cycle.
unsafe fn server_names(peers: *mut ngx_http_upstream_rr_peers_t) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut draining = Vec::new();
    let mut list = peers;
    // SAFETY: lists and peers are NULL-terminated; with a zone, read under the rwlock.
    unsafe {
        while !list.is_null() {
            let shared = !(*list).shpool.is_null();
            if shared {
                ngx_rwlock_rlock(&mut (*list).rwlock);
            }
            let mut peer = (*list).peer;
            while !peer.is_null() {
                let name = String::from_utf8_lossy(bytes(&(*peer).name)).into_owned();
                if (*peer).down as ngx::ffi::ngx_uint_t == super::balancer::DRAINING
                    && !draining.contains(&name)
                {
                    draining.push(name.clone());
                }
                if !names.contains(&name) {
                    names.push(name);
                }
                peer = (*peer).next;
            }
            if shared {
                ngx_rwlock_unlock(&mut (*list).rwlock);
            }
            list = (*list).next;
        }
    }
    (names, draining)
}

/// Sends `body` as a complete 200 response.
///
/// # Safety
/// `r` must be a live request whose response has not started.
unsafe fn send(r: *mut ngx_http_request_t, body: &[u8], ctype: &'static [u8]) -> ngx_int_t {
    // SAFETY: buffers come from the request pool; the header strings are 'static.
    unsafe {
        (*r).headers_out.status = 200;
        (*r).headers_out.content_length_n = body.len() as i64;
        (*r).headers_out.content_type.len = ctype.len();
        (*r).headers_out.content_type.data = ctype.as_ptr() as *mut u8;
        (*r).headers_out.content_type_len = ctype.len();
        (*r).headers_out.content_type_lowcase = core::ptr::null_mut();
        let rc = ngx_http_send_header(r);
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || header_only(r) {
            return rc;
        }
        let b = ngx_create_temp_buf((*r).pool, body.len().max(1));
        let out = ngx_alloc_chain_link((*r).pool);
        if b.is_null() || out.is_null() {
            return NGX_ERROR as ngx_int_t;
        }
        core::ptr::copy_nonoverlapping(body.as_ptr(), (*b).last, body.len());
        (*b).last = (*b).last.add(body.len());
        (*b).set_last_buf(1);
        (*b).set_last_in_chain(1);
        (*out).buf = b;
        (*out).next = core::ptr::null_mut();
        ngx_http_output_filter(r, out)
    }
}
