//! The learner: response filters that record the ids a backend hands out,
//! each before the buffer carrying it is passed on.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::addr_of_mut;

use ngx::ffi::{
    ngx_chain_t, ngx_http_output_body_filter_pt, ngx_http_output_header_filter_pt,
    ngx_http_request_t, ngx_http_top_body_filter, ngx_http_top_header_filter, ngx_int_t,
    ngx_list_part_t, ngx_list_t, ngx_log_t, ngx_pool_cleanup_add, ngx_table_elt_t, NGX_ERROR,
};

use core::sync::atomic::{AtomicU64, Ordering};

use super::conf::{srv_conf, SrvConf};
use super::context::{request_ctx, PoolCarry, RequestCtx};
use super::request::variable_id;
use super::util::{bytes, guard, header_only, need_in_memory, release_in_memory};
use crate::inflate::Inflater;
use crate::response::{body_coding, header_ids, scan_mode, BodyCoding};
use crate::scanner::{Flow, Mode, Patterns, Recent, Scanner};
use crate::session::{after_id, rebind_to, skips_own_id, status_after, Status, Step};
use crate::store::{Bind, Learned, Stats};

static mut NEXT_HEADER_FILTER: ngx_http_output_header_filter_pt = None;
static mut NEXT_BODY_FILTER: ngx_http_output_body_filter_pt = None;

/// Puts our filters on top of the chains (postconfiguration).
///
/// # Safety
/// Only during configuration, in the single-threaded master.
pub unsafe fn install() {
    // SAFETY: configuration is single-threaded; nginx expects exactly this dance.
    unsafe {
        NEXT_HEADER_FILTER = ngx_http_top_header_filter;
        ngx_http_top_header_filter = Some(header_filter);
        NEXT_BODY_FILTER = ngx_http_top_body_filter;
        ngx_http_top_body_filter = Some(body_filter);
    }
}

unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // Learning must never cost a response: a failure here only skips learning.
    guard((), || {
        // SAFETY: r is the request nginx is sending headers for.
        unsafe { learn_from_headers(r) }
    });
    // SAFETY: set in install() before any request; nginx always has a next filter.
    match unsafe { *addr_of_mut!(NEXT_HEADER_FILTER) } {
        // SAFETY: the next filter of the same chain, with the same request.
        Some(next) => unsafe { next(r) },
        None => NGX_ERROR as ngx_int_t,
    }
}

unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    guard((), || {
        // SAFETY: r and chain are what nginx passes down the body filter chain.
        unsafe { learn_from_body(r, chain) }
    });
    // SAFETY: as in header_filter.
    match unsafe { *addr_of_mut!(NEXT_BODY_FILTER) } {
        // SAFETY: the next filter of the same chain, with the same arguments.
        Some(next) => unsafe { next(r, chain) },
        None => NGX_ERROR as ngx_int_t,
    }
}

