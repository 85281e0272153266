//! # server — the HTTP front end (not built yet)
//!
//! Will own the axum router, handlers, tokens and the single `AppError` → status edge. See the
//! issue "HTTP front end". Nothing is implemented yet.
