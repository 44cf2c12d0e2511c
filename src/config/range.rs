//! Range checks of numeric settings, one message shape for all: the key, what it must be, and
//! what was given. Anything a number feeds (a `Duration`, an allocation, a sampling
//! temperature) is bounded here, so a value serde accepts (`inf`, `1e300`, `-1`) ends in this
//! message and never in a panic further in.

/// `v` is finite and above 0 (at most `max`).
pub fn positive(key: &str, v: f64, max: f64) -> Result<(), String> {
    if !v.is_finite() || v <= 0.0 || v > max {
        return Err(format!(
            "`{key}` must be a number above 0 and at most {max} (got {v})"
        ));
    }
    Ok(())
}

/// `v` is finite and 0 or more (at most `max`).
pub fn non_negative(key: &str, v: f64, max: f64) -> Result<(), String> {
    if !v.is_finite() || v < 0.0 || v > max {
        return Err(format!(
            "`{key}` must be a number from 0 to {max} (got {v})"
        ));
    }
    Ok(())
}

/// A count from `min` to `max`.
pub fn count(key: &str, n: u64, min: u64, max: u64) -> Result<(), String> {
    if n < min || n > max {
        return Err(format!("`{key}` must be from {min} to {max} (got {n})"));
    }
    Ok(())
}

/// The most tokens any one setting may ask for (a context, a generation budget): far above any
/// model dln runs, far below what would make an allocation abort.
pub const MAX_TOKENS: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unusable_number_names_its_key() {
        for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300, -1.0, 0.0] {
            let e = positive("backends.x.timeout_secs", v, 86_400.0).unwrap_err();
            assert!(e.contains("`backends.x.timeout_secs`"), "{e}");
        }
        assert!(positive("k", 0.5, 1.0).is_ok());
        assert!(non_negative("k", 0.0, 1.0).is_ok());
        assert!(non_negative("k", -0.1, 1.0).is_err());
        assert!(count("k", 0, 1, 8).is_err());
        assert!(count("k", 9, 1, 8).is_err());
        assert!(count("k", 8, 1, 8).is_ok());
    }
}
