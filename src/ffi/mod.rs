//! The foreign interfaces, and the only place with `unsafe` code:
//!
//! - `nginx/`: the nginx module (built with the `nginx` feature);
//! - [`c`]: the C API (`include/sticky_session.h`).

#![allow(unsafe_code)]

pub mod c;
#[cfg(feature = "nginx")]
mod nginx;
