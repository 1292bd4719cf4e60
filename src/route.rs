//! Routes in ids (`route=suffix:SEP` / `route=prefix:SEP`): many
//! applications tag their own ids with the server that issued them (Tomcat's
//! `jvmRoute`: `ABC123.node1`; PHP's `session_create_id('node1-')`). The
//! module learns route → server from the ids it already learns (a route
//! seen from one server only is bound to it; one seen from two is
//! ambiguous and never used) and routes an id the table does not know
//! (evicted, expired here but alive in the application, learned by another
//! nginx, a restart without `state=`) by its route.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::store::WriteLock;

/// Longest route kept, in bytes.
pub const MAX_ROUTE: usize = 32;
/// Routes per zone.
pub const MAX_ROUTES: usize = 256;

/// Where the route sits in an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// The separator byte.
    pub sep: u8,
    /// After the last separator (`true`), or before the first.
    pub suffix: bool,
}

impl RouteSpec {
    /// Parses `suffix:SEP` or `prefix:SEP` (one punctuation byte).
    pub fn parse(v: &[u8]) -> Option<RouteSpec> {
        let (suffix, sep) = match v {
            [b's', b'u', b'f', b'f', b'i', b'x', b':', sep] => (true, *sep),
            [b'p', b'r', b'e', b'f', b'i', b'x', b':', sep] => (false, *sep),
            _ => return None,
        };
        sep.is_ascii_punctuation()
            .then_some(RouteSpec { sep, suffix })
    }

    /// The route of `id`, if it has one of a sane length.
    pub fn route_of<'a>(&self, id: &'a [u8]) -> Option<&'a [u8]> {
        let route = if self.suffix {
            let at = memchr::memrchr(self.sep, id)?;
            &id[at + 1..]
        } else {
            let at = memchr::memchr(self.sep, id)?;
            &id[..at]
        };
        (!route.is_empty() && route.len() <= MAX_ROUTE && route.len() < id.len()).then_some(route)
    }
}

fn hash(route: &[u8]) -> u64 {
    // FNV-1a 64: routes are short, public server names.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in route {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// Server value of an ambiguous route.
const AMBIGUOUS: u32 = 0;

#[repr(C)]
#[derive(Default)]
struct Entry {
    /// Route hash, 0 = free. Written last when an entry is claimed.
    key: AtomicU64,
    /// Its server's identity, or [`AMBIGUOUS`].
    server: AtomicU32,
    len: AtomicU32,
    text: [AtomicU64; MAX_ROUTE / 8],
}

/// Routes of one zone, in shared memory (zeroed memory is empty).
#[repr(C)]
pub struct Routes {
    entries: [Entry; MAX_ROUTES],
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            entries: core::array::from_fn(|_| Entry::default()),
        }
    }
}

impl Routes {
    fn find(&self, key: u64) -> Result<&Entry, Option<&Entry>> {
        let start = key as usize % MAX_ROUTES;
        for i in 0..MAX_ROUTES {
            let e = &self.entries[(start + i) % MAX_ROUTES];
            match e.key.load(Ordering::Acquire) {
                k if k == key => return Ok(e),
                0 => return Err(Some(e)),
                _ => {}
            }
        }
        Err(None)
    }

    /// `server` issued an id with `route`. Answers whether the route table
    /// changed (a new route, or one now seen from a second server).
    pub fn learn(&self, lock: &(impl WriteLock + ?Sized), route: &[u8], server: u32) -> bool {
        let key = hash(route);
        // The common case: the route is known, from this server.
        if let Ok(e) = self.find(key) {
            let s = e.server.load(Ordering::Acquire);
            if s == server || s == AMBIGUOUS {
                return false;
            }
        }
        lock.lock();
        let changed = match self.find(key) {
            Ok(e) => {
                let s = e.server.load(Ordering::Acquire);
                let seen_elsewhere = s != server && s != AMBIGUOUS;
                if seen_elsewhere {
                    e.server.store(AMBIGUOUS, Ordering::Release);
                }
                seen_elsewhere
            }
            Err(Some(e)) => {
                let mut words = [0u64; MAX_ROUTE / 8];
                for (i, &b) in route.iter().enumerate() {
                    words[i / 8] |= u64::from(b) << (8 * (i % 8));
                }
                for (w, v) in e.text.iter().zip(words) {
                    w.store(v, Ordering::Relaxed);
                }
                e.len.store(route.len() as u32, Ordering::Relaxed);
                e.server.store(server, Ordering::Release);
                e.key.store(key, Ordering::Release);
                true
            }
            // Full: routes beyond MAX_ROUTES are not learned.
            Err(None) => false,
        };
        lock.unlock();
        changed
    }

