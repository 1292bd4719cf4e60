//! Reading the candidate ids a request carries, from each configured source.

use core::mem::size_of;

use ngx::ffi::{
    ngx_buf_t, ngx_http_get_indexed_variable, ngx_http_request_t, ngx_pnalloc,
    ngx_pool_cleanup_add, ngx_str_t, ngx_uint_t,
};

#[cfg(not(ngx_cookie_list))]
use super::util::array;
use super::util::{body_no_buffering, bytes};
use crate::extract::{cookie_ids, is_form, path_param_ids, query_ids, split_target};
use crate::id::Names;

/// Longest prefix of a urlencoded request body searched for an id.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A `lookup=` source, with variables resolved to their index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Query,
    Path,
    Body,
    Cookie,
    Variable(ngx_uint_t),
}

/// Calls `f` with each candidate id of `r` from `source` until `f` returns
/// true; returns whether it did. Every id handed to `f` lives as long as the
/// request.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn candidates<'a>(
    r: *mut ngx_http_request_t,
    source: Source,
    names: &Names,
    max_len: usize,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    // SAFETY: r is live; its strings and buffers live as long as it.
    unsafe {
        match source {
            Source::Query => {
                let (_, query) = split_target(bytes(&(*r).unparsed_uri));
                query_ids(query, names, max_len, f)
            }
            Source::Path => {
                let (path, _) = split_target(bytes(&(*r).unparsed_uri));
                path_param_ids(path, names, max_len, f)
            }
            Source::Cookie => cookies(r, names, max_len, f),
            Source::Body => match form_body(r) {
                Some(body) => query_ids(body, names, max_len, f),
                None => false,
            },
            Source::Variable(index) => match variable_id(r, index, max_len) {
                Some(id) => f(id),
                None => false,
            },
        }
    }
}

/// The value of variable `index` for `r`, if it is a valid id.
///
/// # Safety
/// `r` must be a live request and `index` a variable index of its configuration.
pub unsafe fn variable_id<'a>(
    r: *mut ngx_http_request_t,
    index: ngx_uint_t,
    max_len: usize,
) -> Option<&'a [u8]> {
    // SAFETY: nginx evaluates (or returns the cached) value in the request's pool.
    unsafe {
        let v = ngx_http_get_indexed_variable(r, index);
        if v.is_null() || (*v).not_found() != 0 || (*v).data.is_null() {
            return None;
        }
        let value: &'a [u8] = core::slice::from_raw_parts((*v).data, (*v).len() as usize);
        crate::id::valid_id(value, max_len).then_some(value)
    }
}

/// # Safety
/// `r` must be a live request.
#[cfg(ngx_cookie_list)]
unsafe fn cookies<'a>(
    r: *mut ngx_http_request_t,
    names: &Names,
    max_len: usize,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    // SAFETY: headers_in.cookie is NULL or a NULL-terminated list of live headers.
    unsafe {
        let mut h = (*r).headers_in.cookie;
        while !h.is_null() {
            if cookie_ids(bytes(&(*h).value), names, max_len, f) {
                return true;
            }
            h = (*h).next;
        }
    }
    false
}

/// # Safety
/// `r` must be a live request.
#[cfg(not(ngx_cookie_list))]
unsafe fn cookies<'a>(
    r: *mut ngx_http_request_t,
    names: &Names,
    max_len: usize,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    // SAFETY: headers_in.cookies is an array of pointers to live headers.
    unsafe {
        let list = array::<*mut ngx::ffi::ngx_table_elt_t>(&(*r).headers_in.cookies);
        list.iter()
            .any(|&h| cookie_ids(bytes(&(*h).value), names, max_len, f))
    }
}

