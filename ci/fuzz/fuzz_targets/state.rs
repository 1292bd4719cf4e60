//! State files: arbitrary bytes are refused or decoded, never a panic; a
//! decoded file restores into a table without breaking it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sticky_session::state::decode;
use sticky_session::store::{Expiry, Header, Slot, Table, WriteLock, WAYS};

struct NoLock;
impl WriteLock for NoLock {
    fn lock(&self) {}
    fn unlock(&self) {}
}

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = decode(data) {
        let header = Header::default();
        let slots: Vec<Slot> = (0..2 * WAYS).map(|_| Slot::default()).collect();
        let t = Table::format(&header, &slots, d.secret).unwrap();
        let n = d.restore_into(&t, &NoLock, 1_000_000, Expiry::idle(3600));
        assert!(n <= d.len());
        let mut live = 0;
        t.for_each_live(1_000_000, Expiry::idle(3600), |_| live += 1);
        assert!(live <= t.capacity());
    }
});
