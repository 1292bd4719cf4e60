//! The hot paths allocate nothing: scanning a body buffer, extracting a
//! request's id, looking up and learning sessions. Counted per thread by a
//! wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sticky_session::extract::request_id;
use sticky_session::id::Names;
use sticky_session::scanner::{Flow, Mode, Patterns, Scanner};
use sticky_session::store::{Bind, Expiry, Header, Slot, Table, WriteLock, WAYS};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

struct NoLock;
impl WriteLock for NoLock {
    fn lock(&self) {}
    fn unlock(&self) {}
}

#[test]
fn hot_paths_do_not_allocate() {
    let names = Names::defaults();
    let patterns = Patterns::new(&names, 128);
    let page: String = (0..200)
        .map(|i| {
            format!(
                "<li><a href=\"/item/{i}?PHPSESSID=abcdef{i:04}&amp;x={i}\">item {i}</a></li>\n"
            )
        })
        .collect();
    let mut scanner = Box::new(Scanner::new(Mode::Html));
    let header = Header::default();
    let slots: Vec<Slot> = (0..64 * WAYS).map(|_| Slot::default()).collect();
    let table = Table::format(&header, &slots, [1, 2]).unwrap();
    let lock = NoLock;

    let mut found = 0;
    let n = allocations(|| {
        for chunk in page
            .as_bytes()
            .chunks(4096)
            .chain(page.as_bytes().chunks(7))
        {
            let _ = scanner.feed(&patterns, b"shop.example", chunk, &mut |id| {
                found += 1;
                let key = table.key(id);
                table.learn(&lock, key, 7, 100, Expiry::idle(3600), Bind::Keep);
                table.lookup(key, 100, Expiry::idle(3600));
                Flow::Continue(())
            });
        }
        let _ = scanner.finish(&patterns, b"shop.example", &mut count(&mut found));
        for _ in 0..100 {
            request_id(b"/cart;jsessionid=J1?a=1&PHPSESSID=abc&b=2", &names, 128);
        }
    });
    assert_eq!(found, 400, "every link's id is reported in both passes");
    assert_eq!(n, 0, "allocations on the hot paths");
}

#[test]
fn inflating_allocates_only_when_created() {
    use miniz_oxide::deflate::compress_to_vec_zlib;
    use sticky_session::inflate::{Encoding, Inflater};

    let names = Names::defaults();
    let patterns = Patterns::new(&names, 128);
    let page: String = (0..2000)
        .map(|i| format!("<p><a href=\"/item/{i}?sid=s{i}\">item {i}</a> filler text</p>\n"))
        .collect();
    let z = compress_to_vec_zlib(page.as_bytes(), 6);
    let mut inflater = Inflater::new(Encoding::Deflate);
    let mut scanner = Box::new(Scanner::new(Mode::Html));
    let mut found = 0;
    let n = allocations(|| {
        for chunk in z.chunks(1500) {
            inflater
                .feed(chunk, &mut |plain| {
                    scanner.feed(&patterns, b"shop.example", plain, &mut count(&mut found))
                })
                .unwrap();
        }
        let _ = scanner.finish(&patterns, b"shop.example", &mut count(&mut found));
    });
    assert_eq!(found, 2000);
    assert_eq!(n, 0, "allocations while inflating and scanning");
}

/// A `found` callback that counts ids and never stops the scan.
fn count(n: &mut usize) -> impl FnMut(&[u8]) -> Flow + '_ {
    |_| {
        *n += 1;
        Flow::Continue(())
    }
}
