//! What one request carries from the balancer to the response filters.

use ngx::ffi::{ngx_http_request_t, ngx_str_t};

use super::conf::{ctx_index, SrvConf};
use crate::inflate::Inflater;
use crate::scanner::{Between, CarryStore, Mode, Scanner, MAX_TOKEN};
use crate::session::{Learning, Status};

/// Per-request state shared by the balancer and the filters, in `r->ctx`.
pub struct RequestCtx {
    /// The upstream's configuration (lives as long as the cycle).
    pub conf: *const SrvConf,
    /// The id the request carried (points into the request's arguments).
    pub id: ngx_str_t,
    /// The decision so far.
    pub status: Status,
    /// The request's key, whether the table knew it, the last id learned.
    pub learning: Learning,
    /// The server the table mapped the id to (valid on `Hit`).
    pub target: u32,
    /// The server that answered: set by every successful `get`.
    pub served: Option<u32>,
    /// How the body is scanned, while it is (set by the header filter,
    /// cleared when the body ends or, with `learn=first`, once it taught an id).
    pub scan: Option<Mode>,
    /// Body bytes still to come when the length is known (`Content-Length`),
    /// else -1.
    pub body_left: i64,
    /// Body bytes (after inflating) this response may still have scanned.
    pub scan_left: usize,
    /// Body scanner in the request pool, started only when a buffer ends
    /// inside a token or tag; until then each buffer is scanned in place.
    pub scanner: *mut Scanner<PoolCarry>,
    /// Inflater for a compressed body (owned; dropped by a pool cleanup).
    pub inflater: *mut Inflater,
    /// The header filter asked for the body in memory (no filter above had):
    /// given back when the scan ends early.
    pub took_memory: bool,
    /// While buffers are scanned in place: what the last one left open (a
    /// JSON member awaiting its value, JSON structure before the next).
    pub between: Between,
}

/// A scanner's carry buffer, taken from the request pool the first time a
/// buffer ends inside a token (most small bodies never need it), as large
/// as the token needs: 256 bytes first, doubled while it grows (a short JSON
/// answer, all one token, is carried whole until its last buffer).
pub struct PoolCarry {
    pool: *mut ngx::ffi::ngx_pool_t,
    buf: *mut u8,
    cap: usize,
}

impl PoolCarry {
    /// Carry storage from `pool`, allocated on first use.
    pub fn new(pool: *mut ngx::ffi::ngx_pool_t) -> Self {
        PoolCarry {
            pool,
            buf: core::ptr::null_mut(),
            cap: 0,
        }
    }
}

impl CarryStore for PoolCarry {
    fn get(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > self.cap {
            if len > MAX_TOKEN {
                return None;
            }
            let cap = len.next_power_of_two().clamp(256, MAX_TOKEN);
            // SAFETY: the request pool outlives the scanner that lives in it;
            // pcalloc returns `cap` zeroed (initialised) bytes or NULL.
            let mem = unsafe { ngx::ffi::ngx_pcalloc(self.pool, cap) } as *mut u8;
            if mem.is_null() {
                return None;
            }
            if !self.buf.is_null() {
                // SAFETY: the old buffer holds `self.cap` initialised bytes,
                // the new one more; two pool allocations never overlap.
                unsafe { core::ptr::copy_nonoverlapping(self.buf, mem, self.cap) };
            }
            // The old buffer goes back with the pool (at most 1.9 KB of
            // smaller ones per response).
            self.buf = mem;
            self.cap = cap;
        }
        if self.buf.is_null() {
            return Some(&mut []); // nothing asked for yet
        }
        // SAFETY: `buf` holds `cap` >= `len` initialised bytes of pool memory
        // owned by this scanner.
        Some(unsafe { core::slice::from_raw_parts_mut(self.buf, self.cap) })
    }
}

/// This request's context, if our balancer created one.
///
/// # Safety
/// `r` must be a valid request.
pub unsafe fn request_ctx<'a>(r: *mut ngx_http_request_t) -> Option<&'a mut RequestCtx> {
    // SAFETY: r->ctx has one slot per HTTP module; ours is NULL or a RequestCtx.
    unsafe { ((*(*r).ctx.add(ctx_index())) as *mut RequestCtx).as_mut() }
}
