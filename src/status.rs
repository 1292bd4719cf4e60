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
    /// Sessions moved to their second bucket to make room for new ones.
    pub moved: u64,
    /// Responses whose learning stopped at `max_learn=` ids.
    pub learn_limited: u64,
    /// The upstreams using the zone.
    pub upstreams: Vec<UpstreamReport>,
    /// Sync through Redis, when configured.
    pub sync: Option<SyncReport>,
    /// Routes learned from ids (`route=`): each with its server's address,
    /// or `None` when seen from two servers (not used).
    pub routes: Vec<(String, Option<String>)>,
}

/// The sync state of one zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The `sync=` endpoint.
    pub endpoint: String,
    /// connecting, connected, down or key_mismatch.
    pub state: &'static str,
    /// Sessions stored in Redis and published by this nginx.
    pub published: u64,
    /// Sessions from other nginx merged into the table.
    pub applied: u64,
    /// Updates dropped because the queue was full.
    pub dropped: u64,
    /// Full resyncs started.
    pub resyncs: u64,
    /// Local sessions Redis knew on another server (adopted).
    pub conflicts: u64,
    /// Connections lost or refused.
    pub failures: u64,
    /// The last error, if any.
    pub last_error: Option<&'static str>,
    /// Propagation delay of applied messages, ms: upper bounds of the
    /// buckets holding the median and the 99th percentile, and the maximum
    /// in microseconds (None before any).
    pub delay_ms: Option<(u64, u64, u64)>,
}

impl SyncReport {
    fn counters(&self) -> [(&'static str, u64, &'static str); 6] {
        [
            (
                "published",
                self.published,
                "Sessions this nginx stored in Redis and published.",
            ),
            (
                "applied",
                self.applied,
                "Sessions from other nginx merged into the table.",
            ),
            (
                "dropped",
                self.dropped,
                "Updates dropped because the queue for Redis was full.",
            ),
            ("resyncs", self.resyncs, "Full resyncs with Redis started."),
            (
                "conflicts",
                self.conflicts,
                "Local sessions Redis knew on another server (adopted).",
            ),
            (
                "failures",
                self.failures,
                "Connections to Redis lost or refused.",
            ),
        ]
    }
}

/// Live sessions per server of one upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamReport {
    /// Upstream name.
    pub name: String,
    /// (server address, live sessions), in configuration order.
    pub servers: Vec<(String, u64)>,
    /// Servers draining: no new sessions, their live ones stay.
    pub draining: Vec<String>,
}