    /// The server `route` is bound to (`None`: unknown or ambiguous).
    pub fn lookup(&self, route: &[u8]) -> Option<u32> {
        let e = self.find(hash(route)).ok()?;
        let s = e.server.load(Ordering::Acquire);
        (s != AMBIGUOUS).then_some(s)
    }

    /// Every route, with its server (`None` when ambiguous), for status.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Option<u32>)) {
        for e in &self.entries {
            if e.key.load(Ordering::Acquire) == 0 {
                continue;
            }
            let len = (e.len.load(Ordering::Relaxed) as usize).min(MAX_ROUTE);
            let mut text = [0u8; MAX_ROUTE];
            for (i, w) in e.text.iter().enumerate() {
                text[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
            }
            let s = e.server.load(Ordering::Acquire);
            f(&text[..len], (s != AMBIGUOUS).then_some(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoLock;
    impl WriteLock for NoLock {
        fn lock(&self) {}
        fn unlock(&self) {}
    }

    #[test]
    fn routes_in_ids() {
        let tomcat = RouteSpec::parse(b"suffix:.").unwrap();
        assert_eq!(tomcat.route_of(b"ABC123.node1"), Some(&b"node1"[..]));
        assert_eq!(tomcat.route_of(b"A.B.node2"), Some(&b"node2"[..]));
        assert_eq!(tomcat.route_of(b"ABC123"), None);
        assert_eq!(tomcat.route_of(b"ABC123."), None);
        let php = RouteSpec::parse(b"prefix:-").unwrap();
        assert_eq!(php.route_of(b"node1-abc-def"), Some(&b"node1"[..]));
        assert_eq!(php.route_of(b"-abc"), None);
        let long = [b"x".repeat(40), b".y".to_vec()].concat();
        assert_eq!(php.route_of(&long), None);
        assert_eq!(RouteSpec::parse(b"suffix:a"), None);
        assert_eq!(RouteSpec::parse(b"middle:."), None);
    }

    #[test]
    fn one_server_binds_two_make_it_ambiguous() {
        let r = Routes::default();
        assert!(r.learn(&NoLock, b"node1", 11));
        assert!(!r.learn(&NoLock, b"node1", 11));
        assert!(r.learn(&NoLock, b"node2", 22));
        assert_eq!(r.lookup(b"node1"), Some(11));
        assert_eq!(r.lookup(b"node3"), None);
        assert!(r.learn(&NoLock, b"node2", 11));
        assert_eq!(r.lookup(b"node2"), None, "seen from two servers");
        assert!(!r.learn(&NoLock, b"node2", 22));
        let mut seen = Vec::new();
        r.for_each(|t, s| seen.push((t.to_vec(), s)));
        seen.sort();
        assert_eq!(
            seen,
            vec![(b"node1".to_vec(), Some(11)), (b"node2".to_vec(), None)]
        );
    }

    #[test]
    fn a_full_table_learns_no_more() {
        let r = Routes::default();
        for i in 0..MAX_ROUTES {
            assert!(r.learn(&NoLock, format!("n{i}").as_bytes(), 5));
        }
        assert!(!r.learn(&NoLock, b"one-more", 5));
        assert_eq!(r.lookup(b"one-more"), None);
        assert_eq!(r.lookup(b"n7"), Some(5));
    }
}
