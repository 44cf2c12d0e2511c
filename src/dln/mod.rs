//! The DLN training loop: a network of language layers, the stage machine that trains it, and
//! the pure arithmetic of the method.
pub mod events;
pub mod math;
