//! The 0/1 loss of a layer's output against the target, after answer normalization.
//!
//! The reference implementation normalizes both sides the same way before comparing: replace
//! non-word characters and digits by spaces, lower-case, keep the first word, and read
//! "option a" as "a". A BIG-Bench Hard target `(A)` therefore matches a prediction `A`, `a)`,
//! `(A) because ...` or `Option (A)`.
//!
//! That rule erases numeric answers (BBH object_counting's `7` becomes empty, and so would every
//! prediction), which would make every prediction "correct". Our choice: when the reference rule
//! leaves a *target* empty, both sides are compared under the same rule with digits kept, so `7`
//! matches `7`, `7.` and `7 apples` but not `8` or `seven`. Targets that contain a word compare
//! exactly as in the reference.

/// Normalizes an answer for comparison: the reference rule, or the digit-keeping rule when the
/// reference rule leaves nothing (see the module documentation).
pub fn normalize_answer(text: &str) -> String {
    let reference = normalize_with(text, false);
    if reference.is_empty() {
        normalize_with(text, true)
    } else {
        reference
    }
}

/// Whether a prediction is right: normalized equality with the target. An empty target never
/// matches (nothing to be right about).
pub fn exact_match(prediction: &str, target: &str) -> bool {
    let target_words = normalize_with(target, false);
    let (pred, want) = if target_words.is_empty() {
        (
            normalize_with(prediction, true),
            normalize_with(target, true),
        )
    } else {
        (normalize_with(prediction, false), target_words)
    };
    !want.is_empty() && pred == want
}

/// Word-character runs (letters, digits, underscore; digits dropped unless `keep_digits`),
/// lower-cased; then the first word, or the second after a leading "option".
fn normalize_with(text: &str, keep_digits: bool) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        let is_word = c.is_alphanumeric() || c == '_';
        let keep = is_word && (keep_digits || !c.is_numeric());
        if keep {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if words.len() >= 2 {
            break;
        }
    }
    if !current.is_empty() && words.len() < 2 {
        words.push(current);
    }
    match words.as_slice() {
        [] => String::new(),
        [first, second, ..] if first == "option" => second.clone(),
        [first, ..] => first.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbh_choice_targets_compare_as_letters() {
        assert_eq!(normalize_answer("(A)"), "a");
        assert!(exact_match("A", "(A)"));
        assert!(exact_match(" (B) because the date is later", "(B)"));
        assert!(exact_match("Option (C)", "(C)"));
        assert!(!exact_match("(D)", "(C)"));
    }

    #[test]
    fn words_compare_on_the_first_word_case_insensitively() {
        assert!(exact_match("Yes, you return.", "Yes"));
        assert!(exact_match("positive\n", "Positive"));
        assert!(!exact_match("No", "Yes"));
        assert!(!exact_match("", "Yes"));
    }

    #[test]
    fn numeric_targets_keep_their_digits() {
        assert_eq!(normalize_answer("7"), "7");
        assert!(exact_match("7", "7"));
        assert!(exact_match(" 7 apples", "7"));
        assert!(exact_match("12.", "12"));
        assert!(!exact_match("8", "7"));
        assert!(!exact_match("seven", "7"));
        assert!(!exact_match("", "7"));
    }

    #[test]
    fn digits_are_stripped_inside_words_like_the_reference() {
        assert_eq!(normalize_answer("abc123def"), "abc");
        assert_eq!(normalize_answer("  option  "), "option");
        assert_eq!(normalize_answer("!!!"), "");
    }

    #[test]
    fn empty_target_never_matches() {
        assert!(!exact_match("", ""));
        assert!(!exact_match("anything", "..."));
    }
}
