//! Store operations against a simple model. With at most 8 distinct ids
//! nothing is ever evicted, so the table must agree with the model exactly;
//! with many ids it may forget (eviction) but never misroute.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sticky_session::store::{Bind, Expiry, Header, Learned, Lookup, Slot, Table, WriteLock, WAYS};

struct NoLock;
impl WriteLock for NoLock {
    fn lock(&self) {}
    fn unlock(&self) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, ops)) = data.split_first() else {
        return;
    };
    let few = mode & 1 == 0;
    let exp = Expiry {
        idle: 50,
        max_age: if mode & 2 != 0 { 600 } else { 0 },
    };
    let header = Header::default();
    let slots: Vec<Slot> = (0..4 * WAYS).map(|_| Slot::default()).collect();
    let t = Table::format(&header, &slots, [7, 9]).unwrap();
    // Model: id -> (server, last use, born).
    let mut model: HashMap<u8, (u32, u32, u32)> = HashMap::new();
    let mut now: u32 = 60 * 1000;
    let live = |m: &(u32, u32, u32), now: u32| {
        now - m.1 <= exp.idle && (exp.max_age == 0 || (now / 60 - m.2 / 60) * 60 < exp.max_age)
    };
    for op in ops.chunks(2) {
        let (code, arg) = (op[0], op.get(1).copied().unwrap_or(0));
        let id = if few { arg % 8 } else { arg };
        let key = t.key(&[id]);
        match code % 4 {
            0 => {
                let server = u32::from(code >> 2);
                let rebind = code & 0x80 != 0;
                let bind = if rebind { Bind::Rebind } else { Bind::Keep };
                let got = t.learn(&NoLock, key, server, now, exp, bind);
                let m = model.get(&id).copied().filter(|m| live(m, now));
                match m {
                    Some((s, _, born)) if s == server => {
                        if few {
                            assert_eq!(got, Learned::Refreshed);
                        }
                        // With many ids the table may have evicted it: then
                        // it begins again now, as the table says.
                        let born = if got == Learned::New { now } else { born };
                        model.insert(id, (s, now, born));
                    }
                    Some((s, _, born)) => {
                        if few {
                            assert_eq!(
                                got,
                                if rebind {
                                    Learned::Rebound
                                } else {
                                    Learned::Kept
                                }
                            );
                        }
                        if rebind || got == Learned::New {
                            model.insert(
                                id,
                                (server, now, if got == Learned::New { now } else { born }),
                            );
                        } else if got == Learned::Kept {
                            model.insert(id, (s, model[&id].1, born));
                        }
                    }
                    None => {
                        if few {
                            assert_eq!(got, Learned::New);
                        }
                        model.insert(id, (server, now, now));
                    }
                }
            }
            1 => {
                let got = t.lookup(key, now, exp);
                match model.get(&id).copied() {
                    Some(m) if live(&m, now) => {
                        match got {
                            Lookup::Hit(s) => assert_eq!(s, m.0, "misrouted"),
                            _ => assert!(!few, "forgot a live session"),
                        }
                        if matches!(got, Lookup::Hit(_)) {
                            model.insert(id, (m.0, now, m.2));
                        }
                    }
                    _ => assert!(!matches!(got, Lookup::Hit(_)), "hit on a dead session"),
                }
            }
            2 => now += u32::from(arg % 64),
            _ => {
                t.purge(&NoLock, now, exp);
            }
        }
    }
});
