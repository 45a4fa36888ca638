//! Crash safety: real kill -9 of the server during uploads, then a restart on the same root.
