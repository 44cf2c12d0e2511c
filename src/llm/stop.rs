//! Stop strings, with the one semantics every backend keeps (see `GenerateRequest::stop`).

/// Where the earliest of `stops` begins in `text`, searching only from `from` on (earlier text
/// was already checked; `from` is moved back by the longest stop so matches that straddle the
/// previous end are found).
///
/// A stop string never fires inside the text's leading whitespace: small instruct models often
/// open with a blank line, and a `"\n\n"` stop would otherwise turn every such answer into an
/// empty text (seen with SmolLM2-135M on hidden-layer and proposal templates, about one output
/// in eight). Matches are looked for from the first non-whitespace character on.
pub fn find_stop(text: &str, stops: &[String], from: usize) -> Option<usize> {
    let lead = text.len() - text.trim_start().len();
    if lead == text.len() {
        return None;
    }
    let longest = stops.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut start = from.saturating_sub(longest).max(lead);
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text[start..].find(s.as_str()).map(|i| start + i))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_found_across_the_previous_end() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        assert_eq!(find_stop("abc\n", &stops, 0), None);
        assert_eq!(find_stop("abc\n\nxyz", &stops, 4), Some(3));
        assert_eq!(find_stop("a END b \n\n", &stops, 0), Some(2));
        assert_eq!(find_stop("héllo", &["o".to_string()], 3), Some(5));
    }

    #[test]
    fn stop_strings_do_not_fire_in_leading_whitespace() {
        let stops = vec!["\n\n".to_string(), "\n".to_string()];
        assert_eq!(find_stop("\n\n", &stops, 0), None);
        assert_eq!(find_stop("\n\n  ", &stops, 1), None);
        assert_eq!(find_stop("\n\nStep one", &stops, 2), None);
        assert_eq!(find_stop("\n\nStep one\n\nmore", &stops, 3), Some(10));
        assert_eq!(find_stop(" a\n", &stops, 0), Some(2));
    }
}
