//! # cache — probe results, plans, init and media segments (not built yet)
//!
//! Will own the `Cache` trait with a byte-bounded in-memory backend (moka) and a Redis backend,
//! the key scheme and request coalescing. See the issue "Caching". Nothing is implemented yet.
