//! The network: `k` language layers, each a prompt with its templates and its own backends, and
//! the task's output classes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{Config, LayerConfig, LayerTemplates};
use crate::data::OutputClasses;
use crate::dln::demos::Demo;
use crate::dln::error::DlnError;
use crate::dln::events::{LayerIndex, LayerInfo};
use crate::dln::feedback::Note;
use crate::llm::{ChatMessage, SharedBackend};
use crate::template::{Template, TemplateRole};

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
    /// Pinned demonstrations: no demonstration moves, while the instruction still trains.
    pub demos_pinned: bool,
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
    /// A person's notes in force, shown to the layer's proposals (kept in checkpoints).
    pub feedback: Vec<Note>,
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

    /// The layer's templates by slot.
    pub fn templates(&self) -> impl Iterator<Item = (TemplateRole, &Template)> {
        [
            (TemplateRole::Forward, Some(&self.forward)),
            (TemplateRole::Residual, self.residual.as_ref()),
            (TemplateRole::ProposePrompt, Some(&self.propose_prompt)),
            (TemplateRole::ProposeHidden, self.propose_hidden.as_ref()),
        ]
        .into_iter()
        .filter_map(|(r, t)| Some((r, t?)))
    }
}

/// The layers, input side first, and what the output layer answers with.
#[derive(Clone)]
pub struct Network {
    pub layers: Vec<Layer>,
    pub classes: Option<OutputClasses>,
}

/// The proposal template of a layer under `train.optimizer = "gepa"` when its config names none:
/// GEPA's reflective mutation.
pub const GEPA_PROPOSE_TEMPLATE: &str = "propose_reflective";

/// The template spec a layer uses for the slot `role`: the one its config gives, else the
/// built-in for its position (a hidden layer's forward template is `forward_hidden`).
pub fn template_spec(given: &str, role: TemplateRole, hidden: bool) -> &str {
    if !given.trim().is_empty() {
        return given;
    }
    role.at_layer(hidden).name()
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
        Template::parse_toml(&format!("{}-template", role.slot().name()), source)?
    } else {
        Template::from_spec(source, base_dir)?
    };
    t.validate_for(role.at_layer(hidden))?;
    Ok(t)
}

/// The spec a layer's config gives for the slot `role` (empty: the built-in default).
pub fn given_spec(t: &LayerTemplates, role: TemplateRole) -> &str {
    match role.slot() {
        TemplateRole::Residual => &t.residual,
        TemplateRole::ProposePrompt => &t.propose_prompt,
        TemplateRole::ProposeHidden => &t.propose_hidden,
        _ => &t.forward,
    }
}

/// [`given_spec`], to write.
pub fn given_spec_mut(t: &mut LayerTemplates, role: TemplateRole) -> &mut String {
    match role.slot() {
        TemplateRole::Residual => &mut t.residual,
        TemplateRole::ProposePrompt => &mut t.propose_prompt,
        TemplateRole::ProposeHidden => &mut t.propose_hidden,
        _ => &mut t.forward,
    }
}

/// The templates of layer `l` of `config`, one per slot it has ([`TemplateRole::of_layer`]), as
/// the network loads them: a person's last replacement of the slot in `edited`, else the
/// config's spec, else the built-in for the layer's position; each checked against its role.
/// The one derivation the network, `dln export` and the workbench's start share.
pub fn layer_templates(
    config: &Config,
    l: LayerIndex,
    edited: &[(TemplateRole, String)],
) -> Result<Vec<(TemplateRole, Template)>, DlnError> {
    let hidden = l + 1 < config.layers.len();
    let base = config.base_dir();
    let lc = &config.layers[l];
    TemplateRole::of_layer(l)
        .iter()
        .map(|&role| {
            let source = match edited.iter().rev().find(|(r, _)| r.slot() == role) {
                Some((_, s)) => s.as_str(),
                None if role == TemplateRole::ProposePrompt
                    && config.train.gepa()
                    && given_spec(&lc.templates, role).trim().is_empty() =>
                {
                    GEPA_PROPOSE_TEMPLATE
                }
                None => template_spec(given_spec(&lc.templates, role), role, hidden),
            };
            Ok((role, load_template(source, role, hidden, &base)?))
        })
        .collect()
}

/// [`layer_templates`] of the config alone, with what a layer's position forbids, each error
/// naming the layer.
fn checked_layer_templates(
    config: &Config,
    l: LayerIndex,
) -> Result<Vec<(TemplateRole, Template)>, DlnError> {
    let t = &config.layers[l].templates;
    if l == 0 && (!t.residual.is_empty() || !t.propose_hidden.is_empty()) {
        return Err(DlnError::Config(
            "layer 0 reads the input directly: `residual` and `propose_hidden` templates belong to the \
             layers above it"
                .into(),
        ));
    }
    layer_templates(config, l, &[]).map_err(|e| DlnError::Config(format!("layer {l}: {e}")))
}

/// Checks that every template `config` names loads and fits its role, without a backend: what
/// [`Network::from_config`] would refuse, found before a model loads or a run directory exists.
pub fn check_templates(config: &Config) -> Result<(), DlnError> {
    (0..config.layers.len()).try_for_each(|l| checked_layer_templates(config, l).map(|_| ()))
}

