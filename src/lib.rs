//! sticky_session: an nginx upstream module that keeps a client on the server
//! that issued its session id, where the id travels in the URL.
//!
//! The crate is a pure core, free of nginx types and tested with `cargo test`:
//!
//! - [`id`]: what a session id is (bytes, length, names);
//! - [`config`]: the `sticky_session` directive's parameters;
//! - [`extract`]: the ids a request carries;
//! - [`session`]: which id is the request's session, what a response's ids teach;
//! - [`response`]: which response headers teach an id, whether and how a body is scanned;
//! - [`scanner`] and [`url`]: ids handed out in response bodies and headers;
//! - [`inflate`]: gzip/deflate bodies inflated for scanning only;
//! - [`store`]: the shared id → server table with expiry;
//! - [`state`]: the table's state file, for restarts;
//! - [`status`]: the status report, as JSON or Prometheus text.
//!
//! [`ffi`] holds every `unsafe` line: [`ffi::c`] exposes the core to C
//! (`include/sticky_session.h`), and `ffi::nginx`, built with the `nginx`
//! feature, adapts nginx to the core: the directives, the balancer callbacks,
//! the response filters, the shared zone, the status page.
//!
//! Building against your own nginx: point `NGINX_SOURCE_DIR` and
//! `NGINX_BUILD_DIR` at a configured nginx tree and build with
//! `--no-default-features --features export-modules`, or let nginx's build
//! system do it with `./configure --add-dynamic-module=/path/to/this/repo`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod extract;
pub mod id;
pub mod inflate;
pub mod placement;
pub mod response;
pub mod route;
pub mod scanner;
pub mod session;
pub mod state;
pub mod status;
pub mod store;
mod swar;
pub mod sync;
pub mod url;

pub mod ffi;
