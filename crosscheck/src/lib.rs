//! src/runtime, compiled on its own so that its unit tests run on other
//! architectures (aarch64 under qemu: see README.md).
#![allow(dead_code)]

#[path = "../../src/runtime/mod.rs"]
pub mod runtime;
