//! Reading a new instruction out of a proposal the backward model wrote.
//!
//! Small instruct models wrap the instruction in labels ("New instruction:"), quotes and
//! markdown, add chatter after it, repeat the old instruction, or write a sentence *about* the
//! instruction instead of one. The parser keeps the instruction and rejects the rest, so a
//! useless proposal never becomes a candidate.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Why a generated proposal did not become a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// No instruction in it (empty, or fewer than three letters).
    Empty,
    /// The current prompt again, after [`proposal_key`] normalization.
    Echo,
    /// A sentence about the instruction, or feedback to the student, not an instruction.
    Meta,
    /// The same, after [`proposal_key`] normalization, as a candidate already kept.
    Duplicate,
    /// A copy of what the proposer was shown rather than an instruction: a run of an input's
    /// words, or the right/wrong marks of the shown answers.
    Copied,
    /// A degenerate loop: the same word or phrase (up to [`LOOP_PHRASE`] words) three or more
    /// times in a row ("rectangular antique antique antique", "a number of a number of a number
    /// of"), which a small model writes when it runs on and no instruction does.
    Looping,
}

impl Rejection {
    pub fn name(self) -> &'static str {
        match self {
            Rejection::Empty => "empty",
            Rejection::Echo => "echo",
            Rejection::Meta => "meta",
            Rejection::Duplicate => "duplicate",
            Rejection::Copied => "copied",
            Rejection::Looping => "looping",
        }
    }
}

/// The instruction in a generated proposal, or `None` when there is none: empty, the current
/// prompt again (compared normalized), or a meta-sentence about the instruction.
pub fn parse_proposal(text: &str, current: &str) -> Option<String> {
    read_proposal(text, current).ok()
}

/// [`parse_proposal`] saying why a proposal is rejected.
pub fn read_proposal(text: &str, current: &str) -> Result<String, Rejection> {
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
    let instruction = strip_quotes(&strip_pleasantries(&paragraph));
    if instruction.chars().filter(|c| c.is_alphabetic()).count() < 3 {
        return Err(Rejection::Empty);
    }
    if proposal_key(&instruction) == proposal_key(current) {
        return Err(Rejection::Echo);
    }
    if is_meta(&instruction) {
        return Err(Rejection::Meta);
    }
    if loops(&instruction) {
        return Err(Rejection::Looping);
    }
    Ok(instruction)
}

/// The longest phrase, in words, whose immediate repetition [`loops`] looks for.
const LOOP_PHRASE: usize = 4;

/// How many words a passage that comes back later in the same proposal must have to make it a
/// loop ([`loops`]).
const REPEAT_WORDS: usize = 6;

/// Whether a text repeats one word or phrase of up to [`LOOP_PHRASE`] words three or more times
/// in a row, or says a passage of [`REPEAT_WORDS`] words twice anywhere (compared after
/// [`proposal_key`] normalization, so case and punctuation do not hide a loop). Two in a row is
/// still language ("very very", "step by step by"), three is a loop; a passage said again
/// later is a run-on list ("- The example of the example is \"The student should find a
/// description that is not the same …\"", trec's best dev prompt before this rule).
fn loops(text: &str) -> bool {
    let words = key_words(text);
    let mut seen = std::collections::HashMap::new();
    for (i, w) in words.windows(REPEAT_WORDS).enumerate() {
        if i >= *seen.entry(w).or_insert(i) + REPEAT_WORDS {
            return true;
        }
    }
    (1..=LOOP_PHRASE).any(|n| {
        words.len() >= 3 * n
            && (0..=words.len() - 3 * n).any(|i| {
                let a = &words[i..i + n];
                a == &words[i + n..i + 2 * n] && a == &words[i + 2 * n..i + 3 * n]
            })
    })
}

/// How many consecutive words of an input make a copy of it.
const COPY_WORDS: usize = 8;

