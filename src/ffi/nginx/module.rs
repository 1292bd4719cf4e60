//! The `ngx_http_upstream_sticky_session_module`: commands, module context,
//! the module, then its callbacks in the order nginx calls them
//! (preconfiguration, create_srv_conf, the directive, postconfiguration,
//! init_process, the variables, exit_master).

use core::ffi::{c_char, c_void};
use core::ptr::{addr_of_mut, null, null_mut};

use ngx::core::Pool;
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_http_add_variable, ngx_http_conf_ctx_t, ngx_http_module_t,
    ngx_http_request_t, ngx_http_upstream_main_conf_t, ngx_http_upstream_module,
    ngx_http_upstream_srv_conf_t, ngx_http_variable_value_t, ngx_int_t, ngx_module_t, ngx_pcalloc,
    ngx_shared_memory_add, ngx_str_t, ngx_uint_t, NGX_CONF_ANY, NGX_ERROR, NGX_HTTP_MODULE,
    NGX_HTTP_SRV_CONF_OFFSET, NGX_HTTP_UPSTREAM_BACKUP, NGX_HTTP_UPSTREAM_CREATE,
    NGX_HTTP_UPSTREAM_DOWN, NGX_HTTP_UPSTREAM_FAIL_TIMEOUT, NGX_HTTP_UPSTREAM_MAX_CONNS,
    NGX_HTTP_UPSTREAM_MAX_FAILS, NGX_HTTP_UPSTREAM_WEIGHT, NGX_HTTP_UPS_CONF,
    NGX_HTTP_VAR_NOCACHEABLE, NGX_OK,
};

use super::balancer::init_upstream;
use super::conf::{set_ctx_index, srv_conf, SrvConf};
use super::context::request_ctx;
use super::placement;
use super::request::Source;
use super::sync;
use super::sync_zone::ZoneSync;
use super::util::{array, bytes, conf_error, guard};
use super::zone::{self, for_each_zone_ctx, init_zone, ZoneCtx};
use super::{filter, status};
use crate::config::{self, DEFAULT_ZONE_SIZE};
use crate::scanner::Patterns;
use crate::session::Status;
use crate::state::{saves_periodically, Process};
use crate::store::Expiry;

static mut COMMANDS: [ngx_command_t; 4] = [
    ngx_command_t {
        name: ngx::ngx_string!("sticky_session"),
        type_: (NGX_HTTP_UPS_CONF | NGX_CONF_ANY) as ngx_uint_t,
        set: Some(sticky_session),
        conf: NGX_HTTP_SRV_CONF_OFFSET as ngx_uint_t,
        offset: 0,
        post: null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("sticky_session_drain"),
        type_: (NGX_HTTP_UPS_CONF | ngx::ffi::NGX_CONF_1MORE) as ngx_uint_t,
        set: Some(sticky_session_drain),
        conf: NGX_HTTP_SRV_CONF_OFFSET as ngx_uint_t,
        offset: 0,
        post: null_mut(),
    },
    ngx_command_t {
        name: ngx::ngx_string!("sticky_session_status"),
        type_: (ngx::ffi::NGX_HTTP_LOC_CONF | ngx::ffi::NGX_CONF_NOARGS) as ngx_uint_t,
        set: Some(status::directive),
        conf: ngx::ffi::NGX_HTTP_LOC_CONF_OFFSET as ngx_uint_t,
        offset: 0,
        post: null_mut(),
    },
    ngx_command_t::empty(),
];

static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(preconfiguration),   // variables
    postconfiguration: Some(postconfiguration), // filters, balancer order check
    create_main_conf: None,
    init_main_conf: None,
    create_srv_conf: Some(create_srv_conf),
    merge_srv_conf: None, // upstream server confs are never merged
    create_loc_conf: None,
    merge_loc_conf: None,
};

/// The module, under the name nginx's build system and `load_module` expect.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_upstream_sticky_session_module: ngx_module_t = ngx_module_t {
    ctx: &raw const MODULE_CTX as *mut c_void,
    // SAFETY: taking the address of a static creates no reference.
    commands: unsafe { &raw mut COMMANDS[0] },
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_process: Some(init_process),
    exit_process: Some(exit_process),
    exit_master: Some(exit_master),
    ..ngx_module_t::default()
};

unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: nginx numbered the modules of this configuration before
        // calling any preconfiguration; reading the field creates no reference.
        set_ctx_index(unsafe { &*addr_of_mut!(ngx_http_upstream_sticky_session_module) });
        let vars = [
            ("sticky_session_status", VAR_STATUS),
            ("sticky_session_id", VAR_ID),
        ];
        for (name, which) in vars {
            let mut name = ngx_str_t {
                len: name.len(),
                data: name.as_ptr() as *mut u8,
            };
            // SAFETY: cf is nginx's configuration; the name is copied by nginx.
            let var = unsafe {
                ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as ngx_uint_t)
            };
            if var.is_null() {
                return NGX_ERROR as ngx_int_t;
            }
            // SAFETY: var is a live variable definition returned just above.
            unsafe {
                (*var).get_handler = Some(variable);
                (*var).data = which;
            }
        }
        NGX_OK as ngx_int_t
    })
}

unsafe extern "C" fn create_srv_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    guard(null_mut(), || {
        // SAFETY: cf->pool is the cycle's pool; allocate() registers a
        // cleanup that drops the SrvConf (and its Patterns) with the pool.
        let pool = unsafe { Pool::from_ngx_pool((*cf).pool) };
        pool.allocate(SrvConf::default()) as *mut c_void
    })
}

