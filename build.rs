//! Emits cfgs for nginx versions whose structures differ in ways the adapter
//! must know, and compiles the C accessors for bitfields bindgen mislays.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ngx_peer_refs)");
    println!("cargo::rustc-check-cfg=cfg(ngx_cookie_list)");
    println!("cargo::rustc-check-cfg=cfg(ngx_keepalive_at_init)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let version: u64 = env::var("DEP_NGINX_VERSION_NUMBER")
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
    // 1.29.7 made keepalive wrap the upstream's balancer when the
    // configuration is complete, instead of when its directive is read.
    if version >= 1_029_007 {
        println!("cargo::rustc-cfg=ngx_keepalive_at_init");
    }
    if env::var_os("CARGO_FEATURE_NGINX").is_some() {
        compile_request_bits();
    }
}

/// src/ffi/nginx/request_bits.c, against the headers and defines of the nginx
/// tree nginx-sys generated its bindings from.
fn compile_request_bits() {
    println!("cargo::rerun-if-changed=src/ffi/nginx/request_bits.c");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_INCLUDE");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_CFLAGS");
    let mut build = cc::Build::new();
    build.file("src/ffi/nginx/request_bits.c").warnings(false);
    if let Some(includes) = env::var_os("DEP_NGINX_INCLUDE") {
        for dir in env::split_paths(&includes) {
            build.include(dir);
        }
    }
    for define in env::var("DEP_NGINX_CFLAGS")
        .unwrap_or_default()
        .split_whitespace()
    {
        let define = define.trim_start_matches("-D");
        match define.split_once('=') {
            Some((name, value)) => build.define(name, value),
            None => build.define(define, None),
        };
    }
    build.compile("sticky_session_request_bits");
}
