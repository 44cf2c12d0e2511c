//! Text to tokens for the embedded model: contexts, targets, verbalizers and prompts.
//!
//! The boundary between a context and its target is fixed by tokenizing them separately: the
//! context with the model's BOS (when the model asks for one), the target on its own without any
//! special token. So `log p(target | context)` is over exactly the tokens of `target`, whatever
//! the tokenizer would have merged across the seam, and the same target always costs the same
//! number of tokens after any context. Contexts and prompts are tokenized with special tokens
//! parsed: a chat forward template's context is the model's own chat format rendered to text
//! (`Backend::chat_text`), whose markup (`<|im_start|>`) must be the special tokens the model
//! was trained on, exactly as when it generates from a chat prompt. Targets and verbalizers
//! never hold special tokens.

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use crate::llm::{ChatMessage, LlmError, LlmResult, Prompt};

/// Tokens of a scoring context or raw prompt: BOS when the model wants it, never empty (an
/// empty context becomes the BOS token, which the first target token is conditioned on).
pub fn context_tokens(model: &LlamaModel, text: &str) -> LlmResult<Vec<i32>> {
    let vocab = model.vocab();
    let mut tokens = ids(vocab.tokenize(text.as_bytes(), true, true));
    // A chat format rendered to text may write BOS itself.
    let bos = vocab.bos().0;
    if tokens.len() >= 2 && tokens[0] == bos && tokens[1] == bos {
        tokens.remove(0);
    }
    if tokens.is_empty() {
        let bos = vocab.bos().0;
        if bos < 0 {
            return Err(LlmError::InvalidRequest(
                "empty context and the model has no BOS token to condition on; give a context"
                    .into(),
            ));
        }
        tokens.push(bos);
    }
    Ok(tokens)
}

/// Tokens of a target, without BOS or other special tokens.
pub fn target_tokens(model: &LlamaModel, text: &str) -> Vec<i32> {
    ids(model.vocab().tokenize(text.as_bytes(), false, false))
}

/// Tokens of a verbalizer, checked to spell the verbalizer back exactly: a verbalizer whose
/// tokens do not (an invalid UTF-8 boundary, tokenizer normalization) would be scored as some
/// other string.
pub fn verbalizer_tokens(model: &LlamaModel, class: usize, text: &str) -> LlmResult<Vec<i32>> {
    if text.is_empty() {
        return Err(LlmError::InvalidRequest(format!(
            "class {class} has an empty verbalizer"
        )));
    }
    let tokens = target_tokens(model, text);
    let spelled = detokenize(model, &tokens);
    if spelled != text.as_bytes() {
        return Err(LlmError::InvalidRequest(format!(
            "verbalizer {text:?} of class {class} does not tokenize back to itself (it reads {:?}); \
             a verbalizer must be plain text that ends on a character boundary",
            String::from_utf8_lossy(&spelled)
        )));
    }
    Ok(tokens)
}

/// The bytes a token sequence spells, without special tokens.
pub fn detokenize(model: &LlamaModel, tokens: &[i32]) -> Vec<u8> {
    let tokens: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
    if tokens.is_empty() {
        return Vec::new();
    }
    model.vocab().detokenize(&tokens, false, false)
}

/// The bytes of one generated token (pieces of a multi-byte character stay bytes until the
/// next token completes them).
pub fn piece(model: &LlamaModel, token: i32) -> Vec<u8> {
    model.vocab().token_to_piece(LlamaToken(token), false, None)
}

/// Tokens of a generation prompt. Raw prompts are completion text; chat prompts are rendered
/// with the model's own template (assistant turn opened) followed by `assistant_prefix`.
pub fn prompt_tokens(
    model: &LlamaModel,
    template: Option<&LlamaChatTemplate>,
    prompt: &Prompt,
) -> LlmResult<Vec<i32>> {
    match prompt {
        Prompt::Raw { text } => context_tokens(model, text),
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => {
            let rendered = render_chat(model, template, messages)? + assistant_prefix;
            let vocab = model.vocab();
            let bos = vocab.bos().0;
            let mut tokens = ids(vocab.tokenize(rendered.as_bytes(), true, true));
            // Templates that write BOS themselves would otherwise get it twice.
            if tokens.len() >= 2 && tokens[0] == bos && tokens[1] == bos {
                tokens.remove(0);
            }
            if tokens.is_empty() {
                return Err(LlmError::InvalidRequest(
                    "the chat prompt renders to no tokens".into(),
                ));
            }
            Ok(tokens)
        }
    }
}

/// The conversation in the model's chat format, ending with the opener of the assistant turn.
pub fn render_chat(
    model: &LlamaModel,
    template: Option<&LlamaChatTemplate>,
    messages: &[ChatMessage],
) -> LlmResult<String> {
    let template = template.ok_or_else(|| {
        LlmError::InvalidRequest(
            "this model has no chat template in its GGUF metadata; use a raw-text template".into(),
        )
    })?;
    let chat = messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LlmError::InvalidRequest(format!("chat message contains a NUL byte: {e}")))?;
    model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| LlmError::Model(format!("applying the model's chat template failed: {e}")))
}

/// For a GGUF without a `tokenizer.chat_template` (the Gemma 3 270M chunks ship none): the
/// llama.cpp built-in template of the family whose turn markers are single tokens of the
/// vocabulary.
pub fn fallback_template(model: &LlamaModel) -> Option<LlamaChatTemplate> {
    let single_token =
        |marker: &str| model.vocab().tokenize(marker.as_bytes(), false, true).len() == 1;
    let name = if single_token("<start_of_turn>") {
        "gemma"
    } else if single_token("<|im_start|>") {
        "chatml"
    } else {
        return None;
    };
    LlamaChatTemplate::new(name).ok()
}

fn ids(tokens: Vec<LlamaToken>) -> Vec<i32> {
    tokens.into_iter().map(|t| t.0).collect()
}
