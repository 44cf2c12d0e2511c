//! Templates: the built-ins render what each role needs, broken templates are clear errors, the
//! reference YAML layout loads, and proposals parse.

use std::path::Path;

use dln::llm::Prompt;
use dln::template::{parse_proposal, Template, TemplateError, TemplateRole, BUILTIN_NAMES};
use serde_json::json;

fn builtin(name: &str) -> Template {
    Template::builtin(name).unwrap_or_else(|e| panic!("built-in {name}: {e}"))
}

fn backward_infos() -> serde_json::Value {
    json!([
        {"input": "The soup was cold.", "prediction": "positive", "output": "positive",
         "target": "negative", "loss": 1.0, "correct": false},
        {"input": "Lovely staff.", "prediction": "positive", "output": "positive",
         "target": "positive", "loss": 0.0, "correct": true},
    ])
}

#[test]
fn every_builtin_loads_with_its_role() {
    for name in BUILTIN_NAMES {
        let t = builtin(name);
        let role = t.role.unwrap_or_else(|| panic!("{name} declares its role"));
        t.validate_for(role)
            .expect("built-ins use only their role's variables");
        assert_eq!(t.origin, format!("builtin:{name}"));
    }
    assert!(matches!(
        Template::builtin("nope"),
        Err(TemplateError::UnknownBuiltin { .. })
    ));
}

#[test]
fn forward_puts_prompt_first_and_ends_with_answer() {
    let t = builtin("forward");
    let out = t
        .render(&json!({"prompt": "Classify the review.", "input": "Great food."}))
        .expect("render");
    assert_eq!(out, "Classify the review.\n\nInput: Great food.\nAnswer:");
    assert_eq!(t.stop, vec!["\n"]);
    assert_eq!(t.prompt(out.clone()), Prompt::Raw { text: out });
}

#[test]
fn forward_renders_kshot_examples_before_the_input() {
    let t = builtin("forward");
    let out = t
        .render(&json!({
            "prompt": "Classify.",
            "input": "Great food.",
            "examples": [{"input": "Awful.", "target": "negative"}, {"input": "Nice.", "target": "positive"}],
        }))
        .expect("render");
    assert_eq!(
        out,
        "Classify.\n\nInput: Awful.\nAnswer: negative\n\nInput: Nice.\nAnswer: positive\n\nInput: Great food.\nAnswer:"
    );
    let empty = t
        .render(&json!({"prompt": "Classify.", "input": "x", "examples": []}))
        .expect("render");
    assert_eq!(empty, "Classify.\n\nInput: x\nAnswer:");
}

#[test]
fn forward_hidden_puts_the_input_before_the_prompt() {
    let t = builtin("forward_hidden");
    let a = t
        .render(&json!({"prompt": "Track the position.", "input": "Take 2 steps."}))
        .expect("render");
    let b = t
        .render(&json!({"prompt": "Count the steps.", "input": "Take 2 steps."}))
        .expect("render");
    assert_eq!(
        a,
        "Input: Take 2 steps.\n\nTrack the position. Let's think step by step.\nReasoning:"
    );
    let shared = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    assert!(
        shared >= "Input: Take 2 steps.\n\n".len(),
        "candidates share the input prefix"
    );
    assert!(!t.stop.is_empty());
}

#[test]
fn residual_joins_input_and_thoughts() {
    let t = builtin("residual");
    let out = t
        .render(&json!({"input": "Q?", "h": "I think 4."}))
        .expect("render");
    assert_eq!(out, "Q?\n\nYour thoughts were:\nI think 4.");
}

#[test]
fn propose_prompt_is_a_chat_with_the_instruction_started() {
    let t = builtin("propose_prompt");
    assert!(t.chat);
    assert!(t.message_alternatives.len() >= 3);
    assert!(t.stop.contains(&"\n\n".to_string()));
    let out = t
        .render(&json!({
            "prompt": "Classify the review.",
            "backward_infos": backward_infos(),
            "message": t.message(1),
        }))
        .expect("render");
    assert!(out.starts_with("A student reads each input"), "{out}");
    assert!(
        out.contains("Student's answer: positive (wrong, the correct answer is negative)"),
        "{out}"
    );
    assert!(out.contains("Student's answer: positive (right)"), "{out}");
    let examples = out.find("The soup was cold.").expect("examples shown");
    let current = out
        .find("instruction was: \"Classify the review.\"")
        .expect("current prompt");
    assert!(examples < current, "{out}");
    assert!(out.contains(t.message(1)));
    assert!(!out.contains("second step"), "no next layer given");
    match t.prompt(out.clone()) {
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => {
            assert_eq!(messages.len(), 2);
            assert_eq!(messages[0].role, "system");
            assert_eq!(messages[1].role, "user");
            assert_eq!(messages[1].content, out);
            assert_eq!(assistant_prefix, "New instruction:");
        }
        other => panic!("expected a chat prompt, got {other:?}"),
    }
}

