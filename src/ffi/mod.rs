//! The nginx adapter: the only place that touches nginx types or `unsafe`.
//!
//! - `module`: the module, its directive and configuration, in nginx's order;
//! - `balancer`: upstream init, per-request init and peer selection;
//! - `filter`: the response header and body filters that learn ids;
//! - `request`: the candidate ids a request carries, per `lookup=` source;
//! - `status`: the `sticky_session_status` location handler;
//! - `zone`: the shared memory zone holding the session table.

#![allow(unsafe_code)]

mod balancer;
mod filter;
mod module;
mod request;
mod status;
mod zone;

use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{ngx_cached_time, ngx_http_request_t, ngx_str_t, ngx_uint_t};

// Bitfields of the request, through C (src/ffi/request_bits.c says why):
// never bindgen's accessors for `ngx_http_request_t` bitfields.
extern "C" {
    fn ngx_http_sticky_session_header_only(r: *mut ngx_http_request_t) -> ngx_uint_t;
    fn ngx_http_sticky_session_body_no_buffering(r: *mut ngx_http_request_t) -> ngx_uint_t;
    fn ngx_http_sticky_session_need_in_memory(r: *mut ngx_http_request_t);
}

/// `r->header_only`.
///
/// # Safety
/// `r` must be a live request.
unsafe fn header_only(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: guaranteed by the caller; the accessor only reads the field.
    unsafe { ngx_http_sticky_session_header_only(r) != 0 }
}

/// `r->request_body_no_buffering`.
///
/// # Safety
/// `r` must be a live request.
unsafe fn body_no_buffering(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: guaranteed by the caller; the accessor only reads the field.
    unsafe { ngx_http_sticky_session_body_no_buffering(r) != 0 }
}

/// Sets `r->filter_need_in_memory`.
///
/// # Safety
/// `r` must be a live request.
unsafe fn need_in_memory(r: *mut ngx_http_request_t) {
    // SAFETY: guaranteed by the caller; the accessor writes that one bit.
    unsafe { ngx_http_sticky_session_need_in_memory(r) }
}

/// Runs `f`, turning a panic into `fallback`: a panic must never unwind into nginx.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// nginx's cached wall clock, in seconds.
fn now() -> u32 {
    // SAFETY: ngx_cached_time always points at a valid ngx_time_t once nginx has started.
    let sec = unsafe { (*ngx_cached_time).sec };
    u32::try_from(sec).unwrap_or(u32::MAX)
}

/// The bytes of an `ngx_str_t`.
///
/// # Safety
/// `s.data` must point at `s.len` readable bytes living as long as `'a`, or `s.len` be 0.
unsafe fn bytes<'a>(s: &ngx_str_t) -> &'a [u8] {
    if s.len == 0 || s.data.is_null() {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { core::slice::from_raw_parts(s.data, s.len) }
    }
}

#[cfg(feature = "export-modules")]
mod export {
    use core::ffi::c_char;
    use core::ptr::{addr_of, null};

    use ngx::ffi::ngx_module_t;

    use super::module::ngx_http_upstream_sticky_session_module as MODULE;

    #[repr(transparent)]
    struct Table<T, const N: usize>([T; N]);
    // SAFETY: the tables are read by nginx's single-threaded module loader only.
    unsafe impl<T, const N: usize> Sync for Table<T, N> {}

    /// The modules this shared object provides, for `load_module`.
    #[no_mangle]
    #[allow(non_upper_case_globals)]
    static ngx_modules: Table<*const ngx_module_t, 2> = Table([addr_of!(MODULE), null()]);

    #[no_mangle]
    #[allow(non_upper_case_globals)]
    static ngx_module_names: Table<*const c_char, 2> =
        Table([c"ngx_http_upstream_sticky_session_module".as_ptr(), null()]);

    /// Place the filter below the copy filter, where bodies are in memory,
    /// as nginx's build system does for HTTP_FILTER modules.
    #[no_mangle]
    #[allow(non_upper_case_globals)]
    static ngx_module_order: Table<*const c_char, 3> = Table([
        c"ngx_http_upstream_sticky_session_module".as_ptr(),
        c"ngx_http_copy_filter_module".as_ptr(),
        null(),
    ]);
}
