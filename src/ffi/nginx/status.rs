//! `sticky_session_status;`: a location handler answering each zone's
//! counters and live sessions per server, as JSON or (`?format=prometheus`)
//! in the Prometheus text format.

use core::ffi::{c_char, c_void};
use std::collections::HashMap;

use ngx::ffi::{
    ngx_alloc_chain_link, ngx_command_t, ngx_conf_t, ngx_create_temp_buf, ngx_http_conf_ctx_t,
    ngx_http_core_loc_conf_t, ngx_http_core_module, ngx_http_discard_request_body,
    ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header,
    ngx_http_upstream_main_conf_t, ngx_http_upstream_module, ngx_http_upstream_rr_peers_t,
    ngx_http_upstream_srv_conf_t, ngx_int_t, ngx_rwlock_rlock, ngx_rwlock_unlock, NGX_ERROR,
    NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED, NGX_OK,
};

use super::conf::srv_conf;
use super::util::{array, bytes, guard, header_only, now};
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
            let zones = collect(r);
            let prometheus = bytes(&(*r).args)
                .split(|&c| c == b'&')
                .any(|a| a == b"format=prometheus");
            let (body, ctype): (String, &'static [u8]) = if prometheus {
                (render_prometheus(&zones), b"text/plain; version=0.0.4")
            } else {
                (render_json(&zones), b"application/json")
            };
            send(r, body.as_bytes(), ctype)
        }
    })
}

/// One report per zone used by a `sticky_session` upstream, in configuration order.
///
/// # Safety
/// `r` must be a live request.
unsafe fn collect(r: *mut ngx_http_request_t) -> Vec<ZoneReport> {
    let mut reports: Vec<(*const ZoneCtx, ZoneReport, HashMap<u32, u64>)> = Vec::new();
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
            let at = match reports.iter().position(|(z, _, _)| core::ptr::eq(*z, zone)) {
                Some(i) => i,
                None => {
                    let s = table.stats();
                    let load = |c: &core::sync::atomic::AtomicU64| {
                        c.load(core::sync::atomic::Ordering::Relaxed)
                    };
                    let mut per_server = HashMap::new();
                    let mut entries = 0;
                    table.for_each_live(now(), zone.keep, |server| {
                        entries += 1;
                        *per_server.entry(server).or_insert(0) += 1;
                    });
                    reports.push((
                        zone,
                        ZoneReport {
                            name: zone.name(),
                            capacity: table.capacity() as u64,
                            entries,
                            hits: load(&s.hits),
                            misses: load(&s.misses),
                            expired: load(&s.expired),
                            learned: load(&s.learned),
                            rebound: load(&s.rebound),
                            evicted: load(&s.evicted),
                            unscanned: load(&s.unscanned),
                            scan_limited: load(&s.scan_limited),
                            upstreams: Vec::new(),
                        },
                        per_server,
                    ));
                    reports.len() - 1
                }
            };
            let (_, report, per_server) = &mut reports[at];
            let servers = server_names((*us).peer.data as *mut ngx_http_upstream_rr_peers_t)
                .into_iter()
                .map(|name| {
                    let n = per_server
                        .get(&server_id(name.as_bytes()))
                        .copied()
                        .unwrap_or(0);
                    (name, n)
                })
                .collect();
            report.upstreams.push(UpstreamReport {
                name: String::from_utf8_lossy(bytes(&(*us).host)).into_owned(),
                servers,
            });
        }
    }
    reports.into_iter().map(|(_, r, _)| r).collect()
}

/// Addresses of the primary and backup servers of round robin's peers.
///
/// # Safety
/// `peers` must be NULL or round robin's peers of this cycle.
unsafe fn server_names(peers: *mut ngx_http_upstream_rr_peers_t) -> Vec<String> {
    let mut names = Vec::new();
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
    names
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