/// `sticky_session [name=NAME]... [zone=NAME:SIZE] [timeout=TIME] [max_age=TIME]
/// [max_id_len=N] [lookup=SOURCE,...] [types=MIME,...] [learn=first|all]
/// [max_scan=SIZE] [max_learn=N] [fallback=on|off] [state=FILE];` (parsed by
/// [`config::parse`]; the README documents each parameter).
unsafe extern "C" fn sticky_session(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(ngx::core::NGX_CONF_ERROR as *mut c_char, || {
        // SAFETY: nginx calls this inside upstream{} with our SrvConf as conf
        // and the directive's words in cf->args.
        unsafe {
            let scf = &mut *(conf as *mut SrvConf);
            if scf.enabled {
                return c"is duplicate".as_ptr() as *mut c_char;
            }
            let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
            let uscf = *(*ctx).srv_conf.add(ngx_http_upstream_module.ctx_index)
                as *mut ngx_http_upstream_srv_conf_t;
            if nginx_sticky_in((*cf).cycle, uscf) {
                ngx::ngx_conf_log_error!(
                    ngx::ffi::NGX_LOG_EMERG,
                    cf,
                    "\"sticky_session\" cannot be combined with \"sticky\" in upstream \"{}\"",
                    String::from_utf8_lossy(bytes(&(*uscf).host)),
                );
                return ngx::core::NGX_CONF_ERROR as *mut c_char;
            }
            // A balancer written before us (least_conn, random, hash) places
            // the requests without a live session; keepalive must wrap us.
            let inner = (*uscf).peer.init_upstream;
            if inner.is_some() && keepalive_in((*cf).cycle, uscf) {
                return c"must come before \"keepalive\" in the upstream block".as_ptr()
                    as *mut c_char;
            }

            let words = array::<ngx_str_t>(&*(*cf).args);
            let args: Vec<&[u8]> = words.iter().skip(1).map(|w| bytes(w)).collect();
            let d = match config::parse(&args) {
                Ok(d) => d,
                Err(e) => return conf_error(cf, &e.to_string()),
            };

            let zone_name = match d.zone {
                Some(z) => z.name.to_vec(),
                None => [b"sticky_session_".as_slice(), bytes(&(*uscf).host)].concat(),
            };
            let zone_size = d.zone.map_or(DEFAULT_ZONE_SIZE, |z| z.size);
            let Some(mut name) = ngx_str_t::from_bytes((*cf).pool, &zone_name) else {
                return ngx::core::NGX_CONF_ERROR as *mut c_char;
            };
            let zone = ngx_shared_memory_add(
                cf,
                &mut name,
                zone_size,
                addr_of_mut!(ngx_http_upstream_sticky_session_module) as *mut c_void,
            );
            if zone.is_null() {
                return ngx::core::NGX_CONF_ERROR as *mut c_char;
            }
            let mut state = ngx_str_t::empty();
            if let Some(path) = d.state {
                let Some(mut p) = ngx_str_t::from_bytes((*cf).pool, path) else {
                    return ngx::core::NGX_CONF_ERROR as *mut c_char;
                };
                if ngx::ffi::ngx_conf_full_name((*cf).cycle, &mut p, 0) != NGX_OK as ngx_int_t {
                    return ngx::core::NGX_CONF_ERROR as *mut c_char;
                }
                state = p;
            }
            let mut zone_sync: *const ZoneSync = null();
            if let Some(sc) = &d.sync {
                let mut conf = sc.clone();
                let (mut key_path, mut auth_path) = (Vec::new(), Vec::new());
                for (file, out) in [
                    (Some(sc.key_file), &mut key_path),
                    (sc.auth_file, &mut auth_path),
                ] {
                    let Some(f) = file else { continue };
                    let Some(mut p) = ngx_str_t::from_bytes((*cf).pool, f) else {
                        return ngx::core::NGX_CONF_ERROR as *mut c_char;
                    };
                    if ngx::ffi::ngx_conf_full_name((*cf).cycle, &mut p, 1) != NGX_OK as ngx_int_t {
                        return ngx::core::NGX_CONF_ERROR as *mut c_char;
                    }
                    *out = bytes(&p).to_vec();
                }
                conf.key_file = &key_path;
                if sc.auth_file.is_some() {
                    conf.auth_file = Some(&auth_path);
                }
                match ZoneSync::load(&conf, &zone_name) {
                    Ok(zs) => {
                        let pool = Pool::from_ngx_pool((*cf).pool);
                        zone_sync = pool.allocate(zs);
                        if zone_sync.is_null() {
                            return ngx::core::NGX_CONF_ERROR as *mut c_char;
                        }
                    }
                    Err(e) => return conf_error(cf, &e),
                }
            }
            if (*zone).data.is_null() {
                // Two zones writing one file would overwrite each other.
                let mut taken = None;
                if state.len > 0 {
                    for_each_zone_ctx((*cf).cycle, |z, other| {
                        if bytes(&other.state) == bytes(&state) {
                            taken = Some(String::from_utf8_lossy(bytes(&(*z).shm.name)));
                        }
                    });
                }
                if let Some(other) = taken {
                    return conf_error(
                        cf,
                        &format!(
                            "state file \"{}\" is already used by zone \"{other}\"",
                            String::from_utf8_lossy(bytes(&state))
                        ),
                    );
                }
                let zctx = ngx_pcalloc((*cf).pool, size_of::<ZoneCtx>()) as *mut ZoneCtx;
                if zctx.is_null() {
                    return ngx::core::NGX_CONF_ERROR as *mut c_char;
                }
                (*zctx).state = state;
                (*zctx).shm_zone = zone;
                (*zctx).keep = Expiry::idle(d.timeout);
                (*zctx).save_every = d.save_every;
                (*zctx).sync = zone_sync;
                (*zctx).balance = d.balance_sessions;
                (*zctx).wants_routes = d.route.is_some();
                (*zone).data = zctx as *mut c_void;
                (*zone).init = Some(init_zone);
            } else {
                // A zone shared by several upstreams: one state file, and
                // the longest timeout decides what carry-overs keep.
                let zctx = &mut *((*zone).data as *mut ZoneCtx);
                if bytes(&zctx.state) != bytes(&state) {
                    return conf_error(
                        cf,
                        &format!(
                            "zone \"{}\" is used with another \"state\" by another upstream",
                            String::from_utf8_lossy(&zone_name)
                        ),
                    );
                }
                let same_sync = match (zctx.sync.as_ref(), zone_sync.as_ref()) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a.spec == b.spec && a.files == b.files,
                    _ => false,
                };
                if !same_sync {
                    return conf_error(
                        cf,
                        &format!(
                            "zone \"{}\" is used with other \"sync\" settings by another upstream",
                            String::from_utf8_lossy(&zone_name)
                        ),
                    );
                }
                zctx.keep.idle = zctx.keep.idle.max(d.timeout);
                zctx.balance |= d.balance_sessions;
                zctx.wants_routes |= d.route.is_some();
                zctx.save_every = zctx.save_every.min(d.save_every);
            }

            let mut lookup = Vec::with_capacity(d.lookup.len());
            for source in &d.lookup {
                lookup.push(match *source {
                    config::Source::Query => Source::Query,
                    config::Source::Path => Source::Path,
                    config::Source::Body => Source::Body,
                    config::Source::Cookie => Source::Cookie,
                    config::Source::Variable(name) => match variable_index(cf, name) {
                        Some(index) => Source::Variable(index),
                        None => return ngx::core::NGX_CONF_ERROR as *mut c_char,
                    },
                });
            }
            let mut create = Vec::with_capacity(d.create.len());
            for name in &d.create {
                match variable_index(cf, name) {
                    Some(index) => create.push(index),
                    None => return ngx::core::NGX_CONF_ERROR as *mut c_char,
                }
            }
            scf.create = create;

            scf.enabled = true;
            scf.lookup = lookup;
            scf.types = d.types.clone();
            scf.names = d.names;
            scf.max_id_len = d.max_id_len;
            scf.expiry = Expiry {
                idle: d.timeout,
                max_age: d.max_age,
            };
            scf.strict = d.strict;
            scf.learn = d.learn;
            scf.max_scan = d.max_scan;
            scf.max_learn = d.max_learn;
            scf.balance_sessions = d.balance_sessions;
            scf.inner_init_upstream = inner;
            scf.route = d.route;
            scf.zone = zone;
            scf.patterns = Some(Patterns::new(&d.names, d.max_id_len));
            scf.file = (*(*cf).conf_file).file.name;
            scf.line = (*(*cf).conf_file).line;

            (*uscf).peer.init_upstream = Some(init_upstream);
            (*uscf).flags |= (NGX_HTTP_UPSTREAM_CREATE
                | NGX_HTTP_UPSTREAM_WEIGHT
                | NGX_HTTP_UPSTREAM_MAX_CONNS
                | NGX_HTTP_UPSTREAM_MAX_FAILS
                | NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
                | NGX_HTTP_UPSTREAM_DOWN
                | NGX_HTTP_UPSTREAM_BACKUP) as ngx_uint_t;
            null_mut()
        }
    })
}

