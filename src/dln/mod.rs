//! The DLN training loop.
pub mod events;
