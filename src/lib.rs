//! dln: Deep Language Networks — stacked LLM prompts trained like the weights of a network.
//!
//! The library holds the whole engine; the `dln` binary parses the command line and wires it up.
//! Nothing here except `tui` knows about terminals.

pub mod bench;
pub mod config;
pub mod data;
pub mod dln;
pub mod fault;
pub mod files;
pub mod format;
pub mod llm;
pub mod loss;
pub mod run;
pub mod template;
pub mod tui;
