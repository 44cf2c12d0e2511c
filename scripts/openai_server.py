"""Starts llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), optionally
with one fix to its echoed prompt log-probabilities.

The bug (llama-cpp-python <= 0.3.36, `Llama._create_completion`): with `echo` and `logprobs`, the
log-probability reported for prompt token i is read from the logits row *after* token i (the
distribution of token i+1) whenever the prompt does not start with BOS, i.e. for every model
whose GGUF says `add_bos_token = false` (SmolLM2, Qwen, ...). Rows are right for models that add
BOS. dln's capability probe detects the shift and refuses echo scoring on such a server;
`--fix-echo-logprobs` shifts the rows back by one so prompt token i reads row i-1, which is what
the server computes for models with BOS.

Usage: python openai_server.py [--fix-echo-logprobs] <llama_cpp.server arguments...>
"""
import inspect
import sys
import textwrap


def fix_echo_logprobs():
    import llama_cpp.llama as mod

    src = textwrap.dedent(inspect.getsource(mod.Llama._create_completion))
    old = "all_logprobs = Llama.logits_to_logprobs(self._scores)[token_offset:]"
    if src.count(old) != 1:
        sys.exit("openai_server.py: llama-cpp-python changed; the echo fix no longer applies")
    line = next(l for l in src.splitlines() if old in l)
    indent = line[: len(line) - len(line.lstrip())]
    fix = (
        f"{line}\n"
        f"{indent}if echo and not (len(prompt_tokens) > 0 and prompt_tokens[0] == self.token_bos()):\n"
        f"{indent}    all_logprobs = np.concatenate([all_logprobs[:1], all_logprobs[:-1]])"
    )
    src = src.replace(line, fix)
    scope = dict(vars(mod))
    exec(compile(src, mod.__file__, "exec"), scope)
    mod.Llama._create_completion = scope["_create_completion"]


if __name__ == "__main__":
    if "--fix-echo-logprobs" in sys.argv:
        sys.argv.remove("--fix-echo-logprobs")
        fix_echo_logprobs()
    from llama_cpp.server.__main__ import main

    sys.argv[0] = "llama_cpp.server"
    main()
