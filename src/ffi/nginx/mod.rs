//! The nginx module: nginx's callbacks turn headers, buffers and peers into
//! the core's inputs and apply its answers.
//!
//! - `module`: commands, module context and the lifecycle callbacks, in
//!   nginx's order, and the directive handler;
//! - `conf`: an upstream's configuration; `context`: a request's state;
//! - `balancer`: upstream init, per-request init and peer selection;
//! - `request`: the candidate ids a request carries, per `lookup=` source;
//! - `filter`: the response header and body filters that learn ids;
//! - `zone`: the shared memory zone holding the table, and its state file;
//! - `status`: the `sticky_session_status` location handler;
//! - `placement`: `balance=sessions` and its periodic recount;
//! - `sync_zone`: a zone's sync settings and its process's queue for Redis;
//! - `sync`: the connections to Redis that share a zone with other nginx;
//! - `util`: helpers (panic guard, clock, strings, request bitfields).

mod balancer;
mod conf;
mod context;
mod filter;
mod module;
mod placement;
mod request;
mod status;
mod sync;
mod sync_zone;
mod util;
mod zone;

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
