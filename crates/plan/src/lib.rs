//! Planner. Being written.