#[test]
fn propose_prompt_shows_hidden_thoughts_and_next_prompt() {
    let t = builtin("propose_prompt");
    let out = t
        .render(&json!({
            "prompt": "Think it through.",
            "next_prompt": "Answer yes or no.",
            "backward_infos": [{"input": "Q", "h": "I moved 2 steps.", "prediction": "no",
                                "output": "no", "target": "yes", "loss": 1.0, "correct": false}],
            "message": "Be brief.",
        }))
        .expect("render");
    assert!(out.contains("\"Answer yes or no.\""));
    assert!(out.contains("Student's thoughts: I moved 2 steps."));
    assert!(
        !out.contains("answered correctly"),
        "no successes, no empty section"
    );
}

#[test]
fn propose_hidden_shows_context_input_thoughts_and_answer() {
    let t = builtin("propose_hidden");
    assert!(t.chat);
    assert_eq!(t.assistant_prefix, "Thoughts:\n");
    let out = t
        .render(&json!({
            "next_prompt": "Answer Yes or No.",
            "input": "Take 1 step. Turn around. Take 1 step.",
            "h": "I end 2 steps away.",
            "y": "Yes",
            "message": t.message(0),
        }))
        .expect("render");
    let order = [
        "Answer Yes or No.",
        "Take 1 step.",
        "I end 2 steps away.",
        "correct answer is: Yes",
        t.message(0),
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| out.find(s).unwrap_or(usize::MAX))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{out}");
}

#[test]
fn missing_variable_at_render_time_is_an_error() {
    let t = builtin("forward");
    let err = t
        .render(&json!({"prompt": "x"}))
        .expect_err("input missing");
    assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
    assert!(err.to_string().contains("builtin:forward"), "{err}");
}

