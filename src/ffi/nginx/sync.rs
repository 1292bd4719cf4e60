//! Sync through Redis inside nginx's event loop: non-blocking connections
//! made by `ngx_event_connect_peer`, nginx timers and posted events carry the
//! core's conversation ([`Link`]). Nothing here runs on the request path:
//! requests only queue session hashes (`sync_zone.rs`).
//!
//! Every worker has one command connection per synced zone, for what it
//! learns; worker 0 (or the single process) also subscribes, merges what
//! the other nginx publish and resyncs after every (re)subscription.

use core::ptr::{addr_of_mut, null_mut};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use ngx::ffi::{
    ngx_add_timer, ngx_close_connection,
    ngx_connection_log_error_e_NGX_ERROR_INFO as NGX_ERROR_INFO, ngx_connection_t, ngx_cycle_t,
    ngx_del_timer, ngx_delete_posted_event, ngx_event_connect_peer, ngx_event_get_peer,
    ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_log_t, ngx_msec_t,
    ngx_peer_connection_t, ngx_str_t, NGX_AGAIN, NGX_LOG_EMERG, NGX_LOG_INFO, NGX_LOG_NOTICE,
    NGX_LOG_WARN, NGX_OK,
};

use super::sync_zone::{SockAddr, ZoneSync};
use super::util::{guard, now};
use super::zone::{for_each_zone_ctx, ShmLock, ZoneCtx};
use crate::sync::{self, ErrorKind, Link, LinkError, Role, State, Zone};

extern "C" {
    fn ngx_http_sticky_session_conn_idle(c: *mut ngx_connection_t);
    fn ngx_http_sticky_session_conn_closing(c: *mut ngx_connection_t) -> ngx::ffi::ngx_uint_t;
}

/// First wait before reconnecting; doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: ngx_msec_t = 100;
const BACKOFF_MAX: ngx_msec_t = 5000;
/// Wait after Redis showed another key check (an operator must act).
const BACKOFF_KEY: ngx_msec_t = 30_000;
const CONNECT_TIMEOUT: ngx_msec_t = 3000;
/// Heartbeat: a connection that owes answers and read nothing for
/// [`STALL_TICKS`] ticks is broken; an idle one is pinged every
/// [`PING_TICKS`].
const TICK: ngx_msec_t = 1000;
const STALL_TICKS: u32 = 3;
const PING_TICKS: u32 = 5;

/// One connection to Redis (or, while discovering, to a Sentinel).
pub struct Conn {
    zone: *const ZoneCtx,
    link: Link,
    discovery: Link,
    discovering: bool,
    primary: Option<SockAddr>,
    addr: SockAddr,
    name: ngx_str_t,
    pc: ngx_peer_connection_t,
    connected: bool,
    timer: *mut ngx_event_t,
    flush: *mut ngx_event_t,
    backoff: ngx_msec_t,
    next_addr: usize,
    got_input: bool,
    stalled: u32,
    idle_ticks: u32,
    up: bool,
    partner: *mut Conn,
    resync_due: bool,
    refusing: bool,
    log: ngx_log_t,
    cycle_log: *mut ngx_log_t,
    stopped: bool,
}

/// This process's connections, for init/exit.
static mut CONNS: Vec<*mut Conn> = Vec::new();

/// Runs `f` with a view of `zctx` for the conversation: its table, lock and
/// counters, and the time now (`None` before the zone has its table).
fn with_zone<R>(zctx: &ZoneCtx, f: impl FnOnce(&Zone<'_, ShmLock>) -> R) -> Option<R> {
    let table = zctx.table()?;
    let lock = zctx.lock();
    let z = Zone {
        table: &table,
        lock: &lock,
        stats: zctx.sync_stats(),
        exp: zctx.keep,
        now: now(),
        now_ms: now_ms(),
    };
    Some(f(&z))
}

fn now_ms() -> u64 {
    // SAFETY: ngx_cached_time always points at a valid ngx_time_t once nginx runs.
    let t = unsafe { &*ngx::ffi::ngx_cached_time };
    (t.sec as u64) * 1000 + t.msec as u64
}

impl Conn {
    fn zone(&self) -> &'static ZoneCtx {
        // SAFETY: the zone context lives in the cycle's pool, which outlives
        // this process's connections (closed in exit_process).
        unsafe { &*self.zone }
    }

    fn sync(&self) -> &'static ZoneSync {
        // SAFETY: a Conn exists only for zones with sync.
        unsafe { &*self.zone().sync }
    }

    fn leader(&self) -> bool {
        self.link.role() == Role::Command { leader: true }
    }

    fn logs_state(&self) -> bool {
        self.leader() || self.link.role() == Role::Subscriber
    }
}

