//! Helpers every part of the adapter uses: panics kept out of nginx, the
//! clock, nginx strings and arrays, and the request bitfields read through C.

use core::ffi::c_char;

use ngx::ffi::{
    ngx_array_t, ngx_cached_time, ngx_conf_t, ngx_http_request_t, ngx_pnalloc, ngx_str_t,
    ngx_uint_t,
};
use std::panic::{catch_unwind, AssertUnwindSafe};

// Bitfields of the request, through C (src/ffi/nginx/request_bits.c says why):
// never bindgen's accessors for `ngx_http_request_t` bitfields.
extern "C" {
    fn ngx_http_sticky_session_header_only(r: *mut ngx_http_request_t) -> ngx_uint_t;
    fn ngx_http_sticky_session_body_no_buffering(r: *mut ngx_http_request_t) -> ngx_uint_t;
    fn ngx_http_sticky_session_need_in_memory(r: *mut ngx_http_request_t) -> ngx_uint_t;
    fn ngx_http_sticky_session_release_in_memory(r: *mut ngx_http_request_t);
    fn ngx_http_sticky_session_hold(r: *mut ngx_http_request_t);
    fn ngx_http_sticky_session_post(ev: *mut ngx::ffi::ngx_event_t);
}

/// `r->header_only`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn header_only(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: guaranteed by the caller; the accessor only reads the field.
    unsafe { ngx_http_sticky_session_header_only(r) != 0 }
}

/// `r->request_body_no_buffering`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn body_no_buffering(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: guaranteed by the caller; the accessor only reads the field.
    unsafe { ngx_http_sticky_session_body_no_buffering(r) != 0 }
}

/// Sets `r->filter_need_in_memory`; answers whether this call set it (no
/// filter above had asked for the body in memory).
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn need_in_memory(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: guaranteed by the caller; the accessor writes that one bit.
    unsafe { ngx_http_sticky_session_need_in_memory(r) == 0 }
}

/// Undoes [`need_in_memory`] once the learner stops reading, so the rest of
/// the body can go out by sendfile again.
///
/// # Safety
/// `r` must be a live request whose header filter ran.
pub unsafe fn release_in_memory(r: *mut ngx_http_request_t) {
    // SAFETY: guaranteed by the caller; C reads the copy filter's context.
    unsafe { ngx_http_sticky_session_release_in_memory(r) }
}

/// `r->main->count++`: the request stays alive until it is finalized.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn hold(r: *mut ngx_http_request_t) {
    // SAFETY: guaranteed by the caller.
    unsafe { ngx_http_sticky_session_hold(r) }
}

/// Posts `ev` to run on the event loop's next turn.
///
/// # Safety
/// `ev` must stay valid until it has run.
pub unsafe fn post(ev: *mut ngx::ffi::ngx_event_t) {
    // SAFETY: guaranteed by the caller.
    unsafe { ngx_http_sticky_session_post(ev) }
}

/// Runs `f`, turning a panic into `fallback`: a panic must never unwind into nginx.
pub fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// nginx's cached wall clock, in seconds.
pub fn now() -> u32 {
    // SAFETY: ngx_cached_time always points at a valid ngx_time_t once nginx has started.
    let sec = unsafe { (*ngx_cached_time).sec };
    u32::try_from(sec).unwrap_or(u32::MAX)
}

/// The bytes of an `ngx_str_t`.
///
/// # Safety
/// `s.data` must point at `s.len` readable bytes living as long as `'a`, or `s.len` be 0.
pub unsafe fn bytes<'a>(s: &ngx_str_t) -> &'a [u8] {
    if s.len == 0 || s.data.is_null() {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { core::slice::from_raw_parts(s.data, s.len) }
    }
}

/// The elements of an nginx array.
///
/// # Safety
/// `a` must be an array of `T` whose elements outlive `'a`.
pub unsafe fn array<'a, T>(a: &ngx_array_t) -> &'a [T] {
    if a.nelts == 0 || a.elts.is_null() {
        return &[];
    }
    // SAFETY: per the contract.
    unsafe { core::slice::from_raw_parts(a.elts as *const T, a.nelts) }
}

/// A directive error message in the configuration pool, for nginx to print
/// after the directive name.
///
/// # Safety
/// `cf` must be valid.
pub unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> *mut c_char {
    // SAFETY: cf->pool is valid; we write msg.len() + 1 bytes into a fresh allocation.
    unsafe {
        let p = ngx_pnalloc((*cf).pool, msg.len() + 1) as *mut u8;
        if p.is_null() {
            return ngx::core::NGX_CONF_ERROR as *mut c_char;
        }
        core::ptr::copy_nonoverlapping(msg.as_ptr(), p, msg.len());
        *p.add(msg.len()) = 0;
        p as *mut c_char
    }
}
