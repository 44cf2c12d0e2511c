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
    /// A person's note on `layer`, or on training example `example` (its training-split index).
    Feedback {
        layer: LayerIndex,
        example: Option<usize>,
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
            EditorTarget::Feedback { layer, example } => match example {
                Some(e) => format!("Note on layer {} · training example {e}", layer + 1),
                None => format!("Note on layer {}", layer + 1),
            },
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
        let line = find_line(message);
        // `ORIGIN:N: text`: the editor says `line N: text`, once.
        static PREFIX: OnceLock<Option<regex::Regex>> = OnceLock::new();
        let prefix = PREFIX
            .get_or_init(|| regex::Regex::new(r"^[A-Za-z_][\w./@-]*:\d+:\s*").ok())
            .as_ref();
        let message = match (line, prefix.and_then(|re| re.find(message))) {
            (Some(_), Some(m)) => message[m.end()..].to_string(),
            _ => message.to_string(),
        };
        EditorError { message, line }
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
    /// The text before each edit, for undo: one entry per word typed, run of deletions, line
    /// break or paste, not per character.
    undo: Vec<Snapshot>,
    redo: Vec<Snapshot>,
    /// The kind of the last key's edit: typing more of the same kind extends that edit.
    last: EditKind,
}

/// The text and cursor at one point of the undo history.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    lines: Vec<String>,
    cursor: (usize, usize),
}

/// What a key did to the text, for grouping undo steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EditKind {
    /// Not an edit (a cursor move): the next edit starts a new step.
    None,
    Word,
    Space,
    Delete,
    /// Its own step every time (Enter, paste, cut).
    Other,
}

fn edit_kind(key: &crossterm::event::KeyEvent) -> EditKind {
    use crossterm::event::{KeyCode, KeyModifiers};
    let plain = !key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    match key.code {
        KeyCode::Char(c) if plain && c.is_whitespace() => EditKind::Space,
        KeyCode::Char(_) if plain => EditKind::Word,
        KeyCode::Tab => EditKind::Space,
        KeyCode::Backspace | KeyCode::Delete => EditKind::Delete,
        _ => EditKind::Other,
    }
}

fn textarea(lines: Vec<String>) -> TextArea<'static> {
    let mut textarea = TextArea::new(lines);
    textarea.set_wrap_mode(WrapMode::WordOrGlyph);
    // The buffer keeps its own history, by edit (see `EditorBuffer::input`).
    textarea.set_max_histories(0);
    // Line numbers: validation errors point at lines.
    textarea.set_line_number_style(
        ratatui::style::Style::default().add_modifier(ratatui::style::Modifier::DIM),
    );
    textarea
}

impl EditorBuffer {
    pub fn new(text: &str) -> EditorBuffer {
        let lines: Vec<String> = if text.is_empty() {
            vec![String::new()]
        } else {
            text.split('\n').map(str::to_string).collect()
        };
        EditorBuffer {
            textarea: textarea(lines),
            original: text.to_string(),
            error: None,
            awaiting: false,
            undo: Vec::new(),
            redo: Vec::new(),
            last: EditKind::None,
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            lines: self.textarea.lines().to_vec(),
            cursor: {
                let c = self.textarea.cursor();
                (c.0, c.1)
            },
        }
    }

    fn restore(&mut self, s: Snapshot) {
        self.textarea = textarea(s.lines);
        let (row, col) = s.cursor;
        self.textarea
            .move_cursor(ratatui_textarea::CursorMove::Jump(
                u16::try_from(row).unwrap_or(u16::MAX),
                u16::try_from(col).unwrap_or(u16::MAX),
            ));
        self.last = EditKind::None;
    }

    /// A key typed into the buffer; whether it changed the text. A word, a run of deletions, a
    /// line break or a paste is one undo step.
    pub fn input(&mut self, key: crossterm::event::KeyEvent) -> bool {
        let before = self.snapshot();
        let kind = edit_kind(&key);
        let changed = self.textarea.input(key);
        if changed {
            // Typing a word then its space is one step; the next word starts another.
            let continues = matches!(
                (self.last, kind),
                (EditKind::Word, EditKind::Word | EditKind::Space)
                    | (EditKind::Space, EditKind::Space)
                    | (EditKind::Delete, EditKind::Delete)
            );
            if !continues {
                self.undo.push(before);
                self.redo.clear();
            }
            self.last = kind;
        } else {
            self.last = EditKind::None;
        }
        changed
    }

    /// Takes back the last edit; false when there is none.
    pub fn undo(&mut self) -> bool {
        let Some(s) = self.undo.pop() else {
            return false;
        };
        self.redo.push(self.snapshot());
        self.restore(s);
        true
    }

    /// Does again the last edit undone; false when there is none.
    pub fn redo(&mut self) -> bool {
        let Some(s) = self.redo.pop() else {
            return false;
        };
        self.undo.push(self.snapshot());
        self.restore(s);
        true
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
    fn undo_takes_back_a_word_at_a_time_and_redo_replays_it() {
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let mut b = EditorBuffer::new("");
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        for c in "one two".chars() {
            b.input(key(c));
        }
        b.input(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        for c in "three".chars() {
            b.input(key(c));
        }
        b.input(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
        b.input(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
        assert_eq!(b.text(), "one two\nthr");
        assert!(b.undo(), "both backspaces");
        assert_eq!(b.text(), "one two\nthree");
        assert!(b.undo(), "the word");
        assert_eq!(b.text(), "one two\n");
        assert!(b.undo(), "the line break");
        assert_eq!(b.text(), "one two");
        assert!(b.undo());
        assert_eq!(b.text(), "one ");
        assert!(b.undo());
        assert_eq!(b.text(), "");
        assert!(!b.undo(), "nothing left");
        assert!(b.redo());
        assert_eq!(b.text(), "one ");
        assert_eq!(
            b.textarea.cursor(),
            (0, 4),
            "the cursor comes back with the text"
        );
    }

    #[test]
    fn template_errors_name_their_line_once() {
        let e = EditorError::from_message(
            "forward-template:16: template syntax error: unexpected end of input",
        );
        assert_eq!(e.line, Some(16));
        assert_eq!(e.message, "template syntax error: unexpected end of input");
        let e = EditorError::from_message("a prompt cannot be empty");
        assert_eq!(
            (e.line, e.message.as_str()),
            (None, "a prompt cannot be empty")
        );
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
