//! Cancelling a make that nobody waits for any more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag a running make checks between frames: once set, the make stops early with
/// [`crate::av::AvError::Cancelled`]. Cheap to clone; clones share the flag. The default never
/// cancels.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Option<Arc<AtomicBool>>);

impl Cancel {
    /// A flag that can be set with [`Cancel::cancel`].
    pub fn new() -> Self {
        Cancel(Some(Arc::new(AtomicBool::new(false))))
    }

    /// Asks the make to stop.
    pub fn cancel(&self) {
        if let Some(f) = &self.0 {
            f.store(true, Ordering::Relaxed);
        }
    }

    /// Whether [`Cancel::cancel`] was called (on this flag or a clone).
    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag_and_the_default_never_cancels() {
        let c = Cancel::new();
        let d = c.clone();
        assert!(!d.is_cancelled());
        c.cancel();
        assert!(d.is_cancelled());
        let never = Cancel::default();
        never.cancel();
        assert!(!never.is_cancelled());
    }
}