/// A chat forward template is scored as the rendered chat's raw text, which only a backend that
/// renders chats itself can give: asked here, when the network is built, so a server backend
/// refuses the config before any call instead of at the first forward pass.
fn check_chat_forward(l: usize, forward: &Template, be: &LayerBackends) -> Result<(), DlnError> {
    if !forward.chat {
        return Ok(());
    }
    let probe = [ChatMessage {
        role: "user".into(),
        content: String::new(),
    }];
    be.forward
        .chat_text(&probe, "")
        .map(|_| ())
        .map_err(|e| chat_forward_refused(l, forward, e))
}

/// The refusal of a chat forward template by a backend that cannot give a chat's text: one
/// message, whether found when the network is built, at a live edit, or (should a template reach
/// a forward call unchecked) when the call renders it.
pub(crate) fn chat_forward_refused(
    l: LayerIndex,
    forward: &Template,
    e: impl std::fmt::Display,
) -> DlnError {
    DlnError::Config(format!(
        "layer {l}: the forward template `{}` is a chat template: {e}",
        forward.origin
    ))
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
        let mut layers = Vec::with_capacity(k);
        for (l, (lc, be)) in config.layers.iter().zip(backends).enumerate() {
            let hidden = l + 1 < k;
            let mut templates: BTreeMap<TemplateRole, Template> =
                checked_layer_templates(config, l)?.into_iter().collect();
            let mut take = |role| templates.remove(&role);
            let missing = || DlnError::Config(format!("layer {l}: a template slot is missing"));
            let forward = take(TemplateRole::Forward).ok_or_else(missing)?;
            check_chat_forward(l, &forward, &be)?;
            let propose_prompt = take(TemplateRole::ProposePrompt).ok_or_else(missing)?;
            layers.push(Layer {
                index: l,
                prompt: initial_prompt(config, lc, hidden),
                demos: lc.demonstrations.clone(),
                max_demos: lc.demos.max(lc.demonstrations.len()),
                pinned: lc.pinned,
                demos_pinned: false,
                trainable: config.trainable(l),
                forward,
                residual: take(TemplateRole::Residual),
                propose_prompt,
                propose_hidden: take(TemplateRole::ProposeHidden),
                feedback: Vec::new(),
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

    /// Every layer's prompt from `prompts` (by index; a layer past its end keeps its own), except
    /// a pinned layer's: the network going back to prompts it had (a patience reset, GEPA's
    /// parent).
    pub fn set_unpinned_prompts(&mut self, prompts: &[String]) {
        for (layer, prompt) in self.layers.iter_mut().zip(prompts) {
            if !layer.pinned {
                layer.prompt.clone_from(prompt);
            }
        }
    }

    /// Sets every layer's demonstrations (`demos[l]`; a missing entry means none), skipping
    /// pinned layers (and pinned demonstrations) when `keep_pinned`.
    pub fn set_demos(&mut self, demos: &[Vec<Demo>], keep_pinned: bool) {
        for layer in &mut self.layers {
            if !(keep_pinned && (layer.pinned || layer.demos_pinned)) {
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
        let role = role.slot();
        match role {
            TemplateRole::Residual | TemplateRole::ProposeHidden if layer == 0 => {
                return Err(DlnError::Command(format!(
                    "layer 0 has no {role} template (it reads the input directly)"
                )))
            }
            TemplateRole::Residual => l.residual = Some(t),
            TemplateRole::ProposePrompt => l.propose_prompt = t,
            TemplateRole::ProposeHidden => l.propose_hidden = Some(t),
            _ => {
                // A live edit meets the same check as the config: refused now, not at the
                // next forward call.
                check_chat_forward(layer, &t, &l.backends)?;
                l.forward = t
            }
        }
        l.edited_templates.retain(|(r, _)| *r != role);
        l.edited_templates.push((role, source.to_string()));
        Ok(())
    }

    /// The output layer's forward model: what a run names as its `model`.
    pub fn model_id(&self) -> String {
        self.layers[self.output()].backends.forward.model_id()
    }

    /// Every backend the network calls (each layer's forward and backward), for the driver to
    /// hold while a pause lasts ([`crate::llm::Backend::hold`]).
    pub fn backends(&self) -> Vec<SharedBackend> {
        self.layers
            .iter()
            .flat_map(|l| [l.backends.forward.clone(), l.backends.backward.clone()])
            .collect()
    }

    /// Every model the network calls besides [`Network::model_id`], by role: `backward` when every layer proposes with one other model, else
    /// `layer N backward` per layer (1-based); `layer N forward` for a layer that runs on
    /// another model. Empty when one model does everything.
    pub fn other_models(&self) -> BTreeMap<String, String> {
        let main = self.model_id();
        let mut roles = BTreeMap::new();
        let backward: Vec<String> = self
            .layers
            .iter()
            .map(|l| l.backends.backward.model_id())
            .collect();
        if backward.iter().all(|m| *m == backward[0]) {
            if backward[0] != main {
                roles.insert("backward".to_string(), backward[0].clone());
            }
        } else {
            for (i, m) in backward.iter().enumerate() {
                if *m != main {
                    roles.insert(format!("layer {} backward", i + 1), m.clone());
                }
            }
        }
        for (i, l) in self.layers.iter().enumerate() {
            let m = l.backends.forward.model_id();
            if m != main {
                roles.insert(format!("layer {} forward", i + 1), m);
            }
        }
        roles
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
                templates: l.templates().map(|(r, t)| (r, t.to_toml())).collect(),
                demos: l.demos.clone(),
                max_demos: l.max_demos,
                demos_pinned: l.demos_pinned,
                feedback: l.feedback.clone(),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::llm::openai::{ApiKey, Capabilities, OpenAiBackend, OpenAiConfig};
    use crate::llm::scripted::ScriptedBackend;

    fn chat_config() -> Config {
        let text = "[task]\nname = \"t\"\ndescription = \"Answer.\"\n[data]\npath = \"d.json\"\n\
                    [[layers]]\n[layers.templates]\nforward = \"forward_chat\"\n";
        Config::parse(text, Path::new("t.toml")).expect("parses")
    }

    fn on(config: &Config, backend: SharedBackend) -> Result<Network, DlnError> {
        let backends = vec![LayerBackends {
            forward: backend.clone(),
            backward: backend,
        }];
        Network::from_config(config, None, backends)
    }

    #[test]
    fn a_chat_forward_template_builds_where_the_backend_renders_chats() {
        let network = on(&chat_config(), Arc::new(ScriptedBackend::new())).expect("builds");
        assert!(network.layers[0].forward.chat);
    }

    /// A real HTTP backend (never called: the refusal needs no request).
    fn server() -> OpenAiBackend {
        serving("served")
    }

    fn serving(model: &str) -> OpenAiBackend {
        let cfg = OpenAiConfig {
            base_urls: vec!["http://127.0.0.1:9/v1".into()],
            model: model.into(),
            ..OpenAiConfig::default()
        };
        let caps = Capabilities {
            completions: true,
            echo: true,
            ..Default::default()
        };
        OpenAiBackend::with_capabilities(&cfg, ApiKey::default(), caps, 2048).expect("backend")
    }

    fn assert_refusal(e: DlnError) {
        let message = e.to_string();
        assert!(message.contains("layer 0"), "{message}");
        assert!(message.contains("forward_chat"), "{message}");
        assert!(message.contains("chat = false"), "{message}");
    }

    #[test]
    fn a_chat_forward_template_on_a_server_is_refused_when_the_network_is_built() {
        let Err(e) = on(&chat_config(), Arc::new(server())) else {
            panic!("a server cannot give a chat's text")
        };
        assert_refusal(e);
    }

    #[test]
    fn a_live_edit_to_a_chat_forward_template_on_a_server_is_refused_at_once() {
        let mut raw = chat_config();
        raw.layers[0].templates.forward = "forward".into();
        let mut network = on(&raw, Arc::new(server())).expect("a raw template builds");
        let e = network
            .set_template(0, TemplateRole::Forward, "forward_chat", Path::new("."))
            .expect_err("a server cannot give a chat's text");
        assert_refusal(e);
        // Nothing changed: the layer keeps its raw template and records no edit.
        assert!(!network.layers[0].forward.chat);
        assert!(network.layers[0].edited_templates.is_empty());
        network
            .set_template(0, TemplateRole::Forward, "forward", Path::new("."))
            .expect("a raw template is taken");
    }

    #[test]
    fn the_other_models_name_their_roles() {
        let text = "[task]\nname = \"t\"\ndescription = \"Answer.\"\n[data]\npath = \"d.json\"\n\
                    [[layers]]\n[[layers]]\n";
        let config = Config::parse(text, Path::new("t.toml")).expect("parses");
        let small: SharedBackend = Arc::new(serving("small"));
        let large: SharedBackend = Arc::new(serving("large"));
        let build = |layers: [(&SharedBackend, &SharedBackend); 2]| {
            let backends = layers
                .iter()
                .map(|(f, b)| LayerBackends {
                    forward: Arc::clone(f),
                    backward: Arc::clone(b),
                })
                .collect();
            Network::from_config(&config, None, backends).expect("builds")
        };
        let id = |b: &SharedBackend| b.model_id();
        // One model for everything: nothing else to name.
        assert!(build([(&small, &small), (&small, &small)])
            .other_models()
            .is_empty());
        // One other model proposing for every layer: `backward`.
        let roles = build([(&small, &large), (&small, &large)]).other_models();
        assert_eq!(
            roles.into_iter().collect::<Vec<_>>(),
            vec![("backward".to_string(), id(&large))]
        );
        // Layers that differ are named one by one (1-based), a hidden layer's forward model too.
        let roles = build([(&large, &large), (&small, &small)]).other_models();
        assert_eq!(
            roles.into_iter().collect::<Vec<_>>(),
            vec![
                ("layer 1 backward".to_string(), id(&large)),
                ("layer 1 forward".to_string(), id(&large)),
            ]
        );
    }
}
