//! Shared helpers for edgecl's benchmarks.