/// `sticky_session_drain ADDRESS...;`: the servers written exactly so
/// (`10.0.0.3:8080`, as in the status page) get no new sessions and keep
/// their live ones (checked against the servers when the upstream is set up).
unsafe extern "C" fn sticky_session_drain(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(ngx::core::NGX_CONF_ERROR as *mut c_char, || {
        // SAFETY: nginx calls this inside upstream{} with our SrvConf as conf.
        unsafe {
            let scf = &mut *(conf as *mut SrvConf);
            let words = array::<ngx_str_t>(&*(*cf).args);
            for w in words.iter().skip(1) {
                let addr = bytes(w).to_vec();
                if addr.is_empty() || scf.drain.iter().any(|(a, _, _)| *a == addr) {
                    return conf_error(
                        cf,
                        &format!(
                            "duplicate or empty address \"{}\"",
                            String::from_utf8_lossy(&addr)
                        ),
                    );
                }
                scf.drain
                    .push((addr, (*(*cf).conf_file).file.name, (*(*cf).conf_file).line));
            }
            null_mut()
        }
    })
}

/// The index of variable `name` (without `$`); nginx copies the name, and
/// an unknown variable fails at the end of configuration with its name.
///
/// # Safety
/// `cf` must be the configuration being read.
unsafe fn variable_index(cf: *mut ngx_conf_t, name: &[u8]) -> Option<ngx_uint_t> {
    let mut name = ngx_str_t {
        len: name.len(),
        data: name.as_ptr() as *mut u8,
    };
    // SAFETY: per the contract; the name is only read.
    let index = unsafe { ngx::ffi::ngx_http_get_variable_index(cf, &mut name) };
    (index != NGX_ERROR as ngx_int_t).then_some(index as ngx_uint_t)
}