/// Opens this process's connections for every zone with sync (from
/// init_process): a command connection each, and in worker 0 (or the
/// single process) a subscriber too.
///
/// # Safety
/// `cycle` must be the process's live cycle; called once.
pub unsafe fn start(cycle: *mut ngx_cycle_t, leader: bool) {
    // SAFETY: per the contract; CONNS is this process's own.
    unsafe {
        let origin = {
            let mut b = [0u8; 8];
            libc::getrandom(b.as_mut_ptr().cast(), 8, 0);
            u64::from_le_bytes(b) ^ u64::from(std::process::id())
        };
        for_each_zone_ctx(cycle, |_, zctx| {
            let Some(zs) = zctx.sync.as_ref() else { return };
            let cmd = new_conn(cycle, zctx, zs, Role::Command { leader }, origin);
            zs.flush.set((*cmd).flush);
            if leader {
                let sub = new_conn(cycle, zctx, zs, Role::Subscriber, origin);
                (*cmd).partner = sub;
                (*sub).partner = cmd;
                connect(sub);
            }
            connect(cmd);
        });
    }
}

/// # Safety
/// As for [`start`].
unsafe fn new_conn(
    cycle: *mut ngx_cycle_t,
    zctx: &ZoneCtx,
    zs: &ZoneSync,
    role: Role,
    origin: u64,
) -> *mut Conn {
    // SAFETY: the cycle log is valid; the events are zeroed plain data.
    unsafe {
        let mut log = *(*cycle).log;
        // Connection errors are reported by us, once per change of state,
        // not by nginx on every retry.
        log.log_level = NGX_LOG_EMERG as ngx::ffi::ngx_uint_t;
        log.next = null_mut();
        let conn = Box::into_raw(Box::new(Conn {
            zone: zctx,
            link: Link::new(role, zs.names.clone(), origin, zs.fingerprint),
            discovery: Link::new(Role::Sentinel, zs.names.clone(), origin, zs.fingerprint),
            discovering: false,
            primary: None,
            addr: zs.addrs[0].clone(),
            name: ngx_str_t::empty(),
            pc: core::mem::zeroed(),
            connected: false,
            timer: Box::into_raw(Box::new(core::mem::zeroed::<ngx_event_t>())),
            flush: Box::into_raw(Box::new(core::mem::zeroed::<ngx_event_t>())),
            backoff: BACKOFF_MIN,
            next_addr: 0,
            got_input: false,
            stalled: 0,
            idle_ticks: 0,
            up: false,
            partner: null_mut(),
            resync_due: false,
            refusing: false,
            log,
            cycle_log: (*cycle).log,
            stopped: false,
        }));
        for (ev, handler) in [
            (
                (*conn).timer,
                timer_handler as unsafe extern "C" fn(*mut ngx_event_t),
            ),
            ((*conn).flush, flush_handler),
        ] {
            (*ev).handler = Some(handler);
            (*ev).data = conn.cast();
            (*ev).log = (*cycle).log;
            (*ev).set_cancelable(1);
        }
        (*addr_of_mut!(CONNS)).push(conn);
        conn
    }
}

/// Closes every connection of this process (exit_process).
///
/// # Safety
/// Called once, from exit_process.
pub unsafe fn stop_all() {
    // SAFETY: CONNS holds this process's Conns, made by new_conn.
    unsafe {
        for conn in (*addr_of_mut!(CONNS)).drain(..) {
            let c = &*conn;
            if matches!(c.link.role(), Role::Command { .. })
                && (c.link.in_flight() > 0 || !c.sync().queue.borrow().is_empty())
            {
                // This process's unsent updates go with it.
                c.zone().sync_stats().lost();
            }
            stop(conn);
            let sync = (*conn).zone().sync;
            if !sync.is_null() && (*sync).flush.get() == (*conn).flush {
                (*sync).flush.set(null_mut());
                (*sync).ready.set(false);
            }
            drop(Box::from_raw((*conn).timer));
            drop(Box::from_raw((*conn).flush));
            drop(Box::from_raw(conn));
        }
    }
}

