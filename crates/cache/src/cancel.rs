//! A cancellation token handed to a make: set once, observed by polling or by awaiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Cancellation of one make. Clones share the flag; cancelling is permanent.
///
/// The [`crate::Coalescer`] cancels a make's token when the last caller waiting for it goes away
/// (and a job pool may cancel a background make to give its slot to a request). The make can
/// poll [`Cancel::is_cancelled`] (e.g. between frames, on a blocking thread) or await
/// [`Cancel::cancelled`].
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Cancels (idempotent) and wakes every [`Cancel::cancelled`] future.
    pub fn cancel(&self) {
        if !self.inner.flag.swap(true, Ordering::AcqRel) {
            self.inner.notify.notify_waiters();
        }
    }

    /// Whether [`Cancel::cancel`] was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::Acquire)
    }

    /// Completes once the token is cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag, so a cancel in between is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Cancel;

    #[tokio::test]
    async fn cancelled_wakes_a_waiter_and_clones_share_the_flag() {
        let c = Cancel::new();
        let d = c.clone();
        let waiter = tokio::spawn(async move { d.cancelled().await });
        tokio::task::yield_now().await;
        assert!(!c.is_cancelled());
        c.cancel();
        waiter.await.unwrap();
        assert!(c.is_cancelled());
        // Already cancelled: completes at once.
        c.cancelled().await;
    }
}