/// Whether an instruction copies what the proposer was shown (`inputs`, the batch's inputs)
/// instead of saying how to answer: it carries a shown answer's right/wrong mark, or
/// [`COPY_WORDS`] consecutive words of an input that are neither in the current prompt nor in
/// every input (a question all inputs share is the task's wording, not an example). A small
/// model asked for an instruction often writes out one of the examples; such a prompt is an
/// example, not an instruction.
pub fn copies_examples(instruction: &str, current: &str, inputs: &[String]) -> bool {
    static MARK: OnceLock<Regex> = OnceLock::new();
    if regex(&MARK, r"(?i)\((?:right|wrong)\b").is_match(instruction) {
        return true;
    }
    let runs = |s: &str| -> std::collections::HashSet<String> {
        key_words(s)
            .windows(COPY_WORDS)
            .map(|w| w.join(" "))
            .collect()
    };
    let mine = runs(instruction);
    if mine.is_empty() {
        return false;
    }
    let theirs: Vec<_> = inputs.iter().map(|i| runs(i)).collect();
    let allowed = runs(current);
    mine.iter().any(|run| {
        let found = theirs.iter().filter(|t| t.contains(run)).count();
        let shared = theirs.len() >= 2 && found == theirs.len();
        found > 0 && !shared && !allowed.contains(run)
    })
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
/// starts a new section ("Input:", "Example", "Note:", a second "New instructions:").
fn first_paragraph(s: &str) -> String {
    static SECTION: OnceLock<Regex> = OnceLock::new();
    let section = regex(
        &SECTION,
        r"(?i)^\s*(?:#|input\s*:|output\s*:|example|note\s*:|explanation\s*:|student|correct (?:output|answer)\s*:|\[end\]|(?:new|improved|revised|better|updated)\s+(?:instruction|instructions|prompt)\s*:|let me\b|i hope\b)",
    );
    let mut lines: Vec<&str> = Vec::new();
    for line in s.lines() {
        // A line about the instruction after it ("This instruction makes it clear …", "Let me
        // explain:") is the proposer's commentary, not more of the instruction.
        let commentary =
            || section.is_match(line) || is_meta(line.trim_start_matches(['-', '*', ' ']));
        if line.trim().is_empty() || (!lines.is_empty() && commentary()) {
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

/// Drops the closing pleasantries a chat model appends to an instruction ("If you have any
/// questions, feel free to ask!", "I hope this helps."): sentences at the end that address the
/// reader of the proposal, not the student.
fn strip_pleasantries(s: &str) -> String {
    static TAIL: OnceLock<Regex> = OnceLock::new();
    let tail = regex(
        &TAIL,
        r#"(?i)(?:^|[.!?]["”]?\s+)((?:if you have any (?:\w+\s+)?questions|feel free to|let me know|i hope (?:this|that|it) helps|hope (?:this|that|it) helps|good luck)[^.!?]*[.!?]?["”]?\s*)$"#,
    );
    let mut t = s.trim().to_string();
    while let Some(m) = tail.captures(&t).and_then(|c| c.get(1)) {
        let cut = t[..m.start()].trim_end().to_string();
        if cut == t {
            break;
        }
        t = cut;
    }
    t
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
        // An opening quote whose closing one was cut off by the stop string, or a closing one
        // left when the text after it was cut as another section.
        if let Some(inner) = t.strip_prefix('"') {
            if !inner.contains('"') {
                t = inner.trim();
            }
        }
        if let Some(inner) = t.strip_suffix('"') {
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

/// Lower-case words only: what two instructions must share to count as the same (echoes of
/// the current prompt and duplicates among candidates are both found with it).
pub fn proposal_key(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of [`proposal_key`]`(s)`, what copies and loops are counted in.
fn key_words(s: &str) -> Vec<String> {
    proposal_key(s)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// A sentence about the instruction (or a story about the student) rather than an instruction.
///
/// Every pattern is anchored at the start of the text or names an editing verb: an instruction
/// may well *mention* instructions ("Follow the instructions step by step ..." on a task whose
/// inputs are instructions), and only a sentence whose subject is the prompt itself, or that asks
/// to edit it, is about the instruction.
fn is_meta(s: &str) -> bool {
    static META: OnceLock<Vec<Regex>> = OnceLock::new();
    let patterns = META.get_or_init(|| {
        [
            // "This new prompt asks ...", "Your instruction was unclear."
            r"^(?:this|that|your|my|our)\s+(?:\w+\s+){0,2}?(?:instruction|instructions|prompt)\b",
            // "This is a new instruction to ...", "Here is the revised prompt": a sentence
            // presenting the instruction rather than giving it.
            r"^(?:this|here|that)\s+is\s+(?:a|an|the|my|our|your)\s+(?:\w+\s+)?(?:instruction|instructions|prompt)\b",
            // "The new instruction tells ...", "The revised prompt:"
            r"^(?:the|an?)\s+(?:new|improved|revised|rewritten|updated|better|clearer|original|current|previous|old|above|following|modified|refined|student's)\s+(?:instruction|instructions|prompt)\b",
            // "The instruction is clear.", "An instruction should ...": the prompt as the subject.
            r"^(?:the|an?)\s+(?:instruction|instructions|prompt)\s+(?:is|are|was|were|asks|tells|says|should|now|has|have|makes|will|would|can|could|provides|gives|explains|helps|requires|needs|must|might|may|seems|aims|ensures|specifies|states|clearly|does|did|focuses|emphasizes|highlights|lacks|reads|contains|includes)\b",
            // "Make the instruction clearer.", "... so I rewrote the prompt": an edit of the prompt
            // (an echo of the request), not an instruction.
            r"\b(?:make|makes|making|rewrite|rewrites|rewriting|rewrote|revise|revises|revising|revised|improve|improves|improving|improved|clarify|clarifies|clarifying|clarified|change|changes|changing|changed|modify|modifies|modifying|modified|update|updates|updating|updated|edit|edits|editing|edited|simplify|simplified|shorten|shortened|expand|expanded|refine|refined|rephrase|rephrased|reword|reworded|adjust|adjusted)\s+(?:the|this|that|your|my|our|an?)\s+(?:(?:new|original|current|previous|old|given|student's)\s+)?(?:instruction|instructions|prompt)\b",
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
    fn a_proposal_that_loops_is_not_an_instruction() {
        let current = "Which sentence has the correct adjective order?";
        // Captured from DLN-2 runs on hyperbaton and navigate with SmolLM2-135M.
        for looping in [
            "Which sentence has the correct adjective order:\n(A) rectangular antique antique antique antique square antique metal",
            "The answer is a number of a number of a number of a number.",
            "Answer Yes. Answer Yes. Answer Yes.",
            "Count the steps, steps, STEPS and turns.",
            // trec, seed 1, 10 iterations: the best prompt on dev before the passage rule.
            "\"The student should find a description that is not the same as the one provided, but is the opposite of the given description.\"\n- Provide the option of enumeration or enumeration with punctuation.\n- In the example given, the student should find a description that is not the same as the one provided.",
        ] {
            assert_eq!(read_proposal(looping, current), Err(Rejection::Looping), "{looping}");
        }
        for fine in [
            "Think step by step, step by step, then answer.",
            "Put opinion before size before age before shape before colour before origin.",
            "Is it very very clear? Answer (A) or (B).",
            "Count left, right, left and right turns.",
            "If the sentence is positive, answer positive. If the sentence is negative, answer negative.",
            "Read the question and decide what kind of answer it asks for: description, entity, expression, human, location or number.",
        ] {
            assert!(read_proposal(fine, current).is_ok(), "{fine}");
        }
    }

    #[test]
    fn commentary_and_pleasantries_after_an_instruction_are_not_part_of_it() {
        let current = "Read the sentence and decide whether it is subjective or objective.";
        // Proposals Qwen2.5-Coder-1.5B wrote on subj.
        let cases = [
            (
                "\"Read the given sentence and determine if it is objective or subjective. For an objective answer, analyze the information provided.\"\nThis instruction makes it clear that the student should evaluate whether the information is based on facts or opinions.",
                "Read the given sentence and determine if it is objective or subjective. For an objective answer, analyze the information provided.",
            ),
            (
                " \"Read the sentence carefully and determine if the information provided is objective or subjective.\"\nLet me explain this better:\nObjective information is true and can be proven.",
                "Read the sentence carefully and determine if the information provided is objective or subjective.",
            ),
            (
                "Decide if the sentence states an opinion (subjective) or a fact (objective). If you have any questions or need further clarification, feel free to ask!",
                "Decide if the sentence states an opinion (subjective) or a fact (objective).",
            ),
            (
                "\"Answer subjective for opinions and objective for facts. I hope this helps!\"",
                "Answer subjective for opinions and objective for facts.",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(read_proposal(text, current).as_deref(), Ok(want), "{text}");
        }
        // An instruction that only mentions questions or luck keeps every sentence.
        for keep in [
            "Answer the questions. If you have any doubt, pick the closest class.",
            "Decide whether the question asks for a number. Answer NUM if so.",
        ] {
            assert_eq!(read_proposal(keep, current).as_deref(), Ok(keep));
        }
    }

    #[test]
    fn constant_patterns_compile() {
        assert_eq!(strip_label("New instruction: Go."), " Go.");
        assert!(is_meta("The instruction is clear."));
        assert_eq!(first_paragraph("a\nb\n\nc"), "a\nb");
    }

    #[test]
    fn copies_of_the_shown_examples_are_not_instructions() {
        let q = "If you follow these instructions, do you return to the starting point?";
        let inputs: Vec<String> = [
            "Always face forward. Take 6 steps right. Take 5 steps right. Take 7 steps left.",
            "Take 3 steps. Turn right. Turn left. Take 5 steps. Take 10 steps. Take 7 steps.",
        ]
        .iter()
        .map(|i| format!("{q} {i}\nOptions:\n- Yes\n- No"))
        .collect();
        // Proposals the 135M model wrote on navigate: an input written out again.
        for copy in [
            "If you follow these instructions, do you return to the starting point? Take 3 steps. Turn right. Turn left. Take 5 steps.",
            "Always face forward. Take 6 steps right. Take 5 steps right.",
            "Subjective (right)",
            "Correct answer: human (wrong, the correct answer is description)",
        ] {
            assert!(copies_examples(copy, q, &inputs), "{copy}");
        }
        // Instructions, even ones that repeat the task's shared question or the current prompt.
        for ok in [
            "If you follow these instructions, do you return to the starting point? Add up the steps in each direction and answer Yes only if every direction sums to zero.",
            "Count steps forward minus steps backward; the answer is Yes when both counts cancel out.",
            "Read the sentence and decide whether it is subjective or objective.",
            "If the sentence states an opinion, the correct answer is subjective.",
        ] {
            assert!(!copies_examples(ok, q, &inputs), "{ok}");
        }
        // One input alone: its words are an example's, not a shared question.
        assert!(copies_examples(
            "Take 3 steps. Turn right. Turn left. Take 5 steps. Take 10 steps.",
            "",
            &inputs[1..]
        ));
    }
}
