//! Our template file format, TOML:
//!
//! ```toml
//! name = "propose_prompt"          # optional; the file stem otherwise
//! role = "propose_prompt"          # optional; checks the variables at load time
//! chat = true                      # generate inside the model's chat template
//! system = "..."                   # system message (chat only)
//! assistant_prefix = "New instruction:"
//! stop = ["\n\n"]
//! message_alternatives = ["...", "..."]
//! trim_blocks = true               # default true
//! template = """
//! ... minijinja ...
//! """
//! ```

use serde::{Deserialize, Serialize};

use super::{Parts, Template, TemplateError, TemplateRole};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<TemplateRole>,
    #[serde(default)]
    chat: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(default)]
    assistant_prefix: String,
    #[serde(default)]
    stop: Vec<String>,
    #[serde(default)]
    message_alternatives: Vec<String>,
    #[serde(default = "default_trim_blocks")]
    trim_blocks: bool,
    template: String,
}

fn default_trim_blocks() -> bool {
    true
}

/// Parses a TOML template; `default_name` applies when the file has no `name`, `origin` starts
/// every error message.
pub(crate) fn parse(
    default_name: &str,
    text: &str,
    origin: &str,
) -> Result<Template, TemplateError> {
    let file: TemplateFile = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(":{}", line_at(text, s.start)))
            .unwrap_or_default();
        TemplateError::File {
            origin: format!("{origin}{at}"),
            message: e.message().to_string(),
        }
    })?;
    if file.template.trim().is_empty() {
        return Err(TemplateError::File {
            origin: origin.to_string(),
            message: "`template` is empty".to_string(),
        });
    }
    Template::from_parts(Parts {
        name: file.name.unwrap_or_else(|| default_name.to_string()),
        source: file.template,
        origin: origin.to_string(),
        role: file.role,
        chat: file.chat,
        system: file.system,
        assistant_prefix: file.assistant_prefix,
        stop: file.stop,
        message_alternatives: file.message_alternatives,
        trim_blocks: file.trim_blocks,
        trim_end: false,
        body_line: body_line(text),
    })
}

/// Writes a template back in this format, laid out as a person would write it (the template
/// editor shows this text): one-line strings with escapes (`stop = ["\n\n"]`), the body as a
/// multi-line literal string. Falls back to the serializer's layout when the body cannot be a
/// literal string (it contains `'''`) or the hand layout would not read back the same.
pub(crate) fn write(t: &Template) -> String {
    let file = TemplateFile {
        name: Some(t.name.clone()),
        description: None,
        role: t.role,
        chat: t.chat,
        system: t.system.clone(),
        assistant_prefix: t.assistant_prefix.clone(),
        stop: t.stop.clone(),
        message_alternatives: t.message_alternatives.clone(),
        trim_blocks: t.trim_blocks,
        template: t.source.clone(),
    };
    if let Some(text) = write_by_hand(&file) {
        let reads_back = toml::from_str::<TemplateFile>(&text)
            .is_ok_and(|back| back.template == file.template && back.stop == file.stop);
        if reads_back {
            return text;
        }
    }
    // Serializing plain strings, vectors and an enum cannot fail; fall back to the body alone.
    toml::to_string(&file).unwrap_or_else(|_| format!("template = {:?}\n", t.source))
}

fn write_by_hand(f: &TemplateFile) -> Option<String> {
    if f.template.contains("'''") {
        return None;
    }
    // A JSON string literal is a valid TOML basic string for the escapes serde_json emits.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    let list = |v: &[String]| {
        if v.is_empty() {
            "[]".to_string()
        } else if v.len() == 1 {
            format!("[{}]", quote(&v[0]))
        } else {
            let items: Vec<String> = v.iter().map(|s| format!("    {},\n", quote(s))).collect();
            format!("[\n{}]", items.concat())
        }
    };
    let mut out = String::new();
    if let Some(name) = &f.name {
        out.push_str(&format!("name = {}\n", quote(name)));
    }
    if let Some(role) = f.role {
        let role = serde_json::to_value(role).ok()?;
        out.push_str(&format!("role = {role}\n"));
    }
    out.push_str(&format!("chat = {}\n", f.chat));
    if let Some(system) = &f.system {
        out.push_str(&format!("system = {}\n", quote(system)));
    }
    out.push_str(&format!(
        "assistant_prefix = {}\n",
        quote(&f.assistant_prefix)
    ));
    out.push_str(&format!("stop = {}\n", list(&f.stop)));
    out.push_str(&format!(
        "message_alternatives = {}\n",
        list(&f.message_alternatives)
    ));
    out.push_str(&format!("trim_blocks = {}\n", f.trim_blocks));
    out.push_str(&format!("template = '''\n{}'''\n", f.template));
    Some(out)
}

/// The 1-based line holding byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The file line of the body's first line: the `template =` line, or the next one when the
/// value opens a multi-line string at the end of that line (TOML drops that first newline).
fn body_line(text: &str) -> usize {
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("template") else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim();
        let opens_block = value
            .strip_prefix("\"\"\"")
            .or_else(|| value.strip_prefix("'''"))
            .is_some_and(|after| after.trim().is_empty());
        return if opens_block { i + 2 } else { i + 1 };
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_line_after_block_opening() {
        assert_eq!(body_line("name = \"x\"\ntemplate = \"\"\"\nHi\n\"\"\""), 3);
        assert_eq!(body_line("template = \"Hi {{ input }}\""), 1);
    }
}