/// # Safety
/// `conn` must be live.
unsafe fn stop(conn: *mut Conn) {
    // SAFETY: per the contract; events belong to conn.
    unsafe {
        let c = &mut *conn;
        c.stopped = true;
        close(c);
        if (*c.timer).timer_set() != 0 {
            ngx_del_timer(c.timer);
        }
        if (*c.flush).posted() != 0 {
            ngx_delete_posted_event(c.flush);
        }
    }
}

fn close(c: &mut Conn) {
    if !c.pc.connection.is_null() {
        // SAFETY: the connection is ours, opened by ngx_event_connect_peer.
        unsafe { ngx_close_connection(c.pc.connection) };
        c.pc.connection = null_mut();
    }
    c.connected = false;
}

fn exiting() -> bool {
    // SAFETY: plain reads of nginx's process flags.
    unsafe { ngx::ffi::ngx_exiting != 0 || ngx::ffi::ngx_quit != 0 || ngx::ffi::ngx_terminate != 0 }
}

/// Starts connecting to the next address (or Sentinel).
///
/// # Safety
/// `conn` must be live.
unsafe fn connect(conn: *mut Conn) {
    // SAFETY: per the contract; pc's pointers point into the boxed Conn.
    unsafe {
        let c = &mut *conn;
        if c.stopped || exiting() {
            return;
        }
        let zs = c.sync();
        let target = match (&c.primary, zs.sentinel()) {
            (Some(p), true) => {
                c.discovering = false;
                p.clone()
            }
            (None, true) => {
                c.discovering = true;
                zs.addrs[c.next_addr % zs.addrs.len()].clone()
            }
            _ => zs.addrs[c.next_addr % zs.addrs.len()].clone(),
        };
        c.addr = target;
        c.name = ngx_str_t {
            len: c.addr.text.len(),
            data: c.addr.text.as_ptr() as *mut u8,
        };
        c.pc = core::mem::zeroed();
        c.pc.sockaddr = (&raw mut c.addr.storage).cast();
        c.pc.socklen = c.addr.len;
        c.pc.name = &raw mut c.name;
        c.pc.get = Some(ngx_event_get_peer);
        c.pc.log = &raw mut c.log;
        c.pc.set_log_error(NGX_ERROR_INFO);
        let rc = ngx_event_connect_peer(&raw mut c.pc);
        if c.pc.connection.is_null() || (rc != NGX_OK as isize && rc != NGX_AGAIN as isize) {
            c.pc.connection = null_mut();
            fail(conn, LinkError::new(ErrorKind::Connect, "connect() failed"));
            return;
        }
        let nc = c.pc.connection;
        (*nc).data = conn.cast();
        (*(*nc).read).handler = Some(read_handler);
        (*(*nc).write).handler = Some(write_handler);
        ngx_http_sticky_session_conn_idle(nc);
        if rc == NGX_AGAIN as isize {
            ngx_add_timer((*nc).write, CONNECT_TIMEOUT);
        } else {
            connected(conn);
        }
    }
}

/// The socket is connected: say hello.
///
/// # Safety
/// `conn` must be live with an open connection.
unsafe fn connected(conn: *mut Conn) {
    // SAFETY: per the contract.
    unsafe {
        let c = &mut *conn;
        c.connected = true;
        c.got_input = false;
        c.stalled = 0;
        c.idle_ticks = 0;
        let zs = &*c.zone().sync;
        if c.discovering {
            c.discovery.hello(None, 0, &zs.master);
        } else {
            c.link.hello(zs.auth.as_ref(), zs.spec.db, &zs.master);
        }
        ngx_add_timer(c.timer, TICK);
        drive(conn);
    }
}

