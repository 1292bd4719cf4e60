//! A zone's sync settings, read when the configuration is (key and
//! credentials files, Redis addresses), and this process's queue of updates
//! for Redis: the one thing the request path touches ([`ZoneSync::publish`]
//! only queues a session hash and posts the flush event).

use core::cell::{Cell, RefCell};
use core::ptr::null_mut;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;

use ngx::ffi::ngx_event_t;

use super::util::post;
use crate::config::SyncConf;
use crate::sync::{self, Auth, Endpoint, Kind, Names, Queue, SyncStats};

/// A socket address for `ngx_event_connect_peer`, with its text for logs.
#[derive(Clone)]
pub struct SockAddr {
    /// The address.
    pub storage: libc::sockaddr_storage,
    /// Its length.
    pub len: libc::socklen_t,
    /// As text, for logs.
    pub text: String,
}

impl SockAddr {
    /// An IPv4 or IPv6 address.
    pub fn inet(a: SocketAddr) -> Self {
        // SAFETY: sockaddr_storage is plain data; zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        let len = match a {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { core::ptr::write((&raw mut storage).cast(), sin) };
                core::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { core::ptr::write((&raw mut storage).cast(), sin6) };
                core::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        SockAddr {
            storage,
            len: len as libc::socklen_t,
            text: a.to_string(),
        }
    }

    fn unix(path: &str) -> Result<Self, String> {
        // SAFETY: sockaddr_storage is plain data; zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        let sun = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_un>() };
        if path.len() >= sun.sun_path.len() {
            return Err(format!("socket path \"{path}\" is too long"));
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sun.sun_path.iter_mut().zip(path.bytes()) {
            *d = s as libc::c_char;
        }
        Ok(SockAddr {
            storage,
            len: core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            text: format!("unix:{path}"),
        })
    }
}

fn resolve(host: &str, port: u16) -> Result<Vec<SockAddr>, String> {
    let addrs: Vec<SockAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve \"{host}\": {e}"))?
        .map(SockAddr::inet)
        .collect();
    if addrs.is_empty() {
        return Err(format!("no address for \"{host}\""));
    }
    Ok(addrs)
}

/// Reads a key or credentials file: a regular file nobody else may read,
/// of sane size. The error says what is wrong with it.
fn read_secret_file(path: &Path) -> Result<Vec<u8>, String> {
    let name = path.display();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot open \"{name}\": {e}"))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat \"{name}\": {e}"))?;
    if !meta.is_file() {
        return Err(format!("\"{name}\" is not a regular file"));
    }
    if meta.mode() & 0o004 != 0 {
        return Err(format!(
            "\"{name}\" must not be readable by others (chmod 600 or 640)"
        ));
    }
    if meta.len() > sync::MAX_SECRET_FILE {
        return Err(format!(
            "\"{name}\" is larger than {} bytes",
            sync::MAX_SECRET_FILE
        ));
    }
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut content)
        .map_err(|e| format!("cannot read \"{name}\": {e}"))?;
    Ok(content)
}

/// The sync settings of one zone, built when the configuration is read
/// (files read and names resolved then, by the master, as nginx does for
/// `server` lines); lives in the configuration's pool.
pub struct ZoneSync {
    /// The `sync=` value, for logs, the status page and conflict checks.
    pub spec: sync::Spec,
    /// Redis (or the Sentinels), resolved when the configuration was read.
    pub addrs: Vec<SockAddr>,
    /// The master name the Sentinels are asked for (empty without them).
    pub master: String,
    /// Credentials from `sync_auth=`.
    pub auth: Option<Auth>,
    /// The table's hash key, from `sync_key=`.
    pub secret: [u64; 2],
    /// The key check kept in Redis.
    pub fingerprint: u64,
    /// The zone's keys and channel in Redis.
    pub names: Names,
    /// The key and credentials files, to refuse another upstream sharing the
    /// zone with other settings.
    pub files: (Vec<u8>, Option<Vec<u8>>),
    /// Updates waiting for this process's command connection.
    pub queue: RefCell<Queue>,
    /// That connection's flush event (NULL: none in this process).
    pub flush: Cell<*mut ngx_event_t>,
    /// That connection is ready for updates.
    pub ready: Cell<bool>,
}

impl ZoneSync {
    /// Reads the files and resolves the addresses of `conf` (file paths
    /// already made absolute).
    pub fn load(conf: &SyncConf<'_>, zone: &[u8]) -> Result<ZoneSync, String> {
        let path = |p: &[u8]| Path::new(std::ffi::OsStr::from_bytes(p)).to_path_buf();
        let key = read_secret_file(&path(conf.key_file)).map_err(|e| format!("sync_key: {e}"))?;
        let secret = sync::secret_from_key(&key).map_err(|e| {
            format!(
                "sync_key \"{}\" {e}",
                String::from_utf8_lossy(conf.key_file)
            )
        })?;
        let auth = match conf.auth_file {
            Some(f) => {
                let content = read_secret_file(&path(f)).map_err(|e| format!("sync_auth: {e}"))?;
                Some(
                    sync::parse_auth(&content).map_err(|e| {
                        format!("sync_auth \"{}\": {e}", String::from_utf8_lossy(f))
                    })?,
                )
            }
            None => None,
        };
        let (addrs, master) = match &conf.spec.endpoint {
            Endpoint::Tcp { host, port } => (resolve(host, *port)?, String::new()),
            Endpoint::Unix(p) => (vec![SockAddr::unix(p)?], String::new()),
            Endpoint::Sentinel { nodes, master } => {
                let mut all = Vec::new();
                for (h, p) in nodes {
                    all.extend(resolve(h, *p)?);
                }
                (all, master.clone())
            }
        };
        Ok(ZoneSync {
            spec: conf.spec.clone(),
            addrs,
            master,
            auth,
            secret,
            fingerprint: sync::fingerprint(secret),
            names: Names::new(zone),
            files: (conf.key_file.to_vec(), conf.auth_file.map(<[u8]>::to_vec)),
            queue: RefCell::new(Queue::default()),
            flush: Cell::new(null_mut()),
            ready: Cell::new(false),
        })
    }

    /// Redis is found through Sentinels.
    pub fn sentinel(&self) -> bool {
        matches!(self.spec.endpoint, Endpoint::Sentinel { .. })
    }

    /// Queues session `key` for Redis (request path: no I/O, bounded).
    pub fn publish(&self, stats: &SyncStats, kind: Kind, key: u64) {
        let flush = self.flush.get();
        if flush.is_null() {
            return;
        }
        if !self.queue.borrow_mut().push(kind, key) {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            stats.lost();
            return;
        }
        // SAFETY: flush is this process's live connection's event (set by
        // sync::start, cleared by sync::stop_all); workers are single-threaded.
        unsafe {
            if self.ready.get() && (*flush).posted() == 0 {
                post(flush);
            }
        }
    }
}