/// Rebinds after failover, learns from `Location`, `Content-Location`,
/// `Refresh` and `Set-Cookie`, and decides whether (and how) the body is scanned.
///
/// # Safety
/// `r` must be a live request.
unsafe fn learn_from_headers(r: *mut ngx_http_request_t) {
    // SAFETY: r is live; ctx exists only for requests our balancer handled.
    unsafe {
        if r != (*r).main {
            return;
        }
        let Some(ctx) = request_ctx(r) else { return };
        if ctx.served.is_none() {
            // Not from a backend of ours (cache, error page, failed upstream).
            return;
        }
        let Some(scf) = ctx.conf.as_ref() else { return };
        // After an internal redirect the response may come from another
        // upstream: only learn when the answering upstream is the one that
        // set up this context.
        let u = (*r).upstream;
        if u.is_null() || (*u).upstream.is_null() {
            return;
        }
        // A response nginx made itself (504 after the last try timed out,
        // 502 when none could be reached) carries no status line from the
        // server `get` chose: it teaches nothing and moves no session.
        if (*u).headers_in.status_n == 0 {
            return;
        }
        match srv_conf((*u).upstream) {
            Some(answering) if core::ptr::eq(answering, scf) => {}
            _ => return,
        }
        let log = (*(*r).connection).log;
        rebind_if_moved(ctx, scf, log);

        let host = bytes(&(*r).headers_in.server);
        // Relative redirects from upstreams are only in the list, never in
        // headers_out.location (nginx keeps them away from its header filter).
        if let Some(p) = &scf.patterns {
            let flow = for_each_header(&(*r).headers_out.headers, |name, value| {
                header_ids(name, value, p, &scf.names, host, &mut |id| {
                    learn(ctx, scf, log, id)
                })
            });
            if flow.is_break() {
                // learn=first, and the headers taught the response's id; or
                // learn=all, and they used up the response's share.
                count_if_limited(ctx, scf, log);
                return;
            }
        }
        // create=$variable: ids named by variables, e.g. a custom header's.
        for &index in &scf.create {
            if let Some(id) = variable_id(r, index, scf.max_id_len) {
                if learn(ctx, scf, log, id).is_break() {
                    count_if_limited(ctx, scf, log);
                    return;
                }
            }
        }

        if header_only(r) {
            return;
        }
        let Some(mode) = scan_mode(&scf.types, content_type(&(*r).headers_out)) else {
            return;
        };
        let enc = (*r).headers_out.content_encoding;
        let enc = (!enc.is_null() && (*enc).hash != 0).then(|| bytes(&(*enc).value));
        let encoding = match body_coding(enc) {
            BodyCoding::Plain => None,
            BodyCoding::Inflate(e) => Some(e),
            BodyCoding::Unreadable => {
                ngx::ngx_log_debug!(
                    (*(*r).connection).log,
                    "sticky_session: body not scanned, unknown encoding"
                );
                count(scf, |s| &s.unscanned);
                return;
            }
        };
        if let Some(e) = encoding {
            let cln = ngx_pool_cleanup_add((*r).pool, 0);
            if cln.is_null() {
                return;
            }
            ctx.inflater = Box::into_raw(Box::new(Inflater::new(e)));
            (*cln).handler = Some(drop_inflater);
            (*cln).data = addr_of_mut!(ctx.inflater).cast();
        }
        ctx.scan = Some(mode);
        ctx.scan_left = scf.max_scan;
        // A body of known length ends with its last byte, not only with the
        // (often separate, empty) last buffer: scan it whole when it can.
        ctx.body_left = (*r).headers_out.content_length_n;
        ctx.took_memory = need_in_memory(r);
    }
}

/// Pool cleanup: frees a response's inflater, unless the scan ended first.
unsafe extern "C" fn drop_inflater(data: *mut c_void) {
    guard((), || {
        // SAFETY: data is &mut ctx.inflater of the request being freed.
        unsafe { free_inflater(data.cast()) }
    })
}

/// Frees the inflater `slot` holds, once.
///
/// # Safety
/// `slot` must point at NULL or at a `Box::into_raw` inflater.
unsafe fn free_inflater(slot: *mut *mut Inflater) {
    // SAFETY: per the contract; the slot is cleared so no second free.
    unsafe {
        let inflater = core::mem::replace(&mut *slot, core::ptr::null_mut());
        if !inflater.is_null() {
            drop(Box::from_raw(inflater));
        }
    }
}