unsafe extern "C" fn write_handler(wev: *mut ngx_event_t) {
    guard((), || {
        // SAFETY: wev belongs to a connection of ours whose data is its Conn.
        unsafe {
            let nc = (*wev).data as *mut ngx_connection_t;
            let conn = (*nc).data as *mut Conn;
            if (*wev).timedout() != 0 {
                fail(
                    conn,
                    LinkError::new(ErrorKind::Timeout, "connect timed out"),
                );
                return;
            }
            if !(*conn).connected {
                if (*wev).timer_set() != 0 {
                    ngx_del_timer(wev);
                }
                match socket_error((*nc).fd) {
                    0 => connected(conn),
                    e => fail(
                        conn,
                        LinkError::new(
                            ErrorKind::Connect,
                            std::io::Error::from_raw_os_error(e).to_string(),
                        ),
                    ),
                }
                return;
            }
            drive(conn);
        }
    })
}

fn socket_error(fd: libc::c_int) -> libc::c_int {
    let mut err: libc::c_int = 0;
    let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for getsockopt to write.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &raw mut len,
        )
    };
    if rc == -1 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        err
    }
}

unsafe extern "C" fn read_handler(rev: *mut ngx_event_t) {
    guard((), || {
        // SAFETY: rev belongs to a connection of ours whose data is its Conn.
        unsafe {
            let nc = (*rev).data as *mut ngx_connection_t;
            let conn = (*nc).data as *mut Conn;
            if ngx_http_sticky_session_conn_closing(nc) != 0 {
                // The worker is shutting down.
                stop(conn);
                return;
            }
            if !(*conn).connected {
                // Readable before writable: the connect failed.
                write_handler((*nc).write);
                return;
            }
            let mut buf = [0u8; 16384];
            loop {
                let Some(recv) = (*nc).recv else { return };
                let n = recv(nc, buf.as_mut_ptr(), buf.len());
                if n > 0 {
                    (*conn).got_input = true;
                    if !feed(conn, &buf[..n as usize]) {
                        return;
                    }
                    continue;
                }
                if n == NGX_AGAIN as isize {
                    break;
                }
                fail(
                    conn,
                    LinkError::new(ErrorKind::Closed, "connection closed by Redis"),
                );
                return;
            }
            if ngx_handle_read_event(rev, 0) != NGX_OK as isize {
                fail(
                    conn,
                    LinkError::new(ErrorKind::Closed, "cannot wait for input"),
                );
                return;
            }
            drive(conn);
        }
    })
}

/// Gives input to the conversation; false if the connection was dropped.
///
/// # Safety
/// `conn` must be live.
unsafe fn feed(conn: *mut Conn, bytes: &[u8]) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let c = &mut *conn;
        with_zone(c.zone(), |z| feed_zone(conn, bytes, z)).unwrap_or(true)
    }
}

/// [`feed`], with a view of the zone.
///
/// # Safety
/// As for [`feed`].
unsafe fn feed_zone(conn: *mut Conn, bytes: &[u8], z: &Zone<'_, ShmLock>) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let c = &mut *conn;
        let link = if c.discovering {
            &mut c.discovery
        } else {
            &mut c.link
        };
        let progress = match link.input(bytes, Some(z)) {
            Ok(p) => p,
            Err(e) => {
                fail(conn, e);
                return false;
            }
        };
        if let Some((host, port)) = progress.primary {
            match host.parse::<IpAddr>() {
                Ok(ip) => {
                    c.primary = Some(SockAddr::inet(SocketAddr::new(ip, port)));
                    close(c);
                    if (*c.timer).timer_set() != 0 {
                        ngx_del_timer(c.timer);
                    }
                    connect(conn);
                }
                Err(_) => fail(
                    conn,
                    LinkError::new(ErrorKind::Sentinel, format!("bad primary address {host}")),
                ),
            }
            return false;
        }
        if progress.ready {
            c.backoff = BACKOFF_MIN;
            c.sync().ready.set(true);
            if c.leader() {
                c.resync_due = true;
            }
            log_up(c);
        }
        if progress.subscribed {
            c.backoff = BACKOFF_MIN;
            log_up(c);
            let cmd = c.partner;
            if !cmd.is_null() {
                (*cmd).resync_due = true;
            }
        }
        if progress.synced {
            set_state(conn);
        }
        if let Some(why) = &progress.refused {
            if !c.refusing {
                c.refusing = true;
                ngx::ngx_log_error!(
                    NGX_LOG_WARN,
                    c.cycle_log,
                    "sticky_session: zone \"{}\" sync: {} refuses updates: {}; they are \
                     dropped until it accepts them again",
                    c.zone().name(),
                    c.sync().spec,
                    why
                );
            }
        } else if progress.stored && c.refusing {
            c.refusing = false;
            ngx::ngx_log_error!(
                NGX_LOG_NOTICE,
                c.cycle_log,
                "sticky_session: zone \"{}\" sync: {} accepts updates again",
                c.zone().name(),
                c.sync().spec
            );
        }
        let cmd = if c.leader() { conn } else { c.partner };
        if !cmd.is_null() && (*cmd).resync_due {
            let sub = (*cmd).partner;
            if (*cmd).link.is_ready() && !sub.is_null() && (*sub).link.is_ready() {
                (*cmd).resync_due = false;
                (*cmd).link.start_resync(z.stats, z.now);
                (*cmd).link.resync_step(z);
                set_state(cmd);
                if cmd != conn {
                    drive(cmd);
                }
            }
        }
        true
    }
}

