//! The user's workbench settings: `config.toml` in the config directory (from the `directories`
//! crate; `DLN_CONFIG` names another file), holding `theme = "..."` and a `[keys]` table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What the config file may say.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Theme name (built-in or a file in `<config dir>/themes/`), or a path to a `.toml` theme.
    pub theme: Option<String>,
    /// Key string → action name; see [`super::keymap`].
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

/// Why the config file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The config file's path: `DLN_CONFIG`, else `<config dir>/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DLN_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "dln").map(|d| d.config_dir().join("config.toml"))
}

/// The directory user themes live under (`<dir>/themes/NAME.toml`): the config file's directory.
pub fn config_dir() -> Option<PathBuf> {
    config_path().and_then(|p| p.parent().map(Path::to_path_buf))
}

impl Settings {
    /// Read the settings; a missing file means defaults.
    pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
        let Some(path) = path else {
            return Ok(Settings::default());
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        toml::from_str(&text).map_err(|e| SettingsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_default_and_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.toml");
        assert_eq!(
            Settings::load(Some(&p)).expect("missing ok"),
            Settings::default()
        );
        std::fs::write(
            &p,
            "theme = \"light\"\n[keys]\n\"ctrl-p\" = \"toggle_pause\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&p)).expect("valid");
        assert_eq!(s.theme.as_deref(), Some("light"));
        assert_eq!(
            s.keys.get("ctrl-p").map(String::as_str),
            Some("toggle_pause")
        );
        std::fs::write(&p, "colour = 3\n").expect("write");
        let e = Settings::load(Some(&p))
            .expect_err("unknown field")
            .to_string();
        assert!(e.contains("config.toml") && e.contains("colour"), "{e}");
    }
}
