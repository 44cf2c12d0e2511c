//! `--set key=value`: a dotted key (`train.iterations`, `layers.0.prompt`, `data.path`) set
//! on a loaded config, checked exactly as a file is.

use super::{unknown_field, Config, ConfigError};

impl Config {
    /// Applies `KEY=VALUE` (the `--set` form).
    pub fn apply_override(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let (k, v) = assignment
            .split_once('=')
            .ok_or_else(|| ConfigError::BadOverride(assignment.to_string()))?;
        self.set(k.trim(), v.trim())
    }

    /// Sets a dotted key (`train.iterations`, `layers.0.prompt`, `data.path`) to a value written
    /// as TOML (`3`, `true`, `"text"`) or as bare text (taken as a string). Unknown keys and
    /// ill-typed values are refused and the config is left unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::UnknownKey {
                key: key.to_string(),
                hint: String::new(),
            });
        }
        let mut root =
            toml::Value::try_from(&*self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let new_value = parse_value(value);
        let mut cursor = &mut root;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            cursor = match cursor {
                toml::Value::Table(t) => {
                    if last {
                        t.insert(part.to_string(), new_value.clone());
                        break;
                    }
                    t.entry(part.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                }
                toml::Value::Array(a) => {
                    let idx: usize = part.parse().map_err(|_| ConfigError::UnknownKey {
                        key: key.to_string(),
                        hint: format!(" (`{part}` should be a layer index)"),
                    })?;
                    let len = a.len();
                    let slot = a.get_mut(idx).ok_or_else(|| ConfigError::UnknownKey {
                        key: key.to_string(),
                        hint: format!(" (there are {len} entries)"),
                    })?;
                    if last {
                        *slot = new_value.clone();
                        break;
                    }
                    slot
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key: key.to_string(),
                        hint: format!(" (`{}` is not a table)", parts[..i].join(".")),
                    })
                }
            };
        }
        let updated: Config = root.try_into().map_err(|e: toml::de::Error| {
            let message = e.to_string();
            if unknown_field(&message).is_some() {
                ConfigError::UnknownKey {
                    key: key.to_string(),
                    hint: String::new(),
                }
            } else {
                ConfigError::InvalidValue {
                    key: key.to_string(),
                    message: message.trim().to_string(),
                }
            }
        })?;
        updated.validate().map_err(|e| ConfigError::InvalidValue {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        *self = updated;
        Ok(())
    }
}

/// A `--set` value: TOML if it parses as one, else the bare text as a string.
fn parse_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        Err(_) => toml::Value::String(text.to_string()),
    }
}