/// The server configuration in `us` of the HTTP module named `name`, if that
/// module is loaded (NULL until its directive or `create_srv_conf` made one).
///
/// # Safety
/// `cycle` must be the cycle being configured and `us` one of its upstreams.
unsafe fn module_srv_conf(
    cycle: *const ngx::ffi::ngx_cycle_t,
    us: *const ngx_http_upstream_srv_conf_t,
    name: &core::ffi::CStr,
) -> Option<*const c_void> {
    // cycle->modules holds modules_n modules with NUL-terminated names; HTTP
    // modules have their ctx_index and a slot in every upstream's srv_conf.
    // SAFETY: as above.
    unsafe {
        let confs = (*us).srv_conf;
        if confs.is_null() || (*cycle).modules.is_null() {
            return None;
        }
        (0..(*cycle).modules_n).find_map(|i| {
            let m = *(*cycle).modules.add(i);
            let ours = !m.is_null()
                && (*m).type_ == NGX_HTTP_MODULE as ngx_uint_t
                && !(*m).name.is_null()
                && core::ffi::CStr::from_ptr((*m).name) == name;
            ours.then(|| *confs.add((*m).ctx_index) as *const c_void)
        })
    }
}

/// Whether nginx's own `sticky` (1.29.6+) is configured in `us`. Its server
/// configuration starts with the balancer it wraps, which only its
/// directive sets (to round robin at least).
///
/// # Safety
/// As for [`module_srv_conf`].
unsafe fn nginx_sticky_in(
    cycle: *const ngx::ffi::ngx_cycle_t,
    us: *const ngx_http_upstream_srv_conf_t,
) -> bool {
    // SAFETY: as above; the sticky module's conf begins with a pointer.
    unsafe {
        match module_srv_conf(cycle, us, c"ngx_http_upstream_sticky_module") {
            Some(conf) => !conf.is_null() && !(*(conf as *const *const c_void)).is_null(),
            None => false,
        }
    }
}

/// Whether `keepalive` was written in `us` before now, on nginx versions
/// whose `keepalive` wraps the balancer as its directive is read (it must
/// wrap ours, so it must come after). Its server configuration starts with
/// `max_cached`, which only the directive sets.
///
/// # Safety
/// As for [`module_srv_conf`].
unsafe fn keepalive_in(
    cycle: *const ngx::ffi::ngx_cycle_t,
    us: *const ngx_http_upstream_srv_conf_t,
) -> bool {
    if cfg!(ngx_keepalive_at_init) {
        return false;
    }
    // SAFETY: as above; the keepalive module's server configuration begins
    // with an ngx_uint_t on these versions.
    unsafe {
        match module_srv_conf(cycle, us, c"ngx_http_upstream_keepalive_module") {
            Some(conf) => !conf.is_null() && *(conf as *const ngx_uint_t) != 0,
            None => false,
        }
    }
}

unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: called by nginx inside the http block with a valid cf.
        unsafe {
            filter::install();
            // A balancer directive after ours replaces init_upstream, so ours never ran.
            let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
            let umcf = *(*ctx).main_conf.add(ngx_http_upstream_module.ctx_index)
                as *const ngx_http_upstream_main_conf_t;
            for &us in array::<*mut ngx_http_upstream_srv_conf_t>(&(*umcf).upstreams) {
                if let Some(scf) = srv_conf(us) {
                    if scf.enabled && nginx_sticky_in((*cf).cycle, us) {
                        // `sticky` after ours wrapped it: two sticky methods.
                        ngx::ngx_conf_log_error!(
                            ngx::ffi::NGX_LOG_EMERG,
                            cf,
                            "\"sticky_session\" cannot be combined with \"sticky\" in upstream \"{}\" \
                             ({}:{})",
                            String::from_utf8_lossy(bytes(&(*us).host)),
                            String::from_utf8_lossy(bytes(&scf.file)),
                            scf.line,
                        );
                        return NGX_ERROR as ngx_int_t;
                    }
                    if let (false, Some((addr, file, line))) = (scf.enabled, scf.drain.first()) {
                        ngx::ngx_conf_log_error!(
                            ngx::ffi::NGX_LOG_EMERG,
                            cf,
                            "\"sticky_session_drain {}\" in {}:{} needs \"sticky_session\" in \
                             upstream \"{}\"",
                            String::from_utf8_lossy(addr),
                            String::from_utf8_lossy(bytes(file)),
                            line,
                            String::from_utf8_lossy(bytes(&(*us).host)),
                        );
                        return NGX_ERROR as ngx_int_t;
                    }
                    if scf.enabled && !scf.initialized {
                        ngx::ngx_conf_log_error!(
                            ngx::ffi::NGX_LOG_EMERG,
                            cf,
                            "\"sticky_session\" in {}:{} is overridden by a load balancing method \
                             specified after it in upstream \"{}\"; only \"keepalive\" may follow it",
                            String::from_utf8_lossy(bytes(&scf.file)),
                            scf.line,
                            String::from_utf8_lossy(bytes(&(*us).host)),
                        );
                        return NGX_ERROR as ngx_int_t;
                    }
                }
            }
        }
        NGX_OK as ngx_int_t
    })
}

