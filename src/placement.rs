//! Where a new session goes with `balance=sessions`: to the server holding
//! the fewest live sessions relative to its weight, so a server that joined
//! late or was restarted catches up instead of staying empty while the others
//! hold thousands of long sessions (round robin spreads requests, not
//! sessions).
//!
//! The counts live in shared memory next to the table: a periodic recount
//! (a walk of the table, a slice per turn of worker 0's event loop) sets
//! each server's live sessions, and every session recorded since adds one,
//! so placement reacts at once between recounts.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Servers tracked per zone; a zone with more falls back to round robin for
/// the servers it cannot track (they count as full).
pub const MAX_SERVERS: usize = 256;

/// Seconds between two recounts.
pub const RECOUNT_EVERY: u32 = 5;

#[repr(C)]
#[derive(Default)]
struct ServerCount {
    /// The server's identity (`store::server_id`), 0 = free.
    server: AtomicU32,
    /// Live sessions at the last recount.
    live: AtomicU64,
    /// Sessions recorded since.
    since: AtomicU64,
}

/// Live sessions per server of one zone, shared by all workers.
#[repr(C)]
pub struct Counts {
    servers: [ServerCount; MAX_SERVERS],
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            servers: core::array::from_fn(|_| ServerCount::default()),
        }
    }
}

impl Counts {
    fn slot(&self, server: u32, claim: bool) -> Option<&ServerCount> {
        let server = server.max(1);
        let start = server as usize % MAX_SERVERS;
        for i in 0..MAX_SERVERS {
            let s = &self.servers[(start + i) % MAX_SERVERS];
            let cur = s.server.load(Ordering::Acquire);
            if cur == server {
                return Some(s);
            }
            if cur == 0 {
                if !claim {
                    return None;
                }
                match s
                    .server
                    .compare_exchange(0, server, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Some(s),
                    Err(now) if now == server => return Some(s),
                    Err(_) => {}
                }
            }
        }
        None
    }

    /// A session was recorded for `server`.
    pub fn add(&self, server: u32) {
        if let Some(s) = self.slot(server, true) {
            s.since.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Live sessions of `server` (`None` if it cannot be tracked).
    pub fn get(&self, server: u32) -> Option<u64> {
        self.slot(server, true)
            .map(|s| s.live.load(Ordering::Relaxed) + s.since.load(Ordering::Relaxed))
    }

    /// Publishes a recount: `counted(server)` live sessions for every tracked
    /// server (those the walk found none of get 0).
    pub fn recounted(&self, counted: impl Fn(u32) -> u64) {
        for s in &self.servers {
            let server = s.server.load(Ordering::Acquire);
            if server != 0 {
                s.live.store(counted(server), Ordering::Relaxed);
                s.since.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// The candidate with the fewest sessions per unit of weight, among
/// `(sessions, weight)` pairs; ties go to the first one at or after `start`
/// (rotated by the caller), so equal servers share new sessions in turn.
pub fn least_loaded(candidates: &[(u64, u32)], start: usize) -> Option<usize> {
    let n = candidates.len();
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let (c, w) = candidates[i];
        let w = u128::from(w.max(1));
        best = match best {
            None => Some(i),
            // c/w < bc/bw, without division.
            Some(b) => {
                let (bc, bw) = candidates[b];
                if u128::from(c) * u128::from(bw.max(1)) < u128::from(bc) * w {
                    Some(i)
                } else {
                    Some(b)
                }
            }
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_recount() {
        let c = Counts::default();
        assert_eq!(c.get(7), Some(0));
        c.add(7);
        c.add(7);
        c.add(9);
        assert_eq!((c.get(7), c.get(9)), (Some(2), Some(1)));
        c.recounted(|s| if s == 7 { 40 } else { 0 });
        assert_eq!((c.get(7), c.get(9)), (Some(40), Some(0)));
        c.add(9);
        assert_eq!(c.get(9), Some(1));
        // Collisions on the home slot still find their own entry.
        let k = MAX_SERVERS as u32;
        c.add(k);
        c.add(2 * k);
        assert_eq!((c.get(k), c.get(2 * k)), (Some(1), Some(1)));
    }

    #[test]
    fn a_full_tracker_says_so() {
        let c = Counts::default();
        for s in 1..=MAX_SERVERS as u32 {
            c.add(s);
        }
        assert_eq!(c.get(MAX_SERVERS as u32 + 1), None);
        assert_eq!(c.get(3), Some(1));
    }

    #[test]
    fn the_emptiest_per_weight_wins_and_ties_rotate() {
        assert_eq!(least_loaded(&[(30, 1), (30, 1), (0, 1)], 0), Some(2));
        assert_eq!(least_loaded(&[(30, 1), (40, 2), (25, 1)], 0), Some(1));
        let equal = [(5, 1), (5, 1), (5, 1)];
        let picks: Vec<_> = (0..3).map(|s| least_loaded(&equal, s).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2]);
        assert_eq!(least_loaded(&[], 0), None);
    }

    #[test]
    fn an_empty_server_catches_up_then_shares() {
        // Two servers with 30 sessions each, a third joins empty.
        let mut held = [30u64, 30, 0];
        let mut got = [0u32; 3];
        for n in 0..60 {
            let c: Vec<(u64, u32)> = held.iter().map(|&h| (h, 1)).collect();
            let i = least_loaded(&c, n).unwrap();
            held[i] += 1;
            got[i] += 1;
        }
        assert_eq!(got[2], 40, "{got:?}");
        assert_eq!(held, [40, 40, 40]);
    }
}
