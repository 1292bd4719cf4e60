//! Whatever a Redis (or something posing as one) sends: every role's
//! conversation refuses it or takes it, never a panic, never more memory
//! than its bounds, never a session that is not in the reply. The input is
//! split at its first byte's position too, so every split point of a reply
//! stream is tried across runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sticky_session::store::{Expiry, Header, Slot, Table, WriteLock, WAYS};
use sticky_session::sync::{Kind, Link, Names, Role, SyncStats, Zone, MAX_REPLY};

struct NoLock;
impl WriteLock for NoLock {
    fn lock(&self) {}
    fn unlock(&self) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let header = Header::default();
    let slots: Vec<Slot> = (0..4 * WAYS).map(|_| Slot::default()).collect();
    let table = Table::format(&header, &slots, [1, 2]).unwrap();
    let stats = SyncStats::default();
    let z = Zone {
        table: &table,
        lock: &NoLock,
        stats: &stats,
        exp: Expiry::idle(600),
        now: 1_000_000,
        now_ms: 1_000_000_000,
    };
    let role = match first % 4 {
        0 => Role::Command { leader: true },
        1 => Role::Command { leader: false },
        2 => Role::Subscriber,
        _ => Role::Sentinel,
    };
    let mut link = Link::new(role, Names::new(b"z"), 7, 9);
    link.hello(None, 1, "m");
    let key = table.key(b"id");
    table.learn(&NoLock, key, 3, 1_000_000, Expiry::idle(600), sticky_session::store::Bind::Keep);
    link.update(Kind::Keep, key, &z);
    link.start_resync(&stats, 1_000_000);
    link.resync_step(&z);
    let cut = usize::from(first).min(rest.len());
    for part in [&rest[..cut], &rest[cut..]] {
        if link.input(part, Some(&z)).is_err() {
            return;
        }
        assert!(link.output().len() < 64 * MAX_REPLY);
    }
});
