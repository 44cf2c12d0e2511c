//! Keys → [`Action`]s. The defaults below can be changed in the user's config file:
//!
//! ```toml
//! [keys]
//! "ctrl-p" = "toggle_pause"   # add or move a binding
//! "x" = "none"                # remove one
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// A key with its modifiers, normalized so that `K` and `shift-k` are the same chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyChord {
    pub code: KeyCodeKey,
    pub ctrl: bool,
    pub alt: bool,
}

/// The subset of [`KeyCode`] that can be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeKey {
    Char(char),
    F(u8),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
}

impl KeyChord {
    /// The chord of a terminal key event, or `None` for keys that cannot be bound.
    pub fn from_event(ev: &KeyEvent) -> Option<KeyChord> {
        let code = match ev.code {
            KeyCode::Char(c) => KeyCodeKey::Char(c),
            KeyCode::F(n) => KeyCodeKey::F(n),
            KeyCode::Enter => KeyCodeKey::Enter,
            KeyCode::Esc => KeyCodeKey::Esc,
            KeyCode::Tab if ev.modifiers.contains(KeyModifiers::SHIFT) => KeyCodeKey::BackTab,
            KeyCode::Tab => KeyCodeKey::Tab,
            KeyCode::BackTab => KeyCodeKey::BackTab,
            KeyCode::Backspace => KeyCodeKey::Backspace,
            KeyCode::Delete => KeyCodeKey::Delete,
            KeyCode::Up => KeyCodeKey::Up,
            KeyCode::Down => KeyCodeKey::Down,
            KeyCode::Left => KeyCodeKey::Left,
            KeyCode::Right => KeyCodeKey::Right,
            KeyCode::PageUp => KeyCodeKey::PageUp,
            KeyCode::PageDown => KeyCodeKey::PageDown,
            KeyCode::Home => KeyCodeKey::Home,
            KeyCode::End => KeyCodeKey::End,
            _ => return None,
        };
        let code = match code {
            // Terminals report Ctrl-letters in either case; bind them lower-case.
            KeyCodeKey::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCodeKey::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        Some(KeyChord {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        })
    }

    fn plain(code: KeyCodeKey) -> KeyChord {
        KeyChord {
            code,
            ctrl: false,
            alt: false,
        }
    }
}

impl FromStr for KeyChord {
    type Err = String;

    /// `q`, `?`, `space`, `ctrl-s`, `alt-x`, `shift-tab`, `enter`, `esc`, `up`, `pagedown`, `f1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut ctrl = false;
        let mut alt = false;
        let mut shift = false;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower
                .strip_prefix("ctrl-")
                .or_else(|| lower.strip_prefix("c-"))
            {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower
                .strip_prefix("alt-")
                .or_else(|| lower.strip_prefix("m-"))
            {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower
                .strip_prefix("shift-")
                .or_else(|| lower.strip_prefix("s-"))
            {
                if r.is_empty() {
                    break;
                }
                shift = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "space" => KeyCodeKey::Char(' '),
            "enter" | "return" => KeyCodeKey::Enter,
            "esc" | "escape" => KeyCodeKey::Esc,
            "tab" if shift => KeyCodeKey::BackTab,
            "tab" => KeyCodeKey::Tab,
            "backtab" => KeyCodeKey::BackTab,
            "backspace" => KeyCodeKey::Backspace,
            "delete" | "del" => KeyCodeKey::Delete,
            "up" => KeyCodeKey::Up,
            "down" => KeyCodeKey::Down,
            "left" => KeyCodeKey::Left,
            "right" => KeyCodeKey::Right,
            "pageup" | "pgup" => KeyCodeKey::PageUp,
            "pagedown" | "pgdn" => KeyCodeKey::PageDown,
            "home" => KeyCodeKey::Home,
            "end" => KeyCodeKey::End,
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCodeKey::F(f[1..].parse::<u8>().unwrap_or(1))
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        let c = if ctrl {
                            c.to_ascii_lowercase()
                        } else if shift {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        };
                        KeyCodeKey::Char(c)
                    }
                    _ => {
                        return Err(format!(
                            "`{s}` is not a key (examples: q, ?, space, ctrl-s, shift-tab, \
                             enter, esc, up, pagedown, f1)"
                        ))
                    }
                }
            }
        };
        Ok(KeyChord { code, ctrl, alt })
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCodeKey::Char(' ') => f.write_str("Space"),
            KeyCodeKey::Char(c) => write!(f, "{c}"),
            KeyCodeKey::F(n) => write!(f, "F{n}"),
            KeyCodeKey::Enter => f.write_str("Enter"),
            KeyCodeKey::Esc => f.write_str("Esc"),
            KeyCodeKey::Tab => f.write_str("Tab"),
            KeyCodeKey::BackTab => f.write_str("Shift-Tab"),
            KeyCodeKey::Backspace => f.write_str("Backspace"),
            KeyCodeKey::Delete => f.write_str("Del"),
            KeyCodeKey::Up => f.write_str("↑"),
            KeyCodeKey::Down => f.write_str("↓"),
            KeyCodeKey::Left => f.write_str("←"),
            KeyCodeKey::Right => f.write_str("→"),
            KeyCodeKey::PageUp => f.write_str("PgUp"),
            KeyCodeKey::PageDown => f.write_str("PgDn"),
            KeyCodeKey::Home => f.write_str("Home"),
            KeyCodeKey::End => f.write_str("End"),
        }
    }
}

/// The key bindings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap {
    bindings: BTreeMap<KeyChord, Action>,
}

