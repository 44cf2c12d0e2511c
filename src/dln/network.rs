//! The network: `k` language layers, each a prompt with its templates and its own backends, and
//! the task's output classes.

use std::path::Path;

use crate::config::{Config, LayerConfig};
use crate::data::OutputClasses;
use crate::dln::demos::Demo;
use crate::dln::error::DlnError;
use crate::dln::events::{LayerIndex, LayerInfo, TemplateRole};
use crate::llm::SharedBackend;
use crate::template::{Role, Template};

/// The backends of one layer: forward calls (the layer itself) and backward calls (proposals).
#[derive(Clone)]
pub struct LayerBackends {
    pub forward: SharedBackend,
    pub backward: SharedBackend,
}

/// One language layer.
#[derive(Clone)]
pub struct Layer {
    pub index: LayerIndex,
    /// The current prompt `π`.
    pub prompt: String,
    /// The demonstrations shown before the input, in order: with the prompt, the layer's
    /// learnable parameter (empty unless `demos > 0` or given in the config).
    pub demos: Vec<Demo>,
    /// `k`: the most demonstrations the layer may learn to show (0 = instruction only).
    pub max_demos: usize,
    /// A pinned prompt (with its demonstrations) is never updated (until unpinned).
    pub pinned: bool,
    /// The config lets the loop update this layer.
    pub trainable: bool,
    /// `F(x; π)` (the output layer) or `F_h(x; π)` (a hidden layer).
    pub forward: Template,
    /// `R(x, h)`: joins the input and the hidden text below (layers above the first).
    pub residual: Option<Template>,
    /// `B_π`: proposes new prompts for this layer.
    pub propose_prompt: Template,
    /// `q`: proposes hidden texts below this layer (layers above the first).
    pub propose_hidden: Option<Template>,
    /// Templates a person replaced during the run, by role, as given (kept in checkpoints).
    pub edited_templates: Vec<(TemplateRole, String)>,
    pub forward_temperature: f32,
    pub forward_max_tokens: u32,
    pub backward_temperature: f32,
    pub backward_max_tokens: u32,
    pub backends: LayerBackends,
}

impl Layer {
    /// Whether the loop may change this layer's prompt now.
    pub fn updatable(&self) -> bool {
        self.trainable && !self.pinned
    }
}

/// The layers, input side first, and what the output layer answers with.
#[derive(Clone)]
pub struct Network {
    pub layers: Vec<Layer>,
    pub classes: Option<OutputClasses>,
}

/// The template spec a layer uses for `role`: the one its config gives, else the built-in for
/// its position (a hidden layer's forward template differs). The workbench's editor opens on
/// the same template the network loads.
pub fn template_spec(given: &str, role: TemplateRole, hidden: bool) -> &str {
    if !given.trim().is_empty() {
        return given;
    }
    match role {
        TemplateRole::Forward if hidden => "forward_hidden",
        TemplateRole::Forward => "forward",
        TemplateRole::Residual => "residual",
        TemplateRole::ProposePrompt => "propose_prompt",
        TemplateRole::ProposeHidden => "propose_hidden",
    }
}

/// Loads a template given in a config or a command (a built-in name, a file, or, from a command,
/// a whole template in our TOML format) and checks it uses only the variables of its role.
pub fn load_template(
    source: &str,
    role: TemplateRole,
    hidden: bool,
    base_dir: &Path,
) -> Result<Template, DlnError> {
    let looks_like_text = source.contains('\n') || source.contains('=');
    let t = if looks_like_text {
        Template::parse_toml(&format!("{}-template", role_name(role)), source)?
    } else {
        Template::from_spec(source, base_dir)?
    };
    t.validate_for(Role::for_layer(role, hidden))?;
    Ok(t)
}

/// The snake_case name of a role, as in events and checkpoints.
pub fn role_name(role: TemplateRole) -> &'static str {
    match role {
        TemplateRole::Forward => "forward",
        TemplateRole::Residual => "residual",
        TemplateRole::ProposePrompt => "propose_prompt",
        TemplateRole::ProposeHidden => "propose_hidden",
    }
}

