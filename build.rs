//! Emits cfgs for nginx versions whose structures differ in ways the adapter must know.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ngx_peer_refs)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let version: u64 = std::env::var("DEP_NGINX_VERSION_NUMBER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // 1.27.3 added upstream zone peer reference counting (`refs`, `config`).
    if version >= 1_027_003 {
        println!("cargo::rustc-cfg=ngx_peer_refs");
    }
}