/// Worker 0 (or the single process) writes the state files periodically.
unsafe extern "C" fn init_process(cycle: *mut ngx::ffi::ngx_cycle_t) -> ngx_int_t {
    guard(NGX_OK as ngx_int_t, || {
        // SAFETY: called once per process by nginx after the cycle is ready.
        unsafe {
            let process = match ngx::ffi::ngx_process as u32 {
                ngx::ffi::NGX_PROCESS_WORKER => Process::Worker(ngx::ffi::ngx_worker),
                ngx::ffi::NGX_PROCESS_SINGLE => Process::Single,
                _ => Process::Helper,
            };
            if saves_periodically(process) {
                zone::save_periodically(cycle);
                placement::start(cycle);
            }
            if process != Process::Helper {
                sync::start(cycle, saves_periodically(process));
            }
        }
        NGX_OK as ngx_int_t
    })
}

/// Which variable a getter call is for (the variable's `data`).
const VAR_STATUS: usize = 0;

const VAR_ID: usize = 1;

/// `$sticky_session_status` (NONE, HIT, MISS, EXPIRED, NEW or REBOUND) and
/// `$sticky_session_id` (the id the request was routed by, if any).
unsafe extern "C" fn variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    data: usize,
) -> ngx_int_t {
    guard(NGX_ERROR as ngx_int_t, || {
        // SAFETY: r and v are nginx's; status names are 'static and the id
        // points into the balanced request's target, alive as long as it.
        unsafe {
            // A subrequest that was balanced itself has its own context.
            let ctx = request_ctx(r).or_else(|| request_ctx((*r).main));
            let value = match data {
                VAR_STATUS => ctx.map(|c| c.status.as_str().as_bytes()),
                _ => ctx
                    .filter(|c| c.status != Status::None)
                    .map(|c| bytes(&c.id)),
            };
            set_variable(v, value)
        }
    })
}

/// Sets `v` to `value`, which must outlive the request, or to "not found".
///
/// # Safety
/// `v` must be valid.
unsafe fn set_variable(v: *mut ngx_http_variable_value_t, value: Option<&[u8]>) -> ngx_int_t {
    // SAFETY: v is nginx's variable slot for this request.
    unsafe {
        match value {
            Some(s) => {
                (*v).set_len(s.len() as u32);
                (*v).set_valid(1);
                (*v).set_no_cacheable(0);
                (*v).set_not_found(0);
                (*v).data = s.as_ptr() as *mut u8;
            }
            None => (*v).set_not_found(1),
        }
    }
    NGX_OK as ngx_int_t
}

/// A worker waits for its state saving thread before it exits.
unsafe extern "C" fn exit_process(cycle: *mut ngx::ffi::ngx_cycle_t) {
    guard((), || {
        // SAFETY: the exiting process's cycle, its zones still mapped.
        unsafe {
            sync::stop_all();
            zone::stop_saving(cycle)
        }
    })
}

/// The master writes the state files last, after its workers have exited.
unsafe extern "C" fn exit_master(cycle: *mut ngx::ffi::ngx_cycle_t) {
    guard((), || {
        // SAFETY: the master's cycle; its zones are still mapped.
        unsafe {
            zone::save_all(cycle);
        }
    })
}
