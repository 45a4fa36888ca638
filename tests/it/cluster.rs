//! One store, several servers: two processes on the same --root stay consistent.
