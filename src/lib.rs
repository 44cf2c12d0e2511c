//! dln: Deep Language Networks.