impl Default for KeyMap {
    fn default() -> Self {
        use Action::*;
        use KeyCodeKey as K;
        let c = |ch: char| KeyChord::plain(K::Char(ch));
        let ctrl = |ch: char| KeyChord {
            code: K::Char(ch),
            ctrl: true,
            alt: false,
        };
        let k = KeyChord::plain;
        let pairs = [
            (c('q'), Quit),
            (ctrl('c'), Interrupt),
            (c('?'), Help),
            (k(K::F(1)), Help),
            (k(K::Tab), FocusNext),
            (k(K::BackTab), FocusPrev),
            (c('1'), FocusLayers),
            (c('2'), FocusHidden),
            (c('3'), FocusCandidates),
            (c('4'), FocusMetrics),
            (k(K::Up), Up),
            (c('k'), Up),
            (k(K::Down), Down),
            (c('j'), Down),
            (k(K::PageUp), PageUp),
            (k(K::PageDown), PageDown),
            (c('g'), Top),
            (k(K::Home), Top),
            (c('G'), Bottom),
            (k(K::End), Bottom),
            (k(K::Left), PrevLayer),
            (c('h'), PrevLayer),
            (k(K::Right), NextLayer),
            (c('l'), NextLayer),
            (k(K::Enter), Expand),
            (c('/'), Filter),
            (c(' '), TogglePause),
            (c('s'), Step),
            (c('p'), Pin),
            (c('u'), Unpin),
            (c('e'), EditPrompt),
            (c('t'), EditTemplate),
            (c('a'), AddHidden),
            (c('x'), ExcludeSample),
            (c('d'), ToggleDiff),
            (c('o'), Sort),
            (c('w'), WrongOnly),
            (c('['), ScrubBack),
            (c(']'), ScrubForward),
            (k(K::Esc), Cancel),
            (c('D'), Demos),
            (c('A'), AddDemo),
            (c('X'), RemoveDemo),
            (c('P'), PinDemos),
            (c('f'), Feedback),
            (c('F'), Notes),
            (c('y'), Copy),
            (c('E'), ExternalEdit),
            (c('z'), Zoom),
            (c('n'), SearchNext),
            (c('N'), SearchPrev),
            (c('b'), Branch),
            (c('L'), Lineage),
        ];
        KeyMap {
            bindings: pairs.into_iter().collect(),
        }
    }
}

/// A bad `[keys]` entry, named so the person can find it in the file.
#[derive(Debug, thiserror::Error)]
#[error("[keys] \"{key}\" = \"{action}\": {message}")]
pub struct KeyMapError {
    pub key: String,
    pub action: String,
    pub message: String,
}

impl KeyMap {
    /// The defaults with the config file's `[keys]` table applied (`"none"` unbinds a key).
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<KeyMap, KeyMapError> {
        let mut map = KeyMap::default();
        for (key, action) in overrides {
            let err = |message: String| KeyMapError {
                key: key.clone(),
                action: action.clone(),
                message,
            };
            let chord: KeyChord = key.parse().map_err(err)?;
            if action == "none" {
                map.bindings.remove(&chord);
            } else {
                let a: Action = action.parse().map_err(err)?;
                map.bindings.insert(chord, a);
            }
        }
        Ok(map)
    }

    /// The action bound to a key event.
    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        let chord = KeyChord::from_event(ev)?;
        // Shifted characters (`?`, `G`) carry the shift in the character itself.
        self.bindings.get(&chord).copied()
    }

    /// The keys bound to an action, in a stable order, for hints and help.
    pub fn keys_for(&self, action: Action) -> Vec<KeyChord> {
        self.bindings
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The first key bound to an action as text (`—` if unbound).
    pub fn key_label(&self, action: Action) -> String {
        self.keys_for(action)
            .first()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "—".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn defaults_cover_the_issue_keys() {
        let m = KeyMap::default();
        assert_eq!(
            m.action(&ev(KeyCode::Char(' '), KeyModifiers::NONE)),
            Some(Action::TogglePause)
        );
        assert_eq!(
            m.action(&ev(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(
            m.action(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::FocusPrev)
        );
        assert_eq!(
            m.action(&ev(KeyCode::Char('C'), KeyModifiers::CONTROL)),
            Some(Action::Interrupt)
        );
        assert_eq!(
            m.action(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        for a in Action::ALL {
            assert!(!m.keys_for(*a).is_empty(), "{a} has no default key");
        }
    }

    #[test]
    fn overrides_add_move_and_remove() {
        let mut o = BTreeMap::new();
        o.insert("ctrl-p".to_string(), "toggle_pause".to_string());
        o.insert("x".to_string(), "none".to_string());
        o.insert("F5".to_string(), "step".to_string());
        let m = KeyMap::with_overrides(&o).expect("valid overrides");
        assert_eq!(
            m.action(&ev(KeyCode::Char('p'), KeyModifiers::CONTROL)),
            Some(Action::TogglePause)
        );
        assert_eq!(m.action(&ev(KeyCode::Char('x'), KeyModifiers::NONE)), None);
        assert_eq!(
            m.action(&ev(KeyCode::F(5), KeyModifiers::NONE)),
            Some(Action::Step)
        );

        let mut bad = BTreeMap::new();
        bad.insert("q".to_string(), "explode".to_string());
        let e = KeyMap::with_overrides(&bad)
            .expect_err("unknown action")
            .to_string();
        assert!(e.contains("\"q\"") && e.contains("explode"), "{e}");
        let mut bad = BTreeMap::new();
        bad.insert("hyper-q".to_string(), "quit".to_string());
        assert!(KeyMap::with_overrides(&bad).is_err());
    }

    #[test]
    fn chords_parse_and_print() {
        for (s, shown) in [
            ("space", "Space"),
            ("ctrl-s", "Ctrl-s"),
            ("shift-tab", "Shift-Tab"),
            ("G", "G"),
        ] {
            let k: KeyChord = s.parse().expect(s);
            assert_eq!(k.to_string(), shown);
        }
    }
}
