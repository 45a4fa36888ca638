//! Hostile input and limits: every bound the peer controls, and what the server answers.