#[test]
fn syntax_error_names_the_file_line() {
    let text = "name = \"broken\"\nstop = [\"\\n\"]\ntemplate = \"\"\"\n{{ prompt }}\n\n{% if input %}\n{{ input }\n\"\"\"\n";
    let err = Template::parse_toml("broken.toml", text).expect_err("syntax error");
    match &err {
        TemplateError::Syntax { origin, line, .. } => {
            assert_eq!(origin, "broken.toml");
            assert_eq!(*line, 7, "the `{{{{ input }}` line of the file");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(err.to_string().starts_with("broken.toml:7:"), "{err}");
}

#[test]
fn syntax_error_in_a_file_names_path_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("mine.toml");
    std::fs::write(&path, "template = '''\nline one\n{% for x in %}\n'''\n").expect("write");
    let err = Template::load(&path).expect_err("syntax error");
    let msg = err.to_string();
    assert!(msg.contains("mine.toml:3:"), "{msg}");
}

#[test]
fn unknown_variable_is_named() {
    let text = "role = \"forward\"\ntemplate = '''\n{{ prompt }}\n\n{{ inptu }}\nAnswer:\n'''\n";
    let err = Template::parse_toml("typo.toml", text).expect_err("unknown variable");
    match &err {
        TemplateError::UnknownVariable {
            variable,
            line,
            role,
            ..
        } => {
            assert_eq!(variable, "inptu");
            assert_eq!(*line, Some(5));
            assert_eq!(role, "forward");
        }
        other => panic!("expected UnknownVariable, got {other:?}"),
    }
    assert!(err.to_string().contains("`inptu`"), "{err}");

    // Without a declared role the check runs when the caller names it.
    let t = Template::parse_toml("x", "template = \"{{ prompt }} {{ h }}\"").expect("parses");
    assert!(t.validate_for(TemplateRole::Residual).is_err());
    assert!(t.validate_for(TemplateRole::ForwardHidden).is_err());
    let ok = Template::parse_toml("y", "template = \"{{ input }} {{ h }}\"").expect("parses");
    ok.validate_for(TemplateRole::Residual)
        .expect("input and h are residual variables");
}

#[test]
fn loop_variables_and_builtins_are_not_unknown() {
    let text = "role = \"propose_prompt\"\ntemplate = '''\n{% for b in backward_infos %}{{ loop.index }}. {{ b.input }}{% set n = loop.length %}{% endfor %}{{ range(2) | length }} {{ prompt }} {{ message }}\n'''\n";
    Template::parse_toml("loops", text).expect("loop variables are fine");
}

#[test]
fn bad_toml_is_an_error_with_a_line() {
    let err = Template::parse_toml(
        "bad.toml",
        "name = \"x\"\nstop = [\"a\"\ntemplate = \"x\"\n",
    )
    .expect_err("bad toml");
    assert!(err.to_string().starts_with("bad.toml:"), "{err}");
    let err = Template::parse_toml("nobody.toml", "name = \"x\"").expect_err("no template");
    assert!(err.to_string().contains("template"), "{err}");
    let err =
        Template::parse_toml("extra.toml", "template = \"x\"\nstops = []").expect_err("typo key");
    assert!(err.to_string().contains("stops"), "{err}");
}

#[test]
fn toml_round_trip_keeps_the_template() {
    for name in BUILTIN_NAMES {
        let t = builtin(name);
        let back = Template::parse_toml(name, &t.to_toml()).expect("round trip parses");
        assert_eq!(back.source, t.source);
        assert_eq!(back.stop, t.stop);
        assert_eq!(back.message_alternatives, t.message_alternatives);
        assert_eq!(back.chat, t.chat);
        assert_eq!(back.assistant_prefix, t.assistant_prefix);
    }
}

const REFERENCE_YAML: &str = r#"v1.0:
  stop_tokens: ['\n\n', '[END]', '#']
  template: |-
    Old version {{ prompt }}
v3.0:
  stop_tokens: ['\n\n', '[END]', '#']
  template: |-
    This was the instruction.
    > {{ prompt }}

    {% for backward_info in backward_infos %} {% if backward_info.loss > 0.0 %}
    ## Input:
    > {{ backward_info.input }}
    ## Student Output:
    > {{ backward_info.output }}
    ## Correct Output:
    > {{ backward_info.target }}
    {% endif %} {% endfor %}

    Improve the instruction. {{ message }}
    ## Instruction
    >
  message_alternatives:
    - Clarify the instruction.
    - Shorten the instruction.
"#;

#[test]
fn reference_yaml_loads_latest_or_named_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("q_action_prompt.yaml");
    std::fs::write(&path, REFERENCE_YAML).expect("write");

    let latest = Template::load_reference_yaml(&path, None).expect("latest");
    assert_eq!(
        latest.stop,
        vec!["\n\n", "[END]", "#"],
        "\\n in stop tokens is a newline"
    );
    assert_eq!(latest.message_alternatives.len(), 2);
    assert!(!latest.chat);
    latest
        .validate_for(TemplateRole::ProposePrompt)
        .expect("reference variables are ours");
    let out = latest
        .render(&json!({"prompt": "Classify.", "backward_infos": backward_infos(), "message": latest.message(0)}))
        .expect("render");
    assert!(
        out.starts_with("This was the instruction.\n> Classify."),
        "{out}"
    );
    assert!(
        out.contains("> The soup was cold.") && !out.contains("Lovely staff"),
        "{out}"
    );
    assert!(out.ends_with("## Instruction\n>"), "{out}");

    let v1 = Template::load_reference_yaml(&path, Some("v1.0")).expect("v1.0");
    assert_eq!(
        v1.render(&json!({"prompt": "p"})).expect("render"),
        "Old version p"
    );
    let same = Template::from_spec(&format!("{}:1", path.display()), Path::new("/")).expect("spec");
    assert_eq!(same.source, v1.source);
    assert!(matches!(
        Template::load_reference_yaml(&path, Some("v9")),
        Err(TemplateError::Version { .. })
    ));
    // `.yaml` through the generic loader picks the latest version.
    assert_eq!(Template::load(&path).expect("load").source, latest.source);
}

