//! Numbers and durations as dln shows them, in one place for every front: the compact forms of
//! the workbench's narrow panes (`3m05s`, `12.3k`) and the prose forms of reports and headless
//! progress lines (`7 min`, `66k`). Nothing here knows of terminals.

/// `1h02m`, `3m05s`, `12s`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `12.3k` style token counts.
pub fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1000.0),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// Tokens as a person reads them (950, 66k, 1.2M).
pub fn human_tokens(t: f64) -> String {
    if t >= 1e6 {
        format!("{:.1}M", t / 1e6)
    } else if t >= 1e3 {
        format!("{:.0}k", t / 1e3)
    } else {
        format!("{t:.0}")
    }
}

/// Seconds as a person reads them (42 s, 7 min, 1.5 h).
pub fn human_seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_prose_forms() {
        assert_eq!(duration_ms(185_000), "3m05s");
        assert_eq!(duration_ms(3_720_000), "1h02m");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(human_seconds(420.0), "7 min");
        assert_eq!(human_seconds(5400.0), "1.5 h");
        assert_eq!(human_tokens(66_000.0), "66k");
        assert_eq!(human_tokens(1_200_000.0), "1.2M");
    }
}