fn log_up(c: &mut Conn) {
    if c.up {
        return;
    }
    c.up = true;
    let level = if c.logs_state() {
        NGX_LOG_NOTICE
    } else {
        NGX_LOG_INFO
    };
    ngx::ngx_log_error!(
        level,
        c.cycle_log,
        "sticky_session: zone \"{}\" sync with {} ({}) connected",
        c.zone().name(),
        c.sync().spec,
        c.addr.text
    );
}

/// Publishes the leader's view of the sync state on the status page.
///
/// # Safety
/// `conn` must be live.
unsafe fn set_state(conn: *mut Conn) {
    // SAFETY: per the contract; partner is live too.
    unsafe {
        let c = &*conn;
        let (cmd, sub) = if c.leader() {
            (conn, c.partner)
        } else if c.link.role() == Role::Subscriber {
            (c.partner, conn)
        } else {
            return;
        };
        if cmd.is_null() || sub.is_null() {
            return;
        }
        let stats = c.zone().sync_stats();
        if State::from_u64(stats.state.load(Ordering::Relaxed)) == State::KeyMismatch
            && !(*cmd).link.is_ready()
        {
            return;
        }
        let state = if (*cmd).link.is_ready() && (*sub).link.is_ready() && !(*cmd).link.resyncing()
        {
            State::Connected
        } else if (*cmd).up || (*sub).up || (*cmd).connected || (*sub).connected {
            State::Connecting
        } else {
            State::Down
        };
        stats.state.store(state as u64, Ordering::Relaxed);
    }
}

/// Sends what waits: queued updates (up to the in-flight limit), the next
/// part of a resync, then the output buffer.
///
/// # Safety
/// `conn` must be live.
unsafe fn drive(conn: *mut Conn) {
    // SAFETY: per the contract.
    unsafe {
        let c = &mut *conn;
        if !c.connected || c.pc.connection.is_null() {
            return;
        }
        if !c.discovering && c.link.is_ready() && matches!(c.link.role(), Role::Command { .. }) {
            with_zone(c.zone(), |z| {
                let mut queue = c.sync().queue.borrow_mut();
                while c.link.in_flight() < sync::IN_FLIGHT_LIMIT {
                    let Some((kind, key)) = queue.pop() else {
                        break;
                    };
                    c.link.update(kind, key, z);
                }
                drop(queue);
                if c.link.resyncing()
                    && c.link.in_flight() < sync::IN_FLIGHT_LIMIT / 2
                    && c.link.resync_step(z)
                {
                    set_state(conn);
                }
            });
        }
        let nc = c.pc.connection;
        loop {
            let link = if c.discovering {
                &mut c.discovery
            } else {
                &mut c.link
            };
            let out = link.output();
            if out.is_empty() {
                break;
            }
            let Some(send) = (*nc).send else { return };
            let n = send(nc, out.as_ptr() as *mut u8, out.len());
            if n > 0 {
                link.consume(n as usize);
                continue;
            }
            if n == NGX_AGAIN as isize {
                if ngx_handle_write_event((*nc).write, 0) != NGX_OK as isize {
                    fail(
                        conn,
                        LinkError::new(ErrorKind::Closed, "cannot wait to write"),
                    );
                }
                return;
            }
            fail(conn, LinkError::new(ErrorKind::Closed, "send() failed"));
            return;
        }
    }
}

