//! # server — the HTTP front end (in progress)
