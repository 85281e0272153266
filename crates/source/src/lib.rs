//! Sources. Being written.
