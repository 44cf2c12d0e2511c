//! The templates shipped with dln: `templates/*.toml`, compiled into the binary.

use super::{toml_file, Template, TemplateError};

/// Names of the built-in templates, usable as `builtin:NAME` (or bare `NAME`) in a config.
pub const BUILTIN_NAMES: &[&str] = &[
    "forward",
    "forward_chat",
    "forward_input_first",
    "forward_hidden",
    "forward_hidden_chat",
    "residual",
    "propose_prompt",
    "propose_hidden",
    "propose_hidden_forward",
    "propose_reflective",
];

const SOURCES: &[(&str, &str)] = &[
    ("forward", include_str!("../../templates/forward.toml")),
    (
        "forward_chat",
        include_str!("../../templates/forward_chat.toml"),
    ),
    (
        "forward_input_first",
        include_str!("../../templates/forward_input_first.toml"),
    ),
    (
        "forward_hidden",
        include_str!("../../templates/forward_hidden.toml"),
    ),
    (
        "forward_hidden_chat",
        include_str!("../../templates/forward_hidden_chat.toml"),
    ),
    ("residual", include_str!("../../templates/residual.toml")),
    (
        "propose_prompt",
        include_str!("../../templates/propose_prompt.toml"),
    ),
    (
        "propose_hidden",
        include_str!("../../templates/propose_hidden.toml"),
    ),
    (
        "propose_hidden_forward",
        include_str!("../../templates/propose_hidden_forward.toml"),
    ),
    (
        "propose_reflective",
        include_str!("../../templates/propose_reflective.toml"),
    ),
];

/// The built-in template `name`, parsed and checked against its role.
pub(crate) fn get(name: &str) -> Result<Template, TemplateError> {
    let Some((_, text)) = SOURCES.iter().find(|(n, _)| *n == name) else {
        return Err(TemplateError::UnknownBuiltin {
            name: name.to_string(),
            known: BUILTIN_NAMES.join(", "),
        });
    };
    toml_file::parse(name, text, &format!("builtin:{name}"))
}
