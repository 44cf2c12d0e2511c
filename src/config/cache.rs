//! `[cache]`: the bound on a run's call cache (`cache/calls.sqlite`), past which its least
//! recently used answers are evicted.

use serde::{Deserialize, Serialize};

/// The call cache's settings (`[cache]`). Absent keys take their value from
/// [`CacheConfig::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bound on the cache's database file and its WAL, in MiB. Past it the least recently used
    /// answers are evicted (down to 90 %), and a resumed run asks again only what was evicted. The
    /// demo runs write a few hundred kB of answers, so the default evicts nothing in a run of
    /// the size this workbench is for.
    pub max_mb: f64,
}

/// The one place the default bound is written; serde fills an absent key from it.
impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_mb: DEFAULT_MAX_MB,
        }
    }
}

/// `cache.max_mb` when the config does not say (also the bound of `dln predict`'s shared cache
/// and of a cache opened without a config).
pub const DEFAULT_MAX_MB: f64 = 1024.0;

impl CacheConfig {
    /// The bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        (self.max_mb * 1024.0 * 1024.0) as u64
    }

    /// Checks what serde cannot: a positive, finite size.
    pub(super) fn validate(&self) -> Result<(), String> {
        check_max_mb(self.max_mb)
    }
}

/// `cache.max_mb` must be a positive, finite number of MiB; the error names the key.
pub fn check_max_mb(max_mb: f64) -> Result<(), String> {
    if max_mb.is_finite() && max_mb > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "`cache.max_mb` must be a positive number of MiB, such as {DEFAULT_MAX_MB} (got {max_mb})"
        ))
    }
}
