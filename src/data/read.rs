//! Reading data files into located examples: JSON Lines, JSON arrays, BIG-Bench Hard JSON.

use std::path::Path;

use serde_json::{Map, Value};

use super::{DataConfig, DataError, DataFormat, Example, Located};

/// Reads every example of one file, with its line, as `cfg`'s format and field names say.
pub(crate) fn read_file(path: &Path, cfg: &DataConfig) -> Result<Vec<Located>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let format = cfg
        .format
        .or_else(|| DataFormat::from_extension(path))
        .unwrap_or_else(|| {
            if text.trim_start().starts_with('[') {
                DataFormat::Json
            } else if serde_json::from_str::<Value>(text).is_ok() {
                DataFormat::Bbh
            } else {
                DataFormat::Jsonl
            }
        });
    let records = match format {
        DataFormat::Jsonl => read_lines(path, text)?,
        DataFormat::Json | DataFormat::Bbh => read_document(path, text)?,
    };
    if records.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    records
        .into_iter()
        .map(|(line, value)| {
            let example = to_example(path, line, &value, cfg)?;
            Ok(Located {
                example,
                path: path.to_path_buf(),
                line,
            })
        })
        .collect()
}

/// One JSON value per non-blank line.
fn read_lines(path: &Path, text: &str) -> Result<Vec<(usize, Value)>, DataError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            line: i + 1,
            message: format!("{} (column {})", without_location(&e), e.column()),
        })?;
        out.push((i + 1, value));
    }
    Ok(out)
}

/// A whole JSON document: an array of records, or an object with an `examples` array (BBH).
fn read_document(path: &Path, text: &str) -> Result<Vec<(usize, Value)>, DataError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| DataError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        message: format!("{} (column {})", without_location(&e), e.column()),
    })?;
    let (items, lines) = match doc {
        Value::Array(items) => (items, element_lines(text, false)),
        Value::Object(mut obj) => match obj.remove("examples") {
            Some(Value::Array(items)) => (items, element_lines(text, true)),
            _ => {
                return Err(DataError::Format {
                    path: path.to_path_buf(),
                    message: "expected a JSON array of records or a BIG-Bench object \
                              {\"examples\": [...]}, found an object without an `examples` array"
                        .to_string(),
                })
            }
        },
        other => {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "expected a JSON array of records or a BIG-Bench object, found {}",
                    kind(&other)
                ),
            })
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (lines.get(i).copied().unwrap_or(1), v))
        .collect())
}

fn to_example(
    path: &Path,
    line: usize,
    value: &Value,
    cfg: &DataConfig,
) -> Result<Example, DataError> {
    let Value::Object(obj) = value else {
        return Err(DataError::Json {
            path: path.to_path_buf(),
            line,
            message: format!("expected a JSON object per record, found {}", kind(value)),
        });
    };
    let input = field(path, line, obj, &cfg.input_field, "input")?;
    let target = field(path, line, obj, &cfg.target_field, "target")?;
    Ok(Example { input, target })
}

/// A field as text: strings as they are, numbers and booleans written out (numeric labels).
fn field(
    path: &Path,
    line: usize,
    obj: &Map<String, Value>,
    name: &str,
    which: &'static str,
) -> Result<String, DataError> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(DataError::FieldType {
            path: path.to_path_buf(),
            line,
            field: name.to_string(),
            expected: "a string (or a number)",
        }),
        None => Err(DataError::MissingField {
            path: path.to_path_buf(),
            line,
            field: name.to_string(),
            which,
            available: obj.keys().cloned().collect(),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json's message without its " at line L column C" suffix (we say where ourselves).
fn without_location(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The 1-based line where each element of the records array starts, in a document already known
/// to be valid JSON: the top-level array, or (`in_examples`) the array under the top-level
/// object's `examples` key.
fn element_lines(text: &str, in_examples: bool) -> Vec<usize> {
    #[derive(PartialEq)]
    enum Frame {
        Object,
        Array { target: bool },
    }
    let mut lines = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0;
    let mut last_top_string = String::new();
    let mut expect_element = false;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if stack.len() == 1 {
                    last_top_string = text[string_start..i].to_string();
                }
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let in_target = matches!(stack.last(), Some(Frame::Array { target: true }));
        if in_target && expect_element && c != ']' {
            lines.push(line);
            expect_element = false;
        }
        match c {
            '"' => {
                in_string = true;
                string_start = i + 1;
            }
            '{' => stack.push(Frame::Object),
            '[' => {
                let target = if in_examples {
                    stack.len() == 1 && stack[0] == Frame::Object && last_top_string == "examples"
                } else {
                    stack.is_empty()
                };
                stack.push(Frame::Array { target });
                expect_element = target;
            }
            '}' | ']' => {
                stack.pop();
            }
            ',' if in_target => expect_element = true,
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::element_lines;

    #[test]
    fn lines_of_array_elements() {
        let text = "[\n {\"a\": \"[x]\"},\n {\"a\": 1}, {\"b\": [1,\n2]}\n]";
        assert_eq!(element_lines(text, false), vec![2, 3, 3]);
    }

    #[test]
    fn lines_of_bbh_examples() {
        let text = "{\"canary\": \"[\\\"examples\\\"]\",\n \"examples\": [\n {\"input\": \"a\"},\n\n {\"input\": \"b\"}]}";
        assert_eq!(element_lines(text, true), vec![3, 5]);
    }
}
