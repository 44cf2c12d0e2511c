//! Colour themes: `themes/*.toml` compiled in, overridable by a file of the same name in the
//! user's config directory (`<config>/themes/NAME.toml`), or given as a path. `NO_COLOR` selects
//! the monochrome theme unless a theme was asked for explicitly on the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The themes shipped in the binary, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// Why a theme could not be loaded; each names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("unknown theme `{0}` (built-in themes: dark, light, mono; or put {0}.toml in {1})")]
    Unknown(String, String),
    #[error("cannot read theme file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("theme {origin}: {message}")]
    Parse { origin: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    styles: BTreeMap<String, StyleSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

impl StyleSpec {
    fn to_style(&self, origin: &str, key: &str) -> Result<Style, ThemeError> {
        let err = |message: String| ThemeError::Parse {
            origin: origin.to_string(),
            message,
        };
        let color = |field: &str, value: &str| {
            Color::from_str(value).map_err(|_| {
                err(format!(
                    "styles.{key}.{field}: `{value}` is not a colour (use a name like \"cyan\", \
                     \"reset\", an index 0-255 or \"#rrggbb\")"
                ))
            })
        };
        let mut style = Style::default();
        if let Some(fg) = &self.fg {
            style = style.fg(color("fg", fg)?);
        }
        if let Some(bg) = &self.bg {
            style = style.bg(color("bg", bg)?);
        }
        for m in &self.modifiers {
            let modifier = match m.to_ascii_lowercase().replace('-', "_").as_str() {
                "bold" => Modifier::BOLD,
                "dim" => Modifier::DIM,
                "italic" => Modifier::ITALIC,
                "underlined" | "underline" => Modifier::UNDERLINED,
                "reversed" | "reverse" => Modifier::REVERSED,
                "crossed_out" | "strikethrough" => Modifier::CROSSED_OUT,
                "slow_blink" | "blink" => Modifier::SLOW_BLINK,
                other => {
                    return Err(err(format!(
                        "styles.{key}.modifiers: unknown modifier `{other}` (bold, dim, italic, \
                         underlined, reversed, crossed_out)"
                    )))
                }
            };
            style = style.add_modifier(modifier);
        }
        Ok(style)
    }
}

macro_rules! theme_struct {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// The resolved styles of every element the workbench draws.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            /// The name it was loaded under (shown in the help overlay).
            pub name: String,
            $($(#[$doc])* pub $field: Style,)*
        }

        impl Theme {
            /// Every style key a theme file may set.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn from_map(
                name: &str,
                origin: &str,
                base: Option<&Theme>,
                map: &BTreeMap<String, StyleSpec>,
            ) -> Result<Theme, ThemeError> {
                if let Some(unknown) = map.keys().find(|k| !Self::KEYS.contains(&k.as_str())) {
                    return Err(ThemeError::Parse {
                        origin: origin.to_string(),
                        message: format!(
                            "unknown style `styles.{unknown}` (known: {})",
                            Self::KEYS.join(", ")
                        ),
                    });
                }
                Ok(Theme {
                    name: name.to_string(),
                    $($field: match (map.get(stringify!($field)), base) {
                        (Some(spec), _) => spec.to_style(origin, stringify!($field))?,
                        (None, Some(b)) => b.$field,
                        (None, None) => {
                            return Err(ThemeError::Parse {
                                origin: origin.to_string(),
                                message: format!("missing style `styles.{}`", stringify!($field)),
                            })
                        }
                    },)*
                })
            }
        }
    };
}

theme_struct! {
    /// Ordinary text.
    text,
    /// Secondary text: labels, hints, empty-state messages.
    muted,
    /// Pane titles.
    title,
    border,
    /// The border of the focused pane.
    border_focused,
    /// The selected row.
    selection,
    /// The winning candidate.
    winner,
    /// The best posterior sample `h*`.
    best,
    /// The pinned marker.
    pinned,
    /// Anything a person wrote or did (human samples, edits).
    human,
    /// Correct predictions, improvements.
    good,
    /// Wrong predictions, excluded samples.
    bad,
    warning,
    error,
    diff_added,
    diff_removed,
    /// Weight bars.
    bar,
    /// The stage progress gauge.
    gauge,
    chart_train,
    chart_dev,
    chart_elbo,
    /// The status bar background.
    status,
    status_running,
    status_paused,
    status_stopped,
    /// Key names in hints and help.
    key,
}

