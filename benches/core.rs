//! Micro-benchmarks of the pure core: body scanning throughput, table
//! lookup/learn latency at several fill levels, request id extraction.
//! Run with `cargo bench --no-default-features` (or `make bench-core`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use sticky_session::config::Names;
use sticky_session::extract::request_id;
use sticky_session::scanner::{Mode, Patterns, Scanner};
use sticky_session::store::{Bind, Expiry, Header, Slot, Table, WriteLock, WAYS};

struct NoLock;
impl WriteLock for NoLock {
    fn lock(&self) {}
    fn unlock(&self) {}
}

/// Runs `f` repeatedly for about `budget`, returns the best time per call.
fn best(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut best = Duration::MAX;
    while start.elapsed() < budget {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    best
}

fn scan_gbps(p: &Patterns, body: &[u8], chunk: usize) -> f64 {
    let mut s = Scanner::new(Mode::Html);
    let t = best(Duration::from_millis(400), || {
        let mut n = 0usize;
        for c in body.chunks(chunk) {
            s.feed(p, b"shop.example", c, &mut |_| n += 1);
        }
        s.finish(p, b"shop.example", &mut |_| n += 1);
        black_box(n);
    });
    body.len() as f64 / t.as_secs_f64() / 1e9
}

fn main() {
    let names = Names::defaults();
    let p = Patterns::new(&names, 128);
    let plain: Vec<u8> =
        "<div class=\"row\"><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, \
        sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</p></div>\n"
            .repeat(1 << 12)
            .into_bytes();
    let dense: Vec<u8> = (0..4000)
        .map(|i| format!("<li><a href=\"/item/{i}?PHPSESSID=abcdef0123456789&amp;x={i}\">item {i}</a></li>\n"))
        .collect::<String>()
        .into_bytes();
    println!(
        "scanner (GB/s, best of runs; link-free {} KB, link-dense {} KB)",
        plain.len() >> 10,
        dense.len() >> 10
    );
    for (name, body) in [("link-free", &plain), ("link-dense", &dense)] {
        for chunk in [16384, 4096] {
            println!(
                "  {name:<10} {:>5} B buffers  {:>6.2} GB/s",
                chunk,
                scan_gbps(&p, body, chunk)
            );
        }
        let one = &body[..64 << 10];
        println!(
            "  {name:<10}     1 B buffers  {:>6.3} GB/s",
            scan_gbps(&p, one, 1)
        );
    }

    let slots_n = 65536;
    let header = Header::default();
    let slots: Vec<Slot> = (0..slots_n).map(|_| Slot::default()).collect();
    let table = Table::format(&header, &slots, [7, 9]).unwrap();
    let ids: Vec<String> = (0..slots_n).map(|i| format!("session-{i:08}")).collect();
    let keys: Vec<u64> = ids.iter().map(|id| table.key(id.as_bytes())).collect();
    println!("table ({} slots, {} ways), ns per operation", slots_n, WAYS);
    let mut filled = 0;
    for pct in [10, 50, 95] {
        let target = slots_n * pct / 100;
        while filled < target {
            table.learn(
                &NoLock,
                keys[filled],
                1,
                1000,
                Expiry::idle(3600),
                Bind::Keep,
            );
            filled += 1;
        }
        let probe = &keys[..filled];
        let rounds = 200_000;
        let t = best(Duration::from_millis(300), || {
            for i in 0..rounds {
                black_box(table.lookup(probe[(i * 7919) % probe.len()], 1000, Expiry::idle(3600)));
            }
        });
        let key_t = best(Duration::from_millis(200), || {
            for id in &ids[..1000] {
                black_box(table.key(id.as_bytes()));
            }
        });
        println!(
            "  fill {pct:>2}%  lookup {:>5.1} ns   keyed hash of a 16-byte id {:>5.1} ns",
            t.as_nanos() as f64 / rounds as f64,
            key_t.as_nanos() as f64 / 1000.0
        );
    }

    println!("request id extraction, ns per request");
    let short = b"/cart?PHPSESSID=abcdef0123456789".as_slice();
    let long_q = format!(
        "/search?{}&PHPSESSID=abcdef0123456789",
        "q=word&".repeat(60)
    );
    for (name, target) in [("typical", short), ("long query", long_q.as_bytes())] {
        let t = best(Duration::from_millis(200), || {
            for _ in 0..1000 {
                black_box(request_id(black_box(target), &names, 128));
            }
        });
        println!("  {name:<10} {:>6.1} ns", t.as_nanos() as f64 / 1000.0);
    }
}