#[test]
fn reference_yaml_syntax_error_names_the_file_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("broken.yaml");
    std::fs::write(&path, "v1.0:\n  stop_tokens: ['#']\n  template: |-\n    {{ input }}\n    {% if h %}\n    {{ h }\n").expect("write");
    let err = Template::load_reference_yaml(&path, None).expect_err("syntax error");
    assert!(
        matches!(err, TemplateError::Syntax { line: 6, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("broken.yaml:6"), "{err}");
}

#[test]
fn from_spec_resolves_builtins_and_paths() {
    assert_eq!(
        Template::from_spec("builtin:residual", Path::new("."))
            .expect("spec")
            .name,
        "residual"
    );
    assert_eq!(
        Template::from_spec("forward", Path::new("."))
            .expect("spec")
            .name,
        "forward"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = Template::from_spec("templates/propose_hidden.toml", root).expect("relative path");
    assert_eq!(t.name, "propose_hidden");
    assert!(matches!(
        Template::from_spec("missing.toml", root),
        Err(TemplateError::Read { .. })
    ));
}

#[test]
fn proposals_are_extracted() {
    let cur = "Classify the review.";
    let cases = [
        (
            " Decide whether the review is positive or negative.",
            "Decide whether the review is positive or negative.",
        ),
        (
            "\"Read the review and answer positive or negative.\"",
            "Read the review and answer positive or negative.",
        ),
        (
            " Label each review as positive or negative.\n\nThis instruction is clearer because",
            "Label each review as positive or negative.",
        ),
        (
            "New instruction: Say positive for praise and negative for complaints.",
            "Say positive for praise and negative for complaints.",
        ),
        (
            "Here is the improved instruction:\n\"Answer with one word: positive or negative.\"",
            "Answer with one word: positive or negative.",
        ),
        (
            "## Instruction\n> Judge the mood of the review.\n[END]",
            "Judge the mood of the review.",
        ),
        (
            "**Tell whether the writer liked it.**",
            "Tell whether the writer liked it.",
        ),
        (
            " Count the steps in each direction.\nIf they cancel, answer Yes.\nInput: Take 1 step.",
            "Count the steps in each direction.\nIf they cancel, answer Yes.",
        ),
        (
            "\"Decide if the text is subjective",
            "Decide if the text is subjective",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(
            parse_proposal(text, cur).as_deref(),
            Some(want),
            "from {text:?}"
        );
    }
}

#[test]
fn bad_proposals_are_rejected() {
    let cur = "Classify the review.";
    let rejected = [
        "",
        "   \n\n",
        "\"\"",
        "Classify the review.",
        " classify the REVIEW",
        "\"Classify the review\"",
        "The instruction is clear and concise, so the student can follow it.",
        "This instruction asks the student to classify reviews.",
        "The new instruction tells the student what to do.",
        "I have rewritten the instruction to be clearer.",
        "I rewrote it.",
        "Here is a better version.",
        "Sure!",
        "...",
        "New instruction:",
        "Make the instruction clearer and more specific.",
        "The student has reviewed the review, and their response is positive.",
        "The teacher needs to review the student's performance.",
        "You failed to answer the question about the soup.",
    ];
    for text in rejected {
        assert_eq!(parse_proposal(text, cur), None, "should reject {text:?}");
    }
}

/// Proposals for navigate (the DLN-2 demo's task, whose inputs are themselves instructions):
/// instructions that mention "the instructions" are instructions all the same; only sentences
/// whose subject is the prompt, or that ask to edit it, are about the instruction.
#[test]
fn instructions_that_mention_instructions_are_kept() {
    let cur =
        "If you follow these instructions, do you return to the starting point? Answer Yes or No.";
    let kept = [
        "Follow the instructions step by step and answer Yes if you end where you started.",
        "Read the instructions carefully, add up the steps forward and backward, and answer Yes only if they cancel.",
        "Track your position after each instruction; answer Yes if it is back at zero.",
        "Count the steps in each direction given by the instructions. If the totals match, answer Yes, otherwise No.",
        "Each instruction moves you: add steps forward, subtract steps backward, and answer Yes if the sum is zero.",
        "Answer the prompt with Yes or No after following every step.",
        "Think about where the instructions take you and answer Yes if you return to the start.",
        "This is a navigation task: follow every instruction and answer Yes if you end at the start.",
    ];
    for text in kept {
        assert_eq!(
            parse_proposal(text, cur).as_deref(),
            Some(text),
            "should keep {text:?}"
        );
    }
    let about = [
        "The instructions are clear and the student should answer Yes.",
        "The new instructions tell the student to count the steps.",
        "This prompt asks the student to decide whether they return to the start.",
        "Your instruction was too vague.",
        "Rewrite the instruction so that it mentions the steps.",
        "To help the student, clarify the prompt with an example.",
        "I have improved the instruction by adding a step count.",
        "An instruction should say what to do with each step.",
        // Won a hyperbaton DLN-1 run on dev (30 examples) with the 135M model.
        "This is a new instruction to ask questions, but the student's response will not include the second part.",
        "This is the revised prompt for the student.",
    ];
    for text in about {
        assert_eq!(parse_proposal(text, cur), None, "should reject {text:?}");
    }
}

/// Proposals SmolLM2-135M-Instruct wrote for the DLN-2 demo (navigate) with the built-in
/// proposal template, captured from runs' events (`CandidatesProposed`): what each must become.
#[test]
fn captured_navigate_proposals() {
    let cur =
        "If you follow these instructions, do you return to the starting point? Answer Yes or No.";
    let kept = [
        // Rejected before the meta test was anchored ("the instructions").
        (
            "The student should follow the instructions exactly.",
            "The student should follow the instructions exactly.",
        ),
        // A second labelled proposal after the first one is another section.
        (
            "If you follow these instructions, do not return to the starting point.\"\nNew instructions: \"If you follow these instructions, do not return to the starting point.",
            "If you follow these instructions, do not return to the starting point.",
        ),
        (
            "When you follow these instructions, do you return to the starting point? Answer Yes.",
            "When you follow these instructions, do you return to the starting point? Answer Yes.",
        ),
        (
            "Follow these instructions, answer Yes.",
            "Follow these instructions, answer Yes.",
        ),
    ];
    for (text, want) in kept {
        assert_eq!(
            parse_proposal(text, cur).as_deref(),
            Some(want),
            "from {text:?}"
        );
    }
    // Echoes of the current prompt, quoted and after a blank line.
    for text in [
        "\n\"If you follow these instructions, do you return to the starting point? Answer Yes or No.\"",
        " \"If you follow these instructions, do you return to the starting point? Answer Yes or No.\"",
    ] {
        assert_eq!(
            dln::template::read_proposal(text, cur),
            Err(dln::template::Rejection::Echo),
            "{text:?}"
        );
    }
}

#[test]
fn trailing_newline_is_kept_only_when_written() {
    let plain = Template::parse_toml("a", "template = '''\n  Answer:\n'''\n").expect("parses");
    assert_eq!(plain.render(&json!({})).expect("render"), "Answer:");
    let open = Template::parse_toml("b", "template = '''\nThoughts:\n\n'''\n").expect("parses");
    assert_eq!(open.render(&json!({})).expect("render"), "Thoughts:\n");
}

#[test]
fn toml_written_for_the_editor_reads_like_a_hand_written_file() {
    let t = builtin("propose_prompt");
    let text = t.to_toml();
    let stop_line = text
        .lines()
        .find(|l| l.starts_with("stop = "))
        .expect("a stop line");
    assert!(
        !stop_line.contains("\"\"\""),
        "stop strings stay on one line: {stop_line}"
    );
    assert!(
        stop_line.contains("\\n"),
        "newlines are escaped: {stop_line}"
    );
    assert!(
        text.contains("template = '''\n"),
        "the body is a literal block:\n{text}"
    );
    let back = Template::parse_toml("propose_prompt", &text).expect("round trip parses");
    assert_eq!(back.system, t.system);
    assert_eq!(back.role, t.role);
    // A body holding a literal-string terminator still round-trips (through the serializer).
    let tricky = Template::parse_toml("x", "template = \"a ''' b {{ input }}\"").expect("parses");
    let back = Template::parse_toml("x", &tricky.to_toml()).expect("round trip parses");
    assert_eq!(back.source, tricky.source);
}

#[test]
fn the_forward_format_q_ends_like_the_forward_hidden_template() {
    let q = builtin("propose_hidden_forward");
    assert!(!q.chat, "raw completion, like the forward hidden template");
    let text = q
        .render(
            &json!({"input": "Take 1 step.", "y": "No", "prompt": "Track the position.",
                        "h": "ignored", "next_prompt": "Answer.", "message": ""}),
        )
        .expect("render");
    let fh = builtin("forward_hidden")
        .render(&json!({"input": "Take 1 step.", "prompt": "Track the position."}))
        .expect("render");
    assert!(text.contains("The correct answer is: No"), "{text}");
    let tail = "Track the position. Let's think step by step.\nReasoning:";
    assert!(
        text.ends_with(tail) && fh.ends_with(tail),
        "{text}\n---\n{fh}"
    );
}

/// An unclosed block on the body's last line: minijinja reports it at the end of input, one
/// line below; the error points at the body's last line, and says "syntax error" once.
#[test]
fn an_unclosed_block_points_at_the_last_line_and_says_syntax_error_once() {
    let text =
        "role = \"forward\"\ntemplate = \"\"\"\n{{ prompt }}\n{{ input }} {% if %}\n\"\"\"\n";
    let err = Template::parse_toml("forward-template", text).expect_err("syntax error");
    match &err {
        TemplateError::Syntax { line, .. } => {
            assert_eq!(*line, 4, "the line with `{{% if %}}`: {err}")
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.starts_with("forward-template:4: template syntax error: "),
        "{shown}"
    );
    assert_eq!(shown.matches("syntax error").count(), 1, "{shown}");
}
