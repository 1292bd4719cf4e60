//! The status report: what `sticky_session_status;` answers, as JSON or in
//! the Prometheus text format. Collected by the adapter, rendered here.

use core::fmt::Write;

/// One zone's counters and sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneReport {
    /// Zone name.
    pub name: String,
    /// Sessions the zone can hold.
    pub capacity: u64,
    /// Live sessions now.
    pub entries: u64,
    /// Requests whose id was known and live.
    pub hits: u64,
    /// Requests whose id was unknown.
    pub misses: u64,
    /// Requests whose id had expired.
    pub expired: u64,
    /// Sessions recorded.
    pub learned: u64,
    /// Sessions moved after failover.
    pub rebound: u64,
    /// Live sessions evicted from a full zone.
    pub evicted: u64,
    /// Response bodies not scanned (unknown or broken encoding).
    pub unscanned: u64,
    /// Responses whose scan stopped at `max_scan=`.
    pub scan_limited: u64,
    /// Last-use updates written by lookups.
    pub refreshes: u64,
    /// The upstreams using the zone.
    pub upstreams: Vec<UpstreamReport>,
}

/// Live sessions per server of one upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamReport {
    /// Upstream name.
    pub name: String,
    /// (server address, live sessions), in configuration order.
    pub servers: Vec<(String, u64)>,
}

impl ZoneReport {
    fn counters(&self) -> [(&'static str, &'static str, u64, &'static str); 11] {
        [
            (
                "capacity",
                "gauge",
                self.capacity,
                "Sessions the zone can hold.",
            ),
            (
                "entries",
                "gauge",
                self.entries,
                "Live sessions in the zone.",
            ),
            (
                "hits",
                "counter",
                self.hits,
                "Requests whose id was known and live.",
            ),
            (
                "misses",
                "counter",
                self.misses,
                "Requests whose id was unknown.",
            ),
            (
                "expired",
                "counter",
                self.expired,
                "Requests whose id had expired.",
            ),
            (
                "learned",
                "counter",
                self.learned,
                "Sessions recorded from responses.",
            ),
            (
                "rebound",
                "counter",
                self.rebound,
                "Sessions moved to another server after failover.",
            ),
            (
                "evicted",
                "counter",
                self.evicted,
                "Live sessions evicted from a full zone.",
            ),
            (
                "unscanned",
                "counter",
                self.unscanned,
                "Response bodies not scanned (unknown or broken encoding).",
            ),
            (
                "scan_limited",
                "counter",
                self.scan_limited,
                "Responses whose scan stopped at max_scan bytes.",
            ),
            (
                "refreshes",
                "counter",
                self.refreshes,
                "Last-use updates written to the table by lookups.",
            ),
        ]
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `{"zones":{"NAME":{"capacity":…,…,"upstreams":{"UP":{"servers":{"ADDR":N}}}}}}`
pub fn render_json(zones: &[ZoneReport]) -> String {
    let mut out = String::from("{\"zones\":{");
    for (i, z) in zones.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(&mut out, &z.name);
        out.push_str(":{");
        for (name, _, value, _) in z.counters() {
            let _ = write!(out, "\"{name}\":{value},");
        }
        out.push_str("\"upstreams\":{");
        for (j, u) in z.upstreams.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_str(&mut out, &u.name);
            out.push_str(":{\"servers\":{");
            for (k, (addr, n)) in u.servers.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                json_str(&mut out, addr);
                let _ = write!(out, ":{n}");
            }
            out.push_str("}}");
        }
        out.push_str("}}");
    }
    out.push_str("}}\n");
    out
}

fn label(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The Prometheus text exposition format, version 0.0.4.
pub fn render_prometheus(zones: &[ZoneReport]) -> String {
    let mut out = String::new();
    let Some(first) = zones.first() else {
        return out;
    };
    for (idx, (name, kind, _, help)) in first.counters().iter().enumerate() {
        let metric = if *kind == "counter" {
            format!("sticky_session_{name}_total")
        } else {
            format!("sticky_session_{name}")
        };
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for z in zones {
            out.push_str(&metric);
            out.push_str("{zone=");
            label(&mut out, &z.name);
            let _ = writeln!(out, "}} {}", z.counters()[idx].2);
        }
    }
    out.push_str("# HELP sticky_session_server_sessions Live sessions per server.\n");
    out.push_str("# TYPE sticky_session_server_sessions gauge\n");
    for z in zones {
        for u in &z.upstreams {
            for (addr, n) in &u.servers {
                out.push_str("sticky_session_server_sessions{zone=");
                label(&mut out, &z.name);
                out.push_str(",upstream=");
                label(&mut out, &u.name);
                out.push_str(",server=");
                label(&mut out, addr);
                let _ = writeln!(out, "}} {n}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ZoneReport> {
        vec![ZoneReport {
            name: "shop".into(),
            capacity: 65536,
            entries: 3,
            hits: 10,
            misses: 2,
            expired: 1,
            learned: 4,
            rebound: 1,
            evicted: 0,
            unscanned: 5,
            scan_limited: 2,
            refreshes: 3,
            upstreams: vec![UpstreamReport {
                name: "app\"x".into(),
                servers: vec![("10.0.0.1:80".into(), 2), ("10.0.0.2:80".into(), 1)],
            }],
        }]
    }

    #[test]
    fn json() {
        assert_eq!(
            render_json(&sample()),
            "{\"zones\":{\"shop\":{\"capacity\":65536,\"entries\":3,\"hits\":10,\"misses\":2,\
             \"expired\":1,\"learned\":4,\"rebound\":1,\"evicted\":0,\"unscanned\":5,\"scan_limited\":2,\"refreshes\":3,\
             \"upstreams\":{\"app\\\"x\":{\"servers\":{\"10.0.0.1:80\":2,\"10.0.0.2:80\":1}}}}}}\n"
        );
        assert_eq!(render_json(&[]), "{\"zones\":{}}\n");
    }

    #[test]
    fn prometheus() {
        let p = render_prometheus(&sample());
        for line in [
            "# TYPE sticky_session_capacity gauge",
            "sticky_session_capacity{zone=\"shop\"} 65536",
            "# TYPE sticky_session_hits_total counter",
            "sticky_session_hits_total{zone=\"shop\"} 10",
            "sticky_session_unscanned_total{zone=\"shop\"} 5",
            "sticky_session_server_sessions{zone=\"shop\",upstream=\"app\\\"x\",server=\"10.0.0.1:80\"} 2",
        ] {
            assert!(p.lines().any(|l| l == line), "missing {line:?} in\n{p}");
        }
        assert_eq!(render_prometheus(&[]), "");
    }
}
