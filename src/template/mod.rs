//! Templates: the texts that place prompts, inputs and hidden states in front of a model.
//!
//! A [`Template`] is a Jinja body (rendered with minijinja, undefined variables are errors) plus
//! what a call needs around it: stop strings, message alternatives cycled over samples, and
//! whether generation happens inside the model's chat format with the answer's start already
//! written. Our own files are TOML (`templates/*.toml`, compiled in); the reference
//! implementation's YAML layout loads too, so users can bring theirs.

mod builtin;
mod error;
mod proposal;
mod reference;
mod role;
mod toml_file;

pub use builtin::BUILTIN_NAMES;
pub use error::TemplateError;
pub use proposal::{copies_examples, parse_proposal, proposal_key, read_proposal, Rejection};
pub use role::TemplateRole;

use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::llm::{ChatMessage, Prompt};

/// A loaded, syntax-checked template.
#[derive(Clone)]
pub struct Template {
    /// The template's name (the file stem, or the `name` key).
    pub name: String,
    /// The Jinja text.
    pub source: String,
    /// Where it came from: a file path or `builtin:NAME`; error messages start with it.
    pub origin: String,
    /// The role the file declares (`role = "forward"`); checked at load time when present.
    pub role: Option<TemplateRole>,
    /// Generate inside the model's chat template (a user turn, then the assistant's answer
    /// starting with `assistant_prefix`). Only generation uses this; scoring is always raw text.
    pub chat: bool,
    /// The system message of a chat template.
    pub system: Option<String>,
    /// The start of the assistant's answer, already written, so a small model continues with the
    /// answer itself (e.g. `New instruction:`) instead of talking about the task.
    pub assistant_prefix: String,
    /// Generation stops before any of these.
    pub stop: Vec<String>,
    /// Short instructions cycled over samples as `{{ message }}`.
    pub message_alternatives: Vec<String>,
    /// Jinja whitespace control: drop the newline after a block tag and the indentation before
    /// it. On for our files (readable loops), off for reference YAML (renders as the reference).
    pub trim_blocks: bool,
    /// The line of `origin` holding the body's first line (to report file lines).
    body_line: usize,
    /// Trim trailing whitespace after rendering (reference templates, as the reference does).
    trim_end: bool,
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("role", &self.role)
            .field("chat", &self.chat)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Template {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.source == o.source
            && self.role == o.role
            && self.chat == o.chat
            && self.system == o.system
            && self.assistant_prefix == o.assistant_prefix
            && self.stop == o.stop
            && self.message_alternatives == o.message_alternatives
            && self.trim_blocks == o.trim_blocks
            && self.trim_end == o.trim_end
    }
}

/// Everything but the compiled body, as the loaders produce it.
pub(crate) struct Parts {
    pub name: String,
    pub source: String,
    pub origin: String,
    pub role: Option<TemplateRole>,
    pub chat: bool,
    pub system: Option<String>,
    pub assistant_prefix: String,
    pub stop: Vec<String>,
    pub message_alternatives: Vec<String>,
    pub trim_blocks: bool,
    pub body_line: usize,
    pub trim_end: bool,
}

impl Template {
    /// Parses our TOML template format from text; `name` names it in errors.
    pub fn parse_toml(name: &str, text: &str) -> Result<Template, TemplateError> {
        toml_file::parse(name, text, name)
    }

