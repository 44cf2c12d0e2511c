//! Text editors for prompts, templates and person-written hidden texts. Each target keeps its
//! own buffer until it is applied or reverted, so nothing typed is lost when the person closes
//! the editor or switches panes.

use std::sync::OnceLock;

use ratatui_textarea::{TextArea, WrapMode};

use crate::dln::events::LayerIndex;
use crate::template::TemplateRole;

/// What a buffer edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EditorTarget {
    Prompt {
        layer: LayerIndex,
    },
    Template {
        layer: LayerIndex,
        /// The slot (see [`TemplateRole::slot`]).
        role: TemplateRole,
    },
    /// A hidden text for `example` of the current batch, below `layer`.
    Hidden {
        layer: LayerIndex,
        example: usize,
    },
}

impl EditorTarget {
    /// The editor's title.
    pub fn title(&self) -> String {
        match self {
            EditorTarget::Prompt { layer } => format!("Edit prompt · layer {}", layer + 1),
            EditorTarget::Template { layer, role } => {
                format!("Edit {role} template · layer {}", layer + 1)
            }
            EditorTarget::Hidden { example, .. } => {
                format!("Write a hidden text · example {}", example + 1)
            }
        }
    }
}

/// A validation or engine error shown inside the editor.
#[derive(Debug, Clone, PartialEq)]
pub struct EditorError {
    pub message: String,
    /// 1-based line of the buffer the error points at, when known.
    pub line: Option<usize>,
}

impl EditorError {
    /// An error from a message, finding "line N" in it when present.
    pub fn from_message(message: &str) -> EditorError {
        EditorError {
            message: message.to_string(),
            line: find_line(message),
        }
    }
}

/// The line an error message points at: "line N", "ORIGIN:N: …" (template errors), minijinja's
/// "(in NAME:N)", or "at N:M".
pub fn find_line(message: &str) -> Option<usize> {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| regex::Regex::new(r"(?i)\bline[:\s]+(\d+)|\(in [^:()]*:(\d+)\)|\bat (\d+):\d+|[A-Za-z_][\w./@-]*:(\d+):\s").ok())
        .as_ref()?;
    let caps = re.captures(message)?;
    (1..=4).find_map(|i| caps.get(i))?.as_str().parse().ok()
}

/// One open (or closed but kept) edit.
#[derive(Debug, Clone)]
pub struct EditorBuffer {
    pub textarea: TextArea<'static>,
    /// The text the buffer started from, to tell whether it was changed.
    pub original: String,
    pub error: Option<EditorError>,
    /// Sent to the engine; waiting for its answer (templates only).
    pub awaiting: bool,
}

impl EditorBuffer {
    pub fn new(text: &str) -> EditorBuffer {
        let lines: Vec<String> = if text.is_empty() {
            vec![String::new()]
        } else {
            text.split('\n').map(str::to_string).collect()
        };
        let mut textarea = TextArea::new(lines);
        textarea.set_wrap_mode(WrapMode::WordOrGlyph);
        textarea.set_max_histories(200);
        // Line numbers: validation errors point at lines.
        textarea.set_line_number_style(
            ratatui::style::Style::default().add_modifier(ratatui::style::Modifier::DIM),
        );
        EditorBuffer {
            textarea,
            original: text.to_string(),
            error: None,
            awaiting: false,
        }
    }

    /// The buffer's text.
    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    pub fn is_modified(&self) -> bool {
        self.text() != self.original
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_in_messages() {
        assert_eq!(
            find_line("syntax error: unexpected `}` (in forward:3)"),
            Some(3)
        );
        assert_eq!(find_line("no position here"), None);
        assert_eq!(
            find_line("forward-template:5: template syntax error: unexpected `}`"),
            Some(5)
        );
        assert_eq!(
            find_line("template forward: syntax error at line 3: unexpected end"),
            Some(3)
        );
        assert_eq!(find_line("TOML parse error at line 12, column 4"), Some(12));
        assert_eq!(find_line("bad at 7:2"), Some(7));
    }

    #[test]
    fn buffers_keep_text() {
        let mut b = EditorBuffer::new("a\nb");
        assert!(!b.is_modified());
        b.textarea.insert_str("x");
        assert_eq!(b.text(), "xa\nb");
        assert!(b.is_modified());
    }
}