/// Drops the connection, records why, and retries after a backoff.
///
/// # Safety
/// `conn` must be live.
unsafe fn fail(conn: *mut Conn, e: LinkError) {
    // SAFETY: per the contract.
    unsafe {
        let c = &mut *conn;
        close(c);
        let stats = c.zone().sync_stats();
        if matches!(c.link.role(), Role::Command { .. }) {
            c.sync().ready.set(false);
            if c.link.in_flight() > 0 {
                // Updates sent and not answered may not have been stored.
                stats.lost();
            }
        }
        if c.stopped {
            return;
        }
        stats.failures.fetch_add(1, Ordering::Relaxed);
        stats.error(e.kind, now());
        c.next_addr = c.next_addr.wrapping_add(1);
        if !c.discovering {
            // Ask the Sentinels again: the primary may have moved.
            c.primary = None;
        }
        let was_up = core::mem::replace(&mut c.up, false);
        if was_up || c.backoff == BACKOFF_MIN {
            let level = if c.logs_state() {
                NGX_LOG_WARN
            } else {
                NGX_LOG_INFO
            };
            ngx::ngx_log_error!(
                level,
                c.cycle_log,
                "sticky_session: zone \"{}\" sync with {} ({}) {}: {}; sessions keep routing \
                 locally, retrying",
                c.zone().name(),
                c.sync().spec,
                c.addr.text,
                if was_up { "lost" } else { "failed" },
                e
            );
        }
        if e.kind == ErrorKind::KeyMismatch {
            if c.logs_state() {
                stats
                    .state
                    .store(State::KeyMismatch as u64, Ordering::Relaxed);
            }
            c.backoff = BACKOFF_KEY;
        } else {
            set_state(conn);
            if c.logs_state()
                && State::from_u64(stats.state.load(Ordering::Relaxed)) != State::KeyMismatch
            {
                stats.state.store(State::Down as u64, Ordering::Relaxed);
            }
        }
        let wait = c.backoff;
        c.backoff = (c.backoff * 2)
            .min(BACKOFF_MAX)
            .max(c.backoff.min(BACKOFF_KEY));
        if e.kind != ErrorKind::KeyMismatch {
            c.backoff = c.backoff.min(BACKOFF_MAX);
        }
        if !exiting() {
            ngx_add_timer(c.timer, wait);
        }
    }
}

/// Reconnects, or checks a live connection (stalled answers, keep-alive).
unsafe extern "C" fn timer_handler(ev: *mut ngx_event_t) {
    guard((), || {
        // SAFETY: ev is a Conn's timer; data is the Conn.
        unsafe {
            let conn = (*ev).data as *mut Conn;
            let c = &mut *conn;
            if c.stopped || exiting() {
                return;
            }
            if c.pc.connection.is_null() {
                connect(conn);
                return;
            }
            if !c.connected {
                return;
            }
            let link = if c.discovering {
                &mut c.discovery
            } else {
                &mut c.link
            };
            if link.in_flight() > 0 {
                if c.got_input {
                    c.stalled = 0;
                } else {
                    c.stalled += 1;
                    if c.stalled >= STALL_TICKS {
                        fail(conn, LinkError::new(ErrorKind::Timeout, "no answer"));
                        return;
                    }
                }
            } else {
                c.idle_ticks += 1;
                if c.idle_ticks % PING_TICKS == 0 {
                    link.ping();
                }
            }
            c.got_input = false;
            ngx_add_timer(ev, TICK);
            drive(conn);
        }
    })
}

/// Sends the updates queued by requests since the last turn of the loop.
unsafe extern "C" fn flush_handler(ev: *mut ngx_event_t) {
    guard((), || {
        // SAFETY: ev is a Conn's flush event; data is the Conn.
        unsafe {
            let conn = (*ev).data as *mut Conn;
            if !(*conn).stopped {
                drive(conn);
            }
        }
    })
}
