//! Emits cfgs for nginx versions whose structures differ in ways the adapter must know.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ngx_peer_refs)");
    println!("cargo::rustc-check-cfg=cfg(ngx_cookie_list)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let version: u64 = std::env::var("DEP_NGINX_VERSION_NUMBER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // 1.27.3 added upstream zone peer reference counting (`refs`, `config`).
    // 1.23.0 turned `headers_in.cookies` (an array) into `headers_in.cookie` (a list).
    if version >= 1_023_000 || version == 0 {
        println!("cargo::rustc-cfg=ngx_cookie_list");
    }
    if version >= 1_027_003 {
        println!("cargo::rustc-cfg=ngx_peer_refs");
    }
}