/// The first [`BODY_LIMIT`] bytes of a buffered urlencoded request body, from
/// memory or its temporary file. The body itself is left untouched for
/// proxying (files are read with `pread`, which moves no offset).
///
/// # Safety
/// `r` must be a live request.
unsafe fn form_body<'a>(r: *mut ngx_http_request_t) -> Option<&'a [u8]> {
    // SAFETY: the body chain and its buffers belong to r and stay valid while
    // it lives; file buffers name a readable temporary file.
    unsafe {
        let rb = (*r).request_body;
        if rb.is_null() || (*rb).bufs.is_null() || body_no_buffering(r) {
            return None;
        }
        let ct = (*r).headers_in.content_type;
        if ct.is_null() || !is_form(bytes(&(*ct).value)) {
            return None;
        }
        let first = (*(*rb).bufs).buf;
        if (*(*rb).bufs).next.is_null() && !first.is_null() && (*first).in_file() == 0 {
            return Some(cut_to_limit(span(first)));
        }
        // Subrequests (SSI, mirror, auth_request) share the main request's
        // body: gather it once, for all of them.
        let main = (*r).main;
        if let Some(done) = gathered((*main).pool) {
            return Some(bytes(done));
        }
        let kept = ngx_pool_cleanup_add((*main).pool, size_of::<Gathered>());
        if kept.is_null() {
            return None;
        }
        (*kept).handler = Some(gathered_body);
        let kept = (*kept).data as *mut Gathered;
        kept.write(Gathered {
            magic: GATHERED,
            body: ngx_str_t::empty(),
        });
        // Several buffers, or a file: gather the first BODY_LIMIT bytes.
        let mut total = 0usize;
        let mut cl = (*rb).bufs;
        while !cl.is_null() {
            total = total.saturating_add(size((*cl).buf));
            cl = (*cl).next;
        }
        let want = total.min(BODY_LIMIT);
        let dst = ngx_pnalloc((*main).pool, want.max(1)) as *mut u8;
        if dst.is_null() {
            return None;
        }
        let mut len = 0;
        let mut cl = (*rb).bufs;
        while !cl.is_null() && len < want {
            let b = (*cl).buf;
            cl = (*cl).next;
            if b.is_null() {
                continue;
            }
            let n = size(b).min(want - len);
            if n == 0 {
                continue;
            }
            if (*b).in_file() == 0 {
                core::ptr::copy_nonoverlapping(span(b).as_ptr(), dst.add(len), n);
            } else {
                let got = libc::pread((*(*b).file).fd, dst.add(len).cast(), n, (*b).file_pos);
                if got != n as isize {
                    // An unreadable file: use what was read before it.
                    break;
                }
            }
            len += n;
        }
        let body = core::slice::from_raw_parts(dst, len);
        let body = if total > len {
            drop_partial_pair(body)
        } else {
            body
        };
        (*kept).body = ngx_str_t {
            len: body.len(),
            data: dst,
        };
        ngx::ngx_log_debug!(
            (*(*r).connection).log,
            "sticky_session: request body gathered, {} bytes",
            body.len()
        );
        Some(body)
    }
}

/// A main request's gathered body, kept in a cleanup of its pool.
#[repr(C)]
struct Gathered {
    magic: u64,
    body: ngx_str_t,
}

const GATHERED: u64 = u64::from_le_bytes(*b"stkybody");

/// Marks the main request's pool cleanup that holds its gathered body.
unsafe extern "C" fn gathered_body(_: *mut core::ffi::c_void) {}

/// The body gathered earlier for this main request (`pool` is its pool).
///
/// # Safety
/// `pool` must be a live pool.
unsafe fn gathered<'a>(pool: *mut ngx::ffi::ngx_pool_t) -> Option<&'a ngx_str_t> {
    // SAFETY: the cleanup list of a live pool; a cleanup with our handler
    // holds a Gathered (the magic guards against merged no-op functions).
    unsafe {
        let mut c = (*pool).cleanup;
        while !c.is_null() {
            let ours = (*c).handler.is_some_and(|h| {
                core::ptr::fn_addr_eq(h, gathered_body as unsafe extern "C" fn(_))
            });
            if ours && !(*c).data.is_null() {
                let g = &*((*c).data as *const Gathered);
                if g.magic == GATHERED {
                    return Some(&g.body);
                }
            }
            c = (*c).next;
        }
        None
    }
}

/// The first `BODY_LIMIT` bytes of `s`; when cut, without its last, possibly partial, pair.
fn cut_to_limit(s: &[u8]) -> &[u8] {
    if s.len() <= BODY_LIMIT {
        s
    } else {
        drop_partial_pair(&s[..BODY_LIMIT])
    }
}

fn drop_partial_pair(s: &[u8]) -> &[u8] {
    &s[..s.iter().rposition(|&c| c == b'&').unwrap_or(0)]
}

/// Bytes in a body buffer, in memory or in its file.
///
/// # Safety
/// `b` must be NULL or a live buffer.
unsafe fn size(b: *const ngx_buf_t) -> usize {
    // SAFETY: reading the bounds of a live buffer.
    unsafe {
        if b.is_null() {
            0
        } else if (*b).in_file() != 0 {
            if (*b).file.is_null() {
                0
            } else {
                usize::try_from((*b).file_last - (*b).file_pos).unwrap_or(0)
            }
        } else {
            span(b).len()
        }
    }
}

/// # Safety
/// `b` must be a live in-memory buffer.
unsafe fn span<'a>(b: *const ngx_buf_t) -> &'a [u8] {
    // SAFETY: pos..last is the buffer's readable data.
    unsafe {
        if (*b).pos.is_null() || (*b).last <= (*b).pos {
            return &[];
        }
        core::slice::from_raw_parts((*b).pos, (*b).last.offset_from((*b).pos) as usize)
    }
}