/// Adds one to a zone counter.
fn count(scf: &SrvConf, counter: impl FnOnce(&Stats) -> &AtomicU64) {
    if let Some(table) = scf.zone_ctx().and_then(|z| z.table()) {
        counter(table.stats()).fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a response whose learning stopped because it recorded its share
/// of ids (`learn=all`, `max_learn=`).
fn count_if_limited(ctx: &RequestCtx, scf: &SrvConf, log: *mut ngx_log_t) {
    if ctx.learning.is_full() {
        ngx::ngx_log_debug!(
            log,
            "sticky_session: learning stopped, max_learn ids recorded"
        );
        count(scf, |s| &s.learn_limited);
    }
}

/// Calls `f(name, value)` for each live header of an nginx header list,
/// until it answers `Break`.
///
/// # Safety
/// `list` must be a valid list of `ngx_table_elt_t`.
unsafe fn for_each_header(list: &ngx_list_t, mut f: impl FnMut(&[u8], &[u8]) -> Flow) -> Flow {
    // SAFETY: an ngx_list_t is a chain of parts, each with nelts elements.
    unsafe {
        let mut part: *const ngx_list_part_t = &list.part;
        while !part.is_null() {
            let elts = (*part).elts as *const ngx_table_elt_t;
            for i in 0..(*part).nelts {
                let h = &*elts.add(i);
                if h.hash != 0 {
                    f(bytes(&h.key), bytes(&h.value))?;
                }
            }
            part = (*part).next;
        }
    }
    Flow::Continue(())
}

/// The response's MIME type: `Content-Type` without parameters when nginx
/// has measured it (`content_type_len`), else the whole value.
fn content_type(h: &ngx::ffi::ngx_http_headers_out_t) -> &[u8] {
    // SAFETY: content_type is nginx's header value for this response.
    let value = unsafe { bytes(&h.content_type) };
    match value.get(..h.content_type_len) {
        Some(mime) if !mime.is_empty() => mime,
        _ => value,
    }
}

/// Scans every in-memory buffer of `chain` before it goes downstream.
///
/// # Safety
/// `r` must be a live request and `chain` its body chain.
unsafe fn learn_from_body(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) {
    // SAFETY: the chain links and buffers are valid for this call; in-memory
    // buffers have pos..last readable.
    unsafe {
        if r != (*r).main {
            return;
        }
        let Some(ctx) = request_ctx(r) else { return };
        let Some(mode) = ctx.scan else { return };
        let Some(scf) = ctx.conf.as_ref() else { return };
        let Some(patterns) = &scf.patterns else {
            return;
        };
        let host = bytes(&(*r).headers_in.server);
        let log = (*(*r).connection).log;
        let mut cl = chain;
        while !cl.is_null() {
            let b = (*cl).buf;
            cl = (*cl).next;
            if b.is_null() {
                continue;
            }
            let in_memory = (*b).temporary() != 0 || (*b).memory() != 0 || (*b).mmap() != 0;
            let data = if in_memory && !(*b).pos.is_null() && (*b).last > (*b).pos {
                core::slice::from_raw_parts((*b).pos, (*b).last.offset_from((*b).pos) as usize)
            } else {
                &[]
            };
            // Range responses and filters above this one may pass fewer bytes
            // than Content-Length says: then only last_buf ends the body.
            if ctx.body_left >= 0 {
                ctx.body_left -= data.len() as i64;
            }
            let last = (*b).last_buf() != 0 || (ctx.body_left == 0 && ctx.inflater.is_null());
            match scan_buffer(r, ctx, scf, patterns, mode, host, log, data, last) {
                Ok(Flow::Continue(())) if !last => continue,
                // learn=first taught its id, or (learn=all) a new id came
                // after the response's share.
                Ok(Flow::Break(())) => count_if_limited(ctx, scf, log),
                // The body ended.
                Ok(Flow::Continue(())) => {}
                Err(Stop::Budget) => {
                    ngx::ngx_log_debug!(log, "sticky_session: body scan stopped at max_scan");
                    count(scf, |s| &s.scan_limited);
                }
                Err(Stop::Inflate) => {
                    ngx::ngx_log_debug!(log, "sticky_session: body scan stopped, cannot inflate");
                    count(scf, |s| &s.unscanned);
                }
            }
            // The rest of the body is passed on unread; the inflater's
            // memory goes back now rather than with the request, and the
            // body to sendfile.
            ctx.scan = None;
            free_inflater(addr_of_mut!(ctx.inflater));
            if ctx.took_memory && !last {
                release_in_memory(r);
            }
            return;
        }
    }
}

/// Why a body's scan ended before the body did.
enum Stop {
    /// `max_scan=` bytes were scanned.
    Budget,
    /// The body does not inflate.
    Inflate,
}

/// The part of `data` the response's scan budget still covers, and whether
/// that cut `data` short. The bytes past the budget are never scanned, and
/// a token cut by it is not reported: every split of a body agrees.
fn within_budget<'a>(left: &mut usize, data: &'a [u8]) -> (&'a [u8], bool) {
    let n = data.len().min(*left);
    *left -= n;
    (&data[..n], n < data.len())
}

/// Scans one body buffer: in place while nothing is carried between
/// buffers, through the request's scanner once something is.
///
/// # Safety
/// `r` must be the live request `ctx` belongs to.
#[allow(clippy::too_many_arguments)]
unsafe fn scan_buffer(
    r: *mut ngx_http_request_t,
    ctx: &mut RequestCtx,
    scf: &SrvConf,
    patterns: &Patterns,
    mode: Mode,
    host: &[u8],
    log: *mut ngx_log_t,
    data: &[u8],
    last: bool,
) -> Result<Flow, Stop> {
    // With learn=all, the request's own live session (now on the server that
    // answered) is skipped on the page: its repeats teach nothing. With
    // learn=first it is the response's id like any other.
    let recent = |ctx: &RequestCtx| {
        let mut recent = if skips_own_id(scf.learn, ctx.status) {
            Recent::seeded(bytes(&ctx.id))
        } else {
            Recent::new()
        };
        recent.resume(ctx.between);
        recent
    };
    if ctx.scanner.is_null() && ctx.inflater.is_null() {
        if data.is_empty() {
            // Nothing carried, nothing new (e.g. the empty last buffer).
            return Ok(Flow::Continue(()));
        }
        let (data, short) = within_budget(&mut ctx.scan_left, data);
        let mut recent = recent(ctx);
        if short {
            let (flow, _) = patterns.scan_complete(mode, data, host, &mut recent, &mut |id| {
                learn(ctx, scf, log, id)
            });
            return if flow.is_break() {
                Ok(flow)
            } else {
                Err(Stop::Budget)
            };
        }
        if last {
            return Ok(
                patterns.scan_whole(mode, data, host, &mut recent, &mut |id| {
                    learn(ctx, scf, log, id)
                }),
            );
        }
        // Scan the complete tokens in place; a scanner is needed only if the
        // buffer ends inside a token or tag.
        let (flow, cut) = patterns.scan_complete(mode, data, host, &mut recent, &mut |id| {
            learn(ctx, scf, log, id)
        });
        ctx.between = recent.between();
        if flow.is_break() || cut == data.len() {
            return Ok(flow);
        }
        // SAFETY: the pool outlives the request's filters.
        let scanner = unsafe { new_scanner(r, mode, recent) };
        if scanner.is_null() {
            // Out of memory: this response is not learned from further.
            return Ok(Flow::Break(()));
        }
        ctx.scanner = scanner;
        // A fresh scanner reports nothing for a partial token: it carries it.
        // SAFETY: just allocated, owned by ctx.
        return Ok(unsafe {
            (*scanner).feed(patterns, host, &data[cut..], &mut |_| Flow::Continue(()))
        });
    }
    if ctx.scanner.is_null() {
        // SAFETY: as above.
        ctx.scanner = unsafe { new_scanner(r, mode, recent(ctx)) };
        if ctx.scanner.is_null() {
            return Ok(Flow::Break(()));
        }
    }
    // SAFETY: the scanner lives in the pool, apart from ctx, which `learn` borrows.
    let scanner = unsafe { &mut *ctx.scanner };
    let mut flow = Flow::Continue(());
    // Apart from ctx, which `learn` borrows.
    let (mut left, mut short) = (ctx.scan_left, false);
    let inflater = ctx.inflater;
    if !data.is_empty() {
        let mut feed = |plain: &[u8]| {
            let (plain, cut) = within_budget(&mut left, plain);
            let flow = scanner.feed(patterns, host, plain, &mut |id| learn(ctx, scf, log, id));
            // Stopped by the budget, unless the id was found first.
            short = cut && flow.is_continue();
            if short {
                Flow::Break(())
            } else {
                flow
            }
        };
        // SAFETY: the inflater is owned by this request until its pool cleanup.
        flow = match unsafe { inflater.as_mut() } {
            None => feed(data),
            Some(inflater) => {
                let mut flow = Flow::Continue(());
                let inflated = inflater.feed(data, &mut |plain| {
                    flow = feed(plain);
                    flow
                });
                inflated.map_err(|_| Stop::Inflate)?;
                flow
            }
        };
    }
    ctx.scan_left = left;
    if short {
        return Err(Stop::Budget);
    }
    if last && flow.is_continue() {
        flow = scanner.finish(patterns, host, &mut |id| learn(ctx, scf, log, id));
    }
    Ok(flow)
}

/// A body scanner in the request pool, or NULL.
///
/// # Safety
/// `r` must be a live request.
unsafe fn new_scanner(
    r: *mut ngx_http_request_t,
    mode: Mode,
    recent: Recent,
) -> *mut Scanner<PoolCarry> {
    // SAFETY: palloc returns NULL or memory aligned for any pointer-aligned
    // type; Scanner has no Drop, so the pool may free it without running one.
    unsafe {
        let pool = (*r).pool;
        let s =
            ngx::ffi::ngx_palloc(pool, size_of::<Scanner<PoolCarry>>()) as *mut Scanner<PoolCarry>;
        if !s.is_null() {
            s.write(Scanner::with_recent(mode, PoolCarry::new(pool), recent));
        }
        s
    }
}

/// Records `id` → the server that produced this response. Answers `Break`
/// when the response has taught its id and `learn=first` wants no more.
fn learn(ctx: &mut RequestCtx, scf: &SrvConf, log: *mut ngx_log_t, id: &[u8]) -> Flow {
    let Some(served) = ctx.served else {
        return Flow::Break(());
    };
    let Some(zone) = scf.zone_ctx() else {
        return Flow::Break(());
    };
    let Some(table) = zone.table() else {
        return Flow::Break(());
    };
    // Pages repeat the request's own id: reuse its hash.
    // SAFETY: ctx.id points into the request, alive while ctx is.
    let key = if ctx.learning.own != 0 && unsafe { bytes(&ctx.id) } == id {
        ctx.learning.own
    } else {
        table.key(id)
    };
    match ctx.learning.step(key) {
        Step::Repeat | Step::Echo => Flow::Continue(()),
        Step::Own => after_id(scf.learn),
        Step::Enough => Flow::Break(()),
        Step::Record => {
            let outcome = zone.learn(&table, log, key, served, scf.expiry, Bind::Keep);
            if outcome != Learned::Kept {
                // The id is now the answering server's: so is its route.
                let route = scf.route.and_then(|spec| spec.route_of(id));
                if let (Some(route), Some(routes)) = (route, zone.routes()) {
                    routes.learn(&zone.lock(), route, served);
                }
            }
            ctx.status = status_after(ctx.status, outcome, ctx.learning.known);
            ngx::ngx_log_debug!(
                log,
                "sticky_session: learned id for server {:08x}: {:?}",
                served,
                outcome
            );
            after_id(scf.learn)
        }
    }
}

/// After failover, the request's own session now lives where it was served.
fn rebind_if_moved(ctx: &mut RequestCtx, scf: &SrvConf, log: *mut ngx_log_t) {
    let Some(to) = rebind_to(ctx.status, ctx.target, ctx.served) else {
        return;
    };
    let Some(zone) = scf.zone_ctx() else { return };
    let Some(table) = zone.table() else { return };
    zone.learn(&table, log, ctx.learning.own, to, scf.expiry, Bind::Rebind);
    ngx::ngx_log_debug!(
        log,
        "sticky_session: server {:08x} unusable, session rebound to {:08x}",
        ctx.target,
        to
    );
    ctx.status = Status::Rebound;
    ctx.target = to;
}