impl ZoneReport {
    fn counters(&self) -> [(&'static str, &'static str, u64, &'static str); 13] {
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
            (
                "moved",
                "counter",
                self.moved,
                "Sessions moved to their second bucket to make room (the zone is filling).",
            ),
            (
                "learn_limited",
                "counter",
                self.learn_limited,
                "Responses whose learning stopped at max_learn ids (learn=all).",
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
            out.push('}');
            if !u.draining.is_empty() {
                out.push_str(",\"draining\":[");
                for (k, addr) in u.draining.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    json_str(&mut out, addr);
                }
                out.push(']');
            }
            out.push('}');
        }
        out.push('}');
        if !z.routes.is_empty() {
            out.push_str(",\"routes\":{");
            for (k, (route, server)) in z.routes.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                json_str(&mut out, route);
                out.push(':');
                match server {
                    Some(s) => json_str(&mut out, s),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
        if let Some(sync) = &z.sync {
            out.push_str(",\"sync\":{\"endpoint\":");
            json_str(&mut out, &sync.endpoint);
            let _ = write!(out, ",\"state\":\"{}\"", sync.state);
            for (name, value, _) in sync.counters() {
                let _ = write!(out, ",\"{name}\":{value}");
            }
            match sync.last_error {
                Some(e) => {
                    let _ = write!(out, ",\"last_error\":\"{e}\"");
                }
                None => out.push_str(",\"last_error\":null"),
            }
            match sync.delay_ms {
                Some((p50, p99, max_us)) => {
                    let _ = write!(
                        out,
                        ",\"delay_ms\":{{\"p50\":{p50},\"p99\":{p99},\"max\":{}.{:03}}}",
                        max_us / 1000,
                        max_us % 1000
                    );
                }
                None => out.push_str(",\"delay_ms\":null"),
            }
            out.push('}');
        }
        out.push('}');
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
    let synced: Vec<(&ZoneReport, &SyncReport)> = zones
        .iter()
        .filter_map(|z| z.sync.as_ref().map(|s| (z, s)))
        .collect();
    if let Some((_, first)) = synced.first() {
        out.push_str("# HELP sticky_session_sync_up Whether sync with Redis is connected (1) or not (0), with its state.\n");
        out.push_str("# TYPE sticky_session_sync_up gauge\n");
        for (z, s) in &synced {
            out.push_str("sticky_session_sync_up{zone=");
            label(&mut out, &z.name);
            out.push_str(",endpoint=");
            label(&mut out, &s.endpoint);
            let _ = writeln!(
                out,
                ",state=\"{}\"}} {}",
                s.state,
                u8::from(s.state == "connected")
            );
        }
        for (idx, (name, _, help)) in first.counters().iter().enumerate() {
            let metric = format!("sticky_session_sync_{name}_total");
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (z, s) in &synced {
                out.push_str(&metric);
                out.push_str("{zone=");
                label(&mut out, &z.name);
                let _ = writeln!(out, "}} {}", s.counters()[idx].1);
            }
        }
        out.push_str("# HELP sticky_session_sync_delay_max_seconds Longest propagation delay from another nginx.\n");
        out.push_str("# TYPE sticky_session_sync_delay_max_seconds gauge\n");
        for (z, s) in &synced {
            out.push_str("sticky_session_sync_delay_max_seconds{zone=");
            label(&mut out, &z.name);
            let max = s.delay_ms.map_or(0.0, |d| d.2 as f64 / 1e6);
            let _ = writeln!(out, "}} {max}");
        }
    }
    if zones
        .iter()
        .any(|z| z.upstreams.iter().any(|u| !u.draining.is_empty()))
    {
        out.push_str("# HELP sticky_session_server_draining Servers draining: no new sessions.\n");
        out.push_str("# TYPE sticky_session_server_draining gauge\n");
        for z in zones {
            for u in &z.upstreams {
                for addr in &u.draining {
                    out.push_str("sticky_session_server_draining{zone=");
                    label(&mut out, &z.name);
                    out.push_str(",upstream=");
                    label(&mut out, &u.name);
                    out.push_str(",server=");
                    label(&mut out, addr);
                    out.push_str("} 1\n");
                }
            }
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
            moved: 6,
            learn_limited: 7,
            upstreams: vec![UpstreamReport {
                name: "app\"x".into(),
                servers: vec![("10.0.0.1:80".into(), 2), ("10.0.0.2:80".into(), 1)],
                draining: Vec::new(),
            }],
            sync: None,
            routes: Vec::new(),
        }]
    }

    #[test]
    fn routes() {
        let mut z = sample();
        z[0].routes = vec![
            ("node1".into(), Some("10.0.0.1:80".into())),
            ("node9".into(), None),
        ];
        let j = render_json(&z);
        assert!(
            j.contains("}}},\"routes\":{\"node1\":\"10.0.0.1:80\",\"node9\":null}}}}"),
            "{j}"
        );
    }

    fn synced() -> Vec<ZoneReport> {
        let mut z = sample();
        z[0].sync = Some(SyncReport {
            endpoint: "redis://10.0.0.9:6379/0".into(),
            state: "connected",
            published: 7,
            applied: 5,
            dropped: 0,
            resyncs: 1,
            conflicts: 0,
            failures: 2,
            last_error: Some("closed"),
            delay_ms: Some((1, 2, 1250)),
        });
        z
    }

    #[test]
    fn draining_servers() {
        let mut z = sample();
        z[0].upstreams[0].draining = vec!["10.0.0.2:80".into()];
        let j = render_json(&z);
        assert!(
            j.contains(
                "\"servers\":{\"10.0.0.1:80\":2,\"10.0.0.2:80\":1},\"draining\":[\"10.0.0.2:80\"]}"
            ),
            "{j}"
        );
        let p = render_prometheus(&z);
        let line = "sticky_session_server_draining{zone=\"shop\",upstream=\"app\\\"x\",server=\"10.0.0.2:80\"} 1";
        assert!(p.lines().any(|l| l == line), "missing {line:?} in\n{p}");
        assert!(!render_prometheus(&sample()).contains("draining"));
    }

    #[test]
    fn sync_state() {
        let j = render_json(&synced());
        assert!(
            j.ends_with(
                "1}}},\"sync\":{\"endpoint\":\"redis://10.0.0.9:6379/0\",\"state\":\"connected\",\
                 \"published\":7,\"applied\":5,\"dropped\":0,\"resyncs\":1,\"conflicts\":0,\
                 \"failures\":2,\"last_error\":\"closed\",\"delay_ms\":{\"p50\":1,\"p99\":2,\
                 \"max\":1.250}}}}}\n"
            ),
            "{j}"
        );
        let p = render_prometheus(&synced());
        for line in [
            "sticky_session_sync_up{zone=\"shop\",endpoint=\"redis://10.0.0.9:6379/0\",state=\"connected\"} 1",
            "sticky_session_sync_published_total{zone=\"shop\"} 7",
            "sticky_session_sync_failures_total{zone=\"shop\"} 2",
            "sticky_session_sync_delay_max_seconds{zone=\"shop\"} 0.00125",
        ] {
            assert!(p.lines().any(|l| l == line), "missing {line:?} in\n{p}");
        }
    }

    #[test]
    fn json() {
        assert_eq!(
            render_json(&sample()),
            "{\"zones\":{\"shop\":{\"capacity\":65536,\"entries\":3,\"hits\":10,\"misses\":2,\
             \"expired\":1,\"learned\":4,\"rebound\":1,\"evicted\":0,\"unscanned\":5,\"scan_limited\":2,\"refreshes\":3,\"moved\":6,\
             \"learn_limited\":7,\"upstreams\":{\"app\\\"x\":{\"servers\":{\"10.0.0.1:80\":2,\"10.0.0.2:80\":1}}}}}}\n"
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
            "sticky_session_moved_total{zone=\"shop\"} 6",
            "sticky_session_learn_limited_total{zone=\"shop\"} 7",
            "sticky_session_server_sessions{zone=\"shop\",upstream=\"app\\\"x\",server=\"10.0.0.1:80\"} 2",
        ] {
            assert!(p.lines().any(|l| l == line), "missing {line:?} in\n{p}");
        }
        assert_eq!(render_prometheus(&[]), "");
    }
}