impl Network {
    /// Builds the layers of `config`; `backends[l]` serve layer `l`. The output layer's empty
    /// prompt defaults to the task description.
    pub fn from_config(
        config: &Config,
        classes: Option<OutputClasses>,
        backends: Vec<LayerBackends>,
    ) -> Result<Network, DlnError> {
        let k = config.layers.len();
        let base = config.base_dir();
        let mut layers = Vec::with_capacity(k);
        for (l, (lc, be)) in config.layers.iter().zip(backends).enumerate() {
            let hidden = l + 1 < k;
            let spec = |given: &str, role: TemplateRole| -> Result<Template, DlnError> {
                load_template(template_spec(given, role, hidden), role, hidden, &base)
                    .map_err(|e| DlnError::Config(format!("layer {l}: {e}")))
            };
            let t = &lc.templates;
            if l == 0 && (!t.residual.is_empty() || !t.propose_hidden.is_empty()) {
                return Err(DlnError::Config(
                    "layer 0 reads the input directly: `residual` and `propose_hidden` templates belong to the \
                     layers above it"
                        .into(),
                ));
            }
            layers.push(Layer {
                index: l,
                prompt: initial_prompt(config, lc, hidden),
                demos: lc.demonstrations.clone(),
                max_demos: lc.demos.max(lc.demonstrations.len()),
                pinned: lc.pinned,
                trainable: config.trainable(l),
                forward: spec(&t.forward, TemplateRole::Forward)?,
                residual: if l > 0 {
                    Some(spec(&t.residual, TemplateRole::Residual)?)
                } else {
                    None
                },
                propose_prompt: spec(&t.propose_prompt, TemplateRole::ProposePrompt)?,
                propose_hidden: if l > 0 {
                    Some(spec(&t.propose_hidden, TemplateRole::ProposeHidden)?)
                } else {
                    None
                },
                edited_templates: Vec::new(),
                forward_temperature: lc.forward_temperature,
                forward_max_tokens: lc.forward_max_tokens(!hidden),
                backward_temperature: lc.backward_temperature,
                backward_max_tokens: lc.backward_max_tokens,
                backends: be,
            });
        }
        if layers.len() != k {
            return Err(DlnError::Config(format!(
                "{k} layers configured but {} backends given",
                layers.len()
            )));
        }
        Ok(Network { layers, classes })
    }

    pub fn output(&self) -> LayerIndex {
        self.layers.len() - 1
    }

    pub fn prompts(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.prompt.clone()).collect()
    }

    /// Every layer's demonstrations (all empty when no layer shows any).
    pub fn demos(&self) -> Vec<Vec<Demo>> {
        self.layers.iter().map(|l| l.demos.clone()).collect()
    }

    /// Sets every layer's demonstrations (`demos[l]`; a missing entry means none), skipping
    /// pinned layers when `keep_pinned`.
    pub fn set_demos(&mut self, demos: &[Vec<Demo>], keep_pinned: bool) {
        for layer in &mut self.layers {
            if !(keep_pinned && layer.pinned) {
                layer.demos = demos.get(layer.index).cloned().unwrap_or_default();
            }
        }
    }

    /// Replaces a layer's template after validating it; the old one stays on any error.
    pub fn set_template(
        &mut self,
        layer: LayerIndex,
        role: TemplateRole,
        source: &str,
        base: &Path,
    ) -> Result<(), DlnError> {
        let k = self.layers.len();
        let hidden = layer + 1 < k;
        let l = self.layers.get_mut(layer).ok_or_else(|| {
            DlnError::Command(format!("there is no layer {layer} (the network has {k})"))
        })?;
        let t = load_template(source, role, hidden, base)?;
        match role {
            TemplateRole::Forward => l.forward = t,
            TemplateRole::ProposePrompt => l.propose_prompt = t,
            TemplateRole::Residual | TemplateRole::ProposeHidden if layer == 0 => {
                return Err(DlnError::Command(format!(
                    "layer 0 has no {} template (it reads the input directly)",
                    role_name(role)
                )))
            }
            TemplateRole::Residual => l.residual = Some(t),
            TemplateRole::ProposeHidden => l.propose_hidden = Some(t),
        }
        l.edited_templates.retain(|(r, _)| *r != role);
        l.edited_templates.push((role, source.to_string()));
        Ok(())
    }

    /// The per-layer summary of a `RunStarted` event.
    pub fn layer_infos(&self) -> Vec<LayerInfo> {
        self.layers
            .iter()
            .map(|l| LayerInfo {
                index: l.index,
                prompt: l.prompt.clone(),
                pinned: l.pinned,
                trainable: l.trainable,
                model: l.backends.forward.model_id(),
            })
            .collect()
    }
}

fn initial_prompt(config: &Config, lc: &LayerConfig, hidden: bool) -> String {
    if !lc.prompt.trim().is_empty() || hidden {
        lc.prompt.clone()
    } else {
        config.task.description.clone()
    }
}
