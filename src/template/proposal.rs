//! Reading a new instruction out of a proposal the backward model wrote.
//!
//! Small instruct models wrap the instruction in labels ("New instruction:"), quotes and
//! markdown, add chatter after it, repeat the old instruction, or write a sentence *about* the
//! instruction instead of one. The parser keeps the instruction and rejects the rest, so a
//! useless proposal never becomes a candidate.

use std::sync::OnceLock;

use regex::Regex;

/// The instruction in a generated proposal, or `None` when there is none: empty, the current
/// prompt again (compared normalized), or a meta-sentence about the instruction.
pub fn parse_proposal(text: &str, current: &str) -> Option<String> {
    let text = text.replace("\r\n", "\n");
    let mut rest = text.trim();
    // Labels may repeat ("## Instruction\n> New instruction: ...").
    loop {
        let before = rest;
        rest = strip_label(rest).trim_start();
        rest = rest.trim_start_matches(['>', '#', ' ', '\n', '\t']);
        rest = rest
            .strip_prefix("- ")
            .or_else(|| rest.strip_prefix("* "))
            .unwrap_or(rest);
        if rest == before {
            break;
        }
    }
    let paragraph = first_paragraph(rest);
    let instruction = strip_quotes(&paragraph);
    if instruction.chars().filter(|c| c.is_alphabetic()).count() < 3 {
        return None;
    }
    if normalized(&instruction) == normalized(current) {
        return None;
    }
    if is_meta(&instruction) {
        return None;
    }
    Some(instruction)
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    // The patterns are constants of this file, checked by its tests.
    cell.get_or_init(|| Regex::new(pattern).expect("valid constant regex"))
}

/// Removes one leading label such as "New instruction:", "Here is the improved instruction:",
/// "## Instruction", "Answer:".
fn strip_label(s: &str) -> &str {
    static LABEL: OnceLock<Regex> = OnceLock::new();
    let re = regex(
        &LABEL,
        r"(?i)^(?:(?:sure|okay|ok|certainly)[,!.]?\s*)?(?:here(?:'s| is| are)\s+)?(?:the|an|a|my|your)?\s*(?:new|improved|revised|rewritten|updated|better|clarified|clearer|final|refined|modified|corrected)?\s*(?:instruction|instructions|prompt)\s*(?:for the student)?\s*(?::|-|\n|$)|^(?i:answer|output|response)\s*:",
    );
    match re.find(s) {
        Some(m) if m.end() > 0 => &s[m.end()..],
        _ => s,
    }
}

/// The text up to the first blank line, a `[END]` marker, a markdown heading, or a line that
/// starts a new section ("Input:", "Example", "Note:").
fn first_paragraph(s: &str) -> String {
    static SECTION: OnceLock<Regex> = OnceLock::new();
    let section = regex(
        &SECTION,
        r"(?i)^\s*(?:#|input\s*:|output\s*:|example|note\s*:|explanation\s*:|student|correct (?:output|answer)\s*:|\[end\])",
    );
    let mut lines: Vec<&str> = Vec::new();
    for line in s.lines() {
        if line.trim().is_empty() || (!lines.is_empty() && section.is_match(line)) {
            break;
        }
        lines.push(line.trim());
    }
    let joined = lines.join("\n");
    match joined.find("[END]") {
        Some(i) => joined[..i].trim().to_string(),
        None => joined,
    }
}

/// Strips matching quotes, backticks and bold markers around the whole text.
fn strip_quotes(s: &str) -> String {
    let mut t = s.trim();
    loop {
        let before = t;
        for (open, close) in [
            ("\"", "\""),
            ("'", "'"),
            ("“", "”"),
            ("`", "`"),
            ("**", "**"),
            ("«", "»"),
        ] {
            if t.len() >= open.len() + close.len() && t.starts_with(open) && t.ends_with(close) {
                t = t[open.len()..t.len() - close.len()].trim();
            }
        }
        // An opening quote whose closing one was cut off by the stop string.
        if let Some(inner) = t.strip_prefix('"') {
            if !inner.contains('"') {
                t = inner.trim();
            }
        }
        if t == before {
            break;
        }
    }
    t.to_string()
}

/// Lower-case words only: what two instructions must share to count as the same.
fn normalized(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sentence about the instruction (or a story about the student) rather than an instruction.
fn is_meta(s: &str) -> bool {
    static META: OnceLock<Vec<Regex>> = OnceLock::new();
    let patterns = META.get_or_init(|| {
        [
            // "The instruction is clear.", "This new prompt asks ..."
            r"^(?:the|this|that|your|my|our|each|an?)\s+(?:\w+\s+){0,2}?(?:instruction|instructions|prompt)\b",
            // "Make the instruction clearer.": an echo of the request, not an instruction.
            r"\b(?:the|this|that|your|my|an?|new|original|current|improved|previous)\s+(?:\w+\s+)?(?:instruction|instructions|prompt)\b",
            // "I have rewritten ...", "I'll make ..."
            r"^i(?:'ve| have| had| will|'ll)?\s+(?:\w+\s+)?(?:rewritten|rewrote|revised|improved|updated|changed|modified|clarified|made|added|removed|shortened|written|wrote|make|rewrite)\b",
            r"^(?:here(?:'s| is| are)|sure\b|certainly\b|as an ai|i'm sorry|i am sorry|i cannot|i can't)",
            // "You failed to answer ...": feedback on the student's answers, not a command.
            r"^you\s+(?:made|failed|got|gave|answered|did|were|wrote|have\s+(?:made|failed|given|answered))\b",
            // "The student has reviewed ...": narration, not a command.
            r"^(?:the|a)\s+(?:student|teacher)(?:'s)?\s+(?:has|had|was|were|is|did|received|got|answered|made|reviewed|needs|gave|used|followed)\b",
        ]
        .iter()
        // Constants of this file, checked by its tests.
        .map(|p| Regex::new(&format!("(?i){p}")).expect("valid constant regex"))
        .collect()
    });
    let s = s.trim();
    patterns.iter().any(|re| re.is_match(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_patterns_compile() {
        assert_eq!(strip_label("New instruction: Go."), " Go.");
        assert!(is_meta("The instruction is clear."));
        assert_eq!(first_paragraph("a\nb\n\nc"), "a\nb");
    }
}
