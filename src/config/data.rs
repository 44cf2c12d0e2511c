//! `[data]`: the data module's [`DataConfig`], typed and checked when the config is read (so a
//! typo, an unknown format or a bad split is reported by `Config::load` with the file and line,
//! not when a session starts), but kept as the TOML table the user wrote: a run directory's copy
//! and an exported network then say only what was said, and defaults stay the data module's.

use serde::{Deserialize, Deserializer};

use super::{Config, ConfigError};
use crate::data::DataConfig;

/// Serde's reader of the `[data]` table: any error is the table's, so the TOML parser reports it
/// at the table's line.
pub(super) fn typed_table<'de, D: Deserializer<'de>>(d: D) -> Result<toml::Table, D::Error> {
    let table = toml::Table::deserialize(d)?;
    typed(&table).map_err(serde::de::Error::custom)?;
    Ok(table)
}

/// The table as the data module's settings, checked; the message names the `data.` key.
fn typed(table: &toml::Table) -> Result<DataConfig, String> {
    let dc = DataConfig::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let message = e.message().trim().to_string();
        match super::unknown_field(&message) {
            Some(field) => format!("unknown key `data.{field}`; {message}"),
            None => format!("in `[data]`: {message}"),
        }
    })?;
    dc.check().map_err(|e| e.to_string())?;
    Ok(dc)
}

/// Reads only the `[data]` table of config text (other tables are ignored here), so that an
/// ill-typed data key is reported at its own line rather than at the table's.
pub(super) fn check_text(text: &str) -> Result<(), toml::de::Error> {
    #[derive(Deserialize)]
    struct DataOnly {
        #[serde(default)]
        #[allow(dead_code)]
        data: DataConfig,
    }
    toml::from_str::<DataOnly>(text).map(drop)
}

impl Config {
    /// The `[data]` table as the data module's settings (checked as on load: `data` is public and
    /// may have been edited since).
    pub fn data_config(&self) -> Result<DataConfig, ConfigError> {
        typed(&self.data).map_err(|message| ConfigError::InvalidValue {
            key: "data".into(),
            message,
        })
    }
}
