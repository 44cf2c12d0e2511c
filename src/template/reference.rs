//! The reference implementation's template files: YAML, one entry per version,
//! `{v1.0: {template, stop_tokens, message_alternatives, message, description}}`, Jinja bodies.

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{Parts, Template, TemplateError};

#[derive(Debug, Deserialize)]
struct Entry {
    template: String,
    #[serde(default)]
    stop_tokens: Option<Vec<String>>,
    #[serde(default)]
    message_alternatives: Option<Vec<String>>,
    /// The reference's default `message` when no alternative is given.
    #[serde(default)]
    message: Option<String>,
}

/// Parses a reference YAML template file and picks `version` (`None` or `latest`: the highest).
pub(crate) fn parse(
    name: &str,
    text: &str,
    origin: &str,
    version: Option<&str>,
) -> Result<Template, TemplateError> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError::File {
        origin: match e.location() {
            Some(l) => format!("{origin}:{}", l.line()),
            None => origin.to_string(),
        },
        message: e.to_string(),
    })?;
    let Value::Mapping(map) = doc else {
        return Err(file_error(
            origin,
            "expected a mapping of versions such as `v1.0:`",
        ));
    };
    let mut versions: Vec<(String, Vec<u64>, Value)> = Vec::new();
    for (key, value) in map {
        let key = match key {
            Value::String(s) => s,
            other => {
                return Err(file_error(
                    origin,
                    &format!("version key {other:?} is not `vX.Y`"),
                ))
            }
        };
        let number = parse_version(&key).ok_or_else(|| {
            file_error(
                origin,
                &format!("version key `{key}` is not in the form v1, v1.2, ..."),
            )
        })?;
        versions.push((key, number, value));
    }
    let available = || {
        versions
            .iter()
            .map(|v| v.0.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wanted = version
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "latest");
    let chosen = match wanted {
        None => versions.iter().max_by(|a, b| a.1.cmp(&b.1)),
        Some(v) => {
            let n = parse_version(v);
            versions.iter().find(|x| n.as_ref() == Some(&x.1))
        }
    };
    let Some((key, _, value)) = chosen else {
        return Err(TemplateError::Version {
            origin: origin.to_string(),
            version: wanted.unwrap_or("latest").to_string(),
            available: available(),
        });
    };
    let entry: Entry = serde_yaml_ng::from_value(value.clone())
        .map_err(|e| file_error(origin, &format!("version `{key}`: {e}")))?;
    // The reference writes newline stop tokens as '\n' in single quotes and unescapes them.
    let stop = entry
        .stop_tokens
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.replace("\\n", "\n"))
        .collect();
    let message_alternatives = match (entry.message_alternatives, entry.message) {
        (Some(alts), _) if !alts.is_empty() => alts,
        (_, Some(m)) => vec![m],
        _ => Vec::new(),
    };
    Template::from_parts(Parts {
        name: format!("{name}:{key}"),
        source: entry.template,
        origin: origin.to_string(),
        role: None,
        chat: false,
        system: None,
        assistant_prefix: String::new(),
        stop,
        message_alternatives,
        trim_blocks: false,
        trim_end: true,
        body_line: body_line(text, key),
    })
}

fn file_error(origin: &str, message: &str) -> TemplateError {
    TemplateError::File {
        origin: origin.to_string(),
        message: message.to_string(),
    }
}

/// `v3.0` / `3.0` / `v3` to comparable numbers (trailing zeros dropped, so `v3` = `v3.0`).
fn parse_version(s: &str) -> Option<Vec<u64>> {
    let digits = s.trim().rsplit('v').next()?;
    let mut parts: Vec<u64> = digits
        .split('.')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .ok()?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    Some(parts)
}

/// The file line of the chosen version's body's first line.
fn body_line(text: &str, key: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let is_key = |l: &str| {
        let l = l.trim_end();
        let unquoted = l.trim_start_matches(['"', '\'']);
        !l.starts_with(' ')
            && unquoted
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start_matches(['"', '\'']).starts_with(':'))
    };
    let Some(start) = lines.iter().position(|l| is_key(l)) else {
        return 1;
    };
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if !line.starts_with([' ', '\t'])
            && !line.trim().is_empty()
            && !line.trim_start().starts_with('#')
        {
            break;
        }
        if let Some(value) = line.trim_start().strip_prefix("template:") {
            let value = value.trim();
            return if value.starts_with(['|', '>']) || value.is_empty() {
                i + 2
            } else {
                i + 1
            };
        }
    }
    start + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("v3.0"), Some(vec![3]));
        assert_eq!(parse_version("3.5"), Some(vec![3, 5]));
        assert_eq!(parse_version("v10.1"), Some(vec![10, 1]));
        assert_eq!(parse_version("vx"), None);
    }

    #[test]
    fn body_line_of_a_block_scalar() {
        let text = "v1.0:\n  stop_tokens: ['#']\n  template: |-\n    {{ input }}\nv2.0:\n  template: |-\n    a\n    b\n";
        assert_eq!(body_line(text, "v1.0"), 4);
        assert_eq!(body_line(text, "v2.0"), 7);
    }
}
