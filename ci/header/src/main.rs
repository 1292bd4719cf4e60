//! `sticky_session_header REPO OUT`: writes the C header for REPO/src/ffi/c.rs to OUT.

use std::path::PathBuf;
use std::process::ExitCode;

use cbindgen::{Builder, Config, Language};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(repo), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: sticky_session_header REPO OUT");
        return ExitCode::from(2);
    };
    let repo = PathBuf::from(repo);
    let mut config = Config {
        language: Language::C,
        include_guard: Some("STICKY_SESSION_H".into()),
        cpp_compat: true,
        documentation: true,
        header: Some(
            "/* sticky_session C API: the core of the nginx sticky_session module\n \
             * (session id extraction, streaming body scanner, session store over\n \
             * caller-provided memory), without nginx.\n \
             *\n \
             * Generated from src/ffi/c.rs by cbindgen (`make header`); do not edit.\n \
             * Link with libsticky_session.a (-lpthread -ldl -lm). */"
                .into(),
        ),
        usize_is_size_t: true,
        sys_includes: vec!["stddef.h".into(), "stdint.h".into()],
        no_includes: true,
        ..Default::default()
    };
    for (from, to) in [
        ("StickyConfig", "sticky_config_t"),
        ("StickyScanner", "sticky_scanner_t"),
        ("StickyStore", "sticky_store_t"),
        ("StickyFoundFn", "sticky_found_fn"),
        ("StickyLockFn", "sticky_lock_fn"),
    ] {
        config.export.rename.insert(from.into(), to.into());
    }
    let result = Builder::new()
        .with_config(config)
        .with_src(repo.join("src/ffi/c.rs"))
        .generate();
    match result {
        Ok(bindings) => {
            bindings.write_to_file(out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cbindgen: {e}");
            ExitCode::FAILURE
        }
    }
}