    /// Loads a TOML template file (`.toml`) or a reference YAML file (`.yaml`/`.yml`, latest
    /// version).
    pub fn load(path: &Path) -> Result<Template, TemplateError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") {
            return Self::load_reference_yaml(path, None);
        }
        let (stem, text) = read(path)?;
        toml_file::parse(&stem, &text, &path.display().to_string())
    }

    /// A template shipped with dln (`templates/NAME.toml`, compiled in); see [`BUILTIN_NAMES`].
    pub fn builtin(name: &str) -> Result<Template, TemplateError> {
        builtin::get(name)
    }

    /// Loads the reference implementation's YAML layout `{vX.Y: {template, stop_tokens,
    /// message_alternatives}}`. `version` is `v3.0`, `3.0` or `latest`; `None` means latest.
    pub fn load_reference_yaml(
        path: &Path,
        version: Option<&str>,
    ) -> Result<Template, TemplateError> {
        let (stem, text) = read(path)?;
        reference::parse(&stem, &text, &path.display().to_string(), version)
    }

    /// A template from a config's spec: `builtin:NAME` or a bare built-in name, a `.toml` path,
    /// or a `.yaml` path with an optional `:VERSION` suffix. Paths are relative to `base_dir`.
    pub fn from_spec(spec: &str, base_dir: &Path) -> Result<Template, TemplateError> {
        if let Some(name) = spec.strip_prefix("builtin:") {
            return Self::builtin(name);
        }
        if BUILTIN_NAMES.contains(&spec) {
            return Self::builtin(spec);
        }
        let at = |p: &str| crate::files::resolve(base_dir, p);
        for ext in [".yaml:", ".yml:"] {
            if let Some(i) = spec.rfind(ext) {
                let (file, version) = spec.split_at(i + ext.len() - 1);
                return Self::load_reference_yaml(&at(file), Some(&version[1..]));
            }
        }
        Self::load(&at(spec))
    }

    pub(crate) fn from_parts(p: Parts) -> Result<Template, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_trim_blocks(p.trim_blocks);
        env.set_lstrip_blocks(p.trim_blocks);
        env.add_template_owned(p.name.clone(), p.source.clone())
            .map_err(|e| TemplateError::Syntax {
                origin: p.origin.clone(),
                // An unclosed block is reported at the end of input, the line after the last
                // one: the mistake is on a line of the body.
                line: p.body_line + e.line().unwrap_or(1).min(p.source.lines().count().max(1)) - 1,
                message: describe(&e),
            })?;
        let t = Template {
            name: p.name,
            source: p.source,
            origin: p.origin,
            role: p.role,
            chat: p.chat,
            system: p.system,
            assistant_prefix: p.assistant_prefix,
            stop: p.stop,
            message_alternatives: p.message_alternatives,
            trim_blocks: p.trim_blocks,
            body_line: p.body_line,
            trim_end: p.trim_end,
            env: Arc::new(env),
        };
        if let Some(role) = t.role {
            t.validate_for(role)?;
        }
        Ok(t)
    }

    /// Checks that the body uses only the variables `role` provides; an unknown one is an error
    /// naming it and its line (a typo would otherwise fail mid-run).
    pub fn validate_for(&self, role: TemplateRole) -> Result<(), TemplateError> {
        self.validate_against(role.allowed(), &role.to_string())
    }

    /// [`Template::validate_for`] with an explicit set of allowed variable names.
    pub fn validate_against(&self, allowed: &[&str], role: &str) -> Result<(), TemplateError> {
        let tmpl = self
            .env
            .get_template(&self.name)
            .map_err(|e| self.render_error(&e))?;
        let mut unknown: Vec<String> = tmpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !allowed.contains(&v.as_str()) && !role::GLOBALS.contains(&v.as_str()))
            .collect();
        unknown.sort();
        match unknown.into_iter().next() {
            None => Ok(()),
            Some(variable) => Err(TemplateError::UnknownVariable {
                origin: self.origin.clone(),
                line: self.line_of_word(&variable),
                role: role.to_string(),
                allowed: allowed.join(", "),
                variable,
            }),
        }
    }

    /// Renders the body with `ctx` (a JSON object of the role's variables). Leading whitespace
    /// is dropped. Our templates keep trailing whitespace (minijinja drops the body's final
    /// newline, so a template that must end with a newline, to let the model start its answer
    /// on a fresh line, ends with a blank line); reference templates are trimmed at the end as
    /// the reference does.
    pub fn render(&self, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(&self.name)
            .map_err(|e| self.render_error(&e))?;
        let text = tmpl.render(ctx).map_err(|e| self.render_error(&e))?;
        let text = text.trim_start();
        Ok(if self.trim_end { text.trim_end() } else { text }.to_string())
    }

    /// What the model is given for a rendered text: raw completion text, or (chat templates) a
    /// conversation of the system message and one user turn, with the answer's start written.
    pub fn prompt(&self, rendered: String) -> Prompt {
        if !self.chat {
            return Prompt::Raw { text: rendered };
        }
        let mut messages = Vec::new();
        if let Some(system) = self.system.as_ref().filter(|s| !s.trim().is_empty()) {
            messages.push(ChatMessage {
                role: "system".to_string(),
                content: system.clone(),
            });
        }
        messages.push(ChatMessage {
            role: "user".to_string(),
            content: rendered,
        });
        Prompt::Chat {
            messages,
            assistant_prefix: self.assistant_prefix.clone(),
        }
    }

    /// The message alternative for sample `i` (cycled); empty when the template has none.
    pub fn message(&self, i: usize) -> &str {
        if self.message_alternatives.is_empty() {
            ""
        } else {
            &self.message_alternatives[i % self.message_alternatives.len()]
        }
    }

    /// The template in our TOML format (for checkpoints of edited templates, or to start a
    /// custom template from a built-in one).
    pub fn to_toml(&self) -> String {
        toml_file::write(self)
    }

    fn render_error(&self, e: &minijinja::Error) -> TemplateError {
        TemplateError::Render {
            origin: self.origin.clone(),
            line: e.line().map(|l| self.body_line + l - 1),
            message: describe(e),
        }
    }

    /// The file line of the first line of the body mentioning `word` as a whole word.
    fn line_of_word(&self, word: &str) -> Option<usize> {
        let is_ident = |c: char| c.is_alphanumeric() || c == '_';
        self.source
            .lines()
            .position(|line| {
                line.match_indices(word).any(|(i, _)| {
                    let before = line[..i].chars().next_back().is_none_or(|c| !is_ident(c));
                    let after = line[i + word.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !is_ident(c));
                    before && after
                })
            })
            .map(|i| self.body_line + i)
    }
}

/// A template file's stem (its default name) and text.
fn read(path: &Path) -> Result<(String, String), TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((stem, text))
}

/// minijinja's error kind and detail, without its own location suffix (we give the file line).
fn describe(e: &minijinja::Error) -> String {
    match (e.kind(), e.detail()) {
        // The error's own text already says "template syntax error".
        (minijinja::ErrorKind::SyntaxError, Some(d)) => d.to_string(),
        (_, Some(d)) => format!("{}: {d}", e.kind()),
        (kind, None) => kind.to_string(),
    }
}