impl Theme {
    /// A built-in theme by name; `None` for an unknown name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        // Built-in files are checked by a unit test, so a parse failure here is a build bug.
        Self::parse(name, &format!("built-in {name}"), None, text).ok()
    }

    /// The default dark theme.
    pub fn dark() -> Theme {
        Self::builtin("dark").unwrap_or_else(Self::fallback)
    }

    /// The monochrome theme, used when `NO_COLOR` is set.
    pub fn mono() -> Theme {
        Self::builtin("mono").unwrap_or_else(Self::fallback)
    }

    /// Unstyled everything: only reached if a built-in file were broken.
    fn fallback() -> Theme {
        let map = Self::KEYS
            .iter()
            .map(|k| (k.to_string(), StyleSpec::default()))
            .collect();
        match Self::from_map("plain", "fallback", None, &map) {
            Ok(t) => t,
            Err(_) => unreachable!("every key is present in the fallback map"),
        }
    }

    /// Parse a theme file; keys it leaves out come from `base`.
    fn parse(
        name: &str,
        origin: &str,
        base: Option<&Theme>,
        text: &str,
    ) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| ThemeError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        Self::from_map(name, origin, base, &file.styles)
    }

    /// Resolve a theme the way the user expects: a path to a `.toml` file; else
    /// `<config_dir>/themes/NAME.toml` (layered over the built-in of that name, or over dark);
    /// else the built-in NAME.
    pub fn load(name: &str, config_dir: Option<&Path>) -> Result<Theme, ThemeError> {
        let as_path = Path::new(name);
        if name.ends_with(".toml") && as_path.is_file() {
            let stem = as_path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name)
                .to_string();
            return Self::load_file(&stem, as_path);
        }
        if let Some(dir) = config_dir {
            let path = dir.join("themes").join(format!("{name}.toml"));
            if path.is_file() {
                return Self::load_file(name, &path);
            }
        }
        Self::builtin(name).ok_or_else(|| {
            let dir = config_dir
                .map(|d| d.join("themes").display().to_string())
                .unwrap_or_else(|| "the config directory's themes/".to_string());
            ThemeError::Unknown(name.to_string(), dir)
        })
    }

    fn load_file(name: &str, path: &Path) -> Result<Theme, ThemeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ThemeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = Self::builtin(name).unwrap_or_else(Self::dark);
        Self::parse(name, &path.display().to_string(), Some(&base), &text)
    }

    /// Choose the theme: `--theme` wins, then `NO_COLOR` (→ mono), then the config file's
    /// `theme`, then dark.
    pub fn choose(
        cli: Option<&str>,
        config: Option<&str>,
        no_color: bool,
        config_dir: Option<&Path>,
    ) -> Result<Theme, ThemeError> {
        match (cli, no_color, config) {
            (Some(name), _, _) => Self::load(name, config_dir),
            (None, true, _) => Ok(Self::mono()),
            (None, false, Some(name)) => Self::load(name, config_dir),
            (None, false, None) => Ok(Self::dark()),
        }
    }
}

/// Whether `NO_COLOR` asks for no colour (set and non-empty, per no-color.org).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_completely() {
        for (name, text) in BUILTIN {
            let theme = Theme::parse(name, name, None, text);
            assert!(theme.is_ok(), "{name}: {:?}", theme.err());
        }
    }

    #[test]
    fn mono_has_no_colours() {
        let t = Theme::mono();
        for s in [t.text, t.selection, t.winner, t.bad, t.status, t.chart_dev] {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
    }

    #[test]
    fn user_override_layers_over_builtin_and_reports_bad_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/dark.toml"),
            "[styles]\nwinner = { fg = \"red\" }\n",
        )
        .expect("write");
        let t = Theme::load("dark", Some(dir.path())).expect("load");
        assert_eq!(t.winner.fg, Some(Color::Red));
        assert_eq!(t.text, Theme::dark().text);

        std::fs::write(
            dir.path().join("themes/bad.toml"),
            "[styles]\nwiner = { fg = \"red\" }\n",
        )
        .expect("write");
        let e = Theme::load("bad", Some(dir.path()))
            .expect_err("typo must fail")
            .to_string();
        assert!(e.contains("styles.winer"), "{e}");
        std::fs::write(
            dir.path().join("themes/bad.toml"),
            "[styles]\nwinner = { fg = \"blurple\" }\n",
        )
        .expect("write");
        let e = Theme::load("bad", Some(dir.path()))
            .expect_err("colour must fail")
            .to_string();
        assert!(
            e.contains("styles.winner.fg") && e.contains("bad.toml"),
            "{e}"
        );
    }

    #[test]
    fn no_color_picks_mono_unless_cli_says_otherwise() {
        assert_eq!(
            Theme::choose(None, Some("light"), true, None)
                .expect("t")
                .name,
            "mono"
        );
        assert_eq!(
            Theme::choose(Some("light"), None, true, None)
                .expect("t")
                .name,
            "light"
        );
        assert_eq!(
            Theme::choose(None, Some("light"), false, None)
                .expect("t")
                .name,
            "light"
        );
        assert!(Theme::choose(Some("nope"), None, false, None).is_err());
    }
}
