//! Time as a dependency: the coalescer and the job pools read the clock and sleep through
//! [`Clock`], so a test can inject its own.

use std::time::{Duration, Instant};

use crate::BoxFuture;

/// A source of "now" and of sleeps.
///
/// The production implementation is [`TokioClock`]: tokio's timer, so tests may also simply run
/// on a paused runtime (`#[tokio::test(start_paused = true)]`) and let time auto-advance. The
/// trait exists for what paused time cannot do: a fake that a test advances by hand while real
/// I/O (Redis, FFmpeg on the blocking pool) goes on at its own pace.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Completes after `d`.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// [`Clock`] on tokio's timer (`tokio::time`), which honours a paused test runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}
