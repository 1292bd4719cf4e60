//! `balance=sessions` in nginx: new sessions go to the usable server with
//! the fewest live sessions per weight ([`crate::placement`]), and worker 0
//! recounts each such zone's sessions per server every
//! [`RECOUNT_EVERY`] seconds, one slice of the table per turn of its event
//! loop (so a large zone never stalls it).

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::collections::HashMap;

use ngx::ffi::{ngx_add_timer, ngx_cycle_t, ngx_event_t, ngx_msec_t};

use super::util::{guard, now, post};
use super::zone::{for_each_zone_ctx, ZoneCtx};
use crate::placement::RECOUNT_EVERY;

/// Table slots walked per turn of the event loop.
const SLICE: usize = 1 << 16;

/// Rotates ties between equally loaded servers, per process.
static TURN: AtomicUsize = AtomicUsize::new(0);

/// The next tie-breaking turn.
pub fn next_turn() -> usize {
    TURN.fetch_add(1, Ordering::Relaxed)
}

/// A recount in progress.
struct Walk {
    zones: Vec<*const ZoneCtx>,
    zone: usize,
    at: usize,
    counted: HashMap<u32, u64>,
}

static mut EVENT: MaybeUninit<ngx_event_t> = MaybeUninit::zeroed();
static mut WALK: Option<Walk> = None;

/// Arms worker 0's recount timer if some zone places by sessions.
///
/// # Safety
/// `cycle` must be the process's live cycle; called once, from init_process.
pub unsafe fn start(cycle: *mut ngx_cycle_t) {
    // SAFETY: per the contract; EVENT is this process's own.
    unsafe {
        let mut any = false;
        for_each_zone_ctx(cycle, |_, z| any |= z.balance && z.counts().is_some());
        if any {
            let ev = (*addr_of_mut!(EVENT)).as_mut_ptr();
            (*ev).handler = Some(step);
            (*ev).log = (*cycle).log;
            (*ev).data = cycle.cast();
            (*ev).set_cancelable(1);
            ngx_add_timer(ev, RECOUNT_EVERY as ngx_msec_t * 1000);
        }
    }
}

/// One slice of the recount (starting one when none runs).
unsafe extern "C" fn step(ev: *mut ngx_event_t) {
    guard((), || {
        // SAFETY: ev is EVENT, armed by start in this process; the zones
        // belong to the cycle, which outlives it.
        unsafe {
            let walk = &mut *addr_of_mut!(WALK);
            if walk.is_none() {
                let mut zones = Vec::new();
                for_each_zone_ctx((*ev).data.cast(), |_, z| {
                    if z.balance && z.counts().is_some() {
                        zones.push(z as *const ZoneCtx);
                    }
                });
                *walk = Some(Walk {
                    zones,
                    zone: 0,
                    at: 0,
                    counted: HashMap::new(),
                });
            }
            let Some(w) = walk.as_mut() else { return };
            let now = now();
            if let Some(&zone) = w.zones.get(w.zone) {
                let zone = &*zone;
                match zone.table() {
                    Some(table) => {
                        let counted = &mut w.counted;
                        w.at = table.for_each_live_from(w.at, SLICE, now, zone.keep, |s| {
                            *counted.entry(s).or_insert(0) += 1
                        });
                        if w.at >= table.capacity() {
                            if let Some(c) = zone.counts() {
                                c.recounted(|s| counted.get(&s).copied().unwrap_or(0));
                            }
                            (w.zone, w.at) = (w.zone + 1, 0);
                            counted.clear();
                        }
                    }
                    None => (w.zone, w.at) = (w.zone + 1, 0),
                }
            }
            let exiting = ngx::ffi::ngx_exiting != 0 || ngx::ffi::ngx_quit != 0;
            if w.zone < w.zones.len() {
                if !exiting {
                    post(ev);
                }
            } else {
                *walk = None;
                if !exiting && ngx::ffi::ngx_terminate == 0 {
                    ngx_add_timer(ev, RECOUNT_EVERY as ngx_msec_t * 1000);
                }
            }
        }
    })
}
