"""lm.chat: the chat template applied, turns and special tokens marked, the answer explained; long transcripts.

Turns are checked against ChatML text written out here by hand (SmolLM2's template: <|im_start|>role\\n ...
<|im_end|>\\n, with a default system prompt when none is given), and token counts against the tokenizer's own
``apply_chat_template(tokenize=True)``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import ecco_widgets as ew
from test_words import _gpt2_bpe, _smollm2_tokenizer

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(role: str, content: str) -> str:
    return f"<|im_start|>{role}\n{content}<|im_end|>\n"


@pytest.fixture(scope="module")
def tokenizer():
    return _smollm2_tokenizer()


@pytest.fixture(scope="module")
def tiny_chat(tokenizer):
    """A random-weight Llama-shaped model with SmolLM2's tokenizer (and its chat template)."""
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=len(tokenizer), max_position_embeddings=8192,
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return ew.from_pretrained(LlamaForCausalLM(config).eval(), tokenizer=tokenizer)


def decoded_turns(tokenizer, out) -> list[tuple[str, str]]:
    return [(t["role"], tokenizer.decode(out.token_ids[t["start"]:t["stop"]].tolist())) for t in out.turns]


def test_turns_of_an_answered_chat(tiny_chat, tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a planet."}]
    out = tiny_chat.chat(messages, max_new_tokens=5, attribution=("grad_x_input",), progress=False)
    prompt = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
    assert out.token_ids[:len(prompt)].tolist() == prompt and out.n_input_tokens == len(prompt)
    answer = tokenizer.decode(out.token_ids[len(prompt):].tolist())
    assert decoded_turns(tokenizer, out) == [("system", chatml("system", "Be brief.")),
                                             ("user", chatml("user", "Name a planet.")),
                                             ("assistant", "<|im_start|>assistant\n" + answer)]
    assert out.turns[-1]["stop"] == out.n_tokens and out.turns[0]["start"] == 0
    assert all(a["stop"] == b["start"] for a, b in zip(out.turns, out.turns[1:]))
    assert out.targets.tolist() == list(range(len(prompt), out.n_tokens))  # the answer is explained
    special = {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>")}
    assert out.special_mask.tolist() == [int(i) in special for i in out.token_ids]
    assert out.special_mask.sum() >= 5


def test_a_default_system_prompt_is_a_system_turn_and_a_transcript_is_analysed_as_it_is(tiny_chat, tokenizer):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    out = tiny_chat.chat(messages, attribution=("grad_x_input",), progress=False)
    assert decoded_turns(tokenizer, out) == [("system", chatml("system", DEFAULT_SYSTEM)), ("user", chatml("user", "Hi")),
                                             ("assistant", chatml("assistant", "Hello! How can I help?"))]
    assert out.n_input_tokens == out.n_tokens  # nothing generated
    first = out.targets[0]
    assert tokenizer.decode(out.token_ids[first:].tolist()) == "Hello! How can I help?<|im_end|>\n"
    words = out.by_word()
    assert [t["role"] for t in words.turns] == ["system", "user", "assistant"]
    assert [w["text"] for w in out.words()][:3] == ["<|im_start|>", "system", "\n"]
    assert words.special_mask.tolist() == [w["text"] in ("<|im_start|>", "<|im_end|>") for w in out.words()]


def test_turns_and_special_mask_round_trip(tiny_chat, tmp_path):
    from test_results import DATA, assert_same

    out = tiny_chat.chat([{"role": "user", "content": "Hi"}], max_new_tokens=3, progress=False)
    back = ew.load(out.save(tmp_path / "chat"))
    assert_same(back, out)
    assert back.turns == out.turns and back.special_mask.dtype == bool
    words = out.by_word()
    assert_same(ew.load(words.save(tmp_path / "words")), words)
    old = ew.load(DATA / "output_v1.npz")  # written before these fields existed
    assert old.turns == [] and old.special_mask is None and old.unit == "token"


def test_bad_messages_are_clear_errors_before_any_work(tiny_chat, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("generate ran before the input was checked")

    monkeypatch.setattr(tiny_chat.model, "generate", no_generation)
    cases = [("Hi", "non-empty list"), ([], "non-empty list"), ({"role": "user", "content": "Hi"}, "non-empty list"),
             ([("user", "Hi")], "exactly the keys"), ([{"role": "user", "text": "Hi"}], "exactly the keys"),
             ([{"role": "robot", "content": "Hi"}], "roles are system, user, assistant"),
             ([{"role": "user", "content": "  "}], "empty")]
    for messages, message in cases:
        with pytest.raises(ew.InputError, match=message):
            tiny_chat.chat(messages)
    user = [{"role": "user", "content": "Hi"}]
    with pytest.raises(ew.InputError, match="positive integer"):
        tiny_chat.chat(user, max_new_tokens=0)
    with pytest.raises(ew.InputError, match="nothing to answer"):
        tiny_chat.chat(user + [{"role": "assistant", "content": "Hello"}], max_new_tokens=5)
    with pytest.raises(ew.InputError, match="does not take"):
        tiny_chat.chat(user, max_new_tokens=5, atribution=("ig",))
    with pytest.raises(ew.InputError, match="ig_fast"):
        tiny_chat.chat(user, max_new_tokens=5, attribution=("ig_fast",))
    with pytest.raises(ew.InputError, match="context window of 8192"):
        tiny_chat.chat(user, max_new_tokens=9000)


def test_a_tokenizer_without_a_chat_template_says_what_to_do():
    tokenizer = _gpt2_bpe()
    from transformers import GPT2Config, GPT2LMHeadModel

    lm = ew.from_pretrained(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(tokenizer))),
                            tokenizer=tokenizer)
    with pytest.raises(ew.InputError, match="no chat template.*lm.generate"):
        lm.chat([{"role": "user", "content": "Hi"}])


LONG = textwrap.dedent("""
    import json, resource, sys, torch
    sys.path.insert(0, "tests")
    import ecco_widgets as ew
    from test_chat import long_transcript
    from transformers import LlamaConfig, LlamaForCausalLM
    from test_words import _smollm2_tokenizer
    real = sys.argv[1] == "real"
    if real:
        lm = ew.demo_model()
    else:
        tok = _smollm2_tokenizer()
        torch.manual_seed(0)
        lm = ew.from_pretrained(LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128,
            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, vocab_size=len(tok),
            max_position_embeddings=8192)).eval(), tokenizer=tok)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = lm.chat(long_transcript(lm.tokenizer, 8000), progress=False)
    words = out.by_word()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kept = sum(a.nbytes for a in (out.hidden_states, out.topk_ids, out.topk_probs, out.ranks, out.entropy,
                                  out.kl_to_final, out.target_probs))
    print(json.dumps({"n_tokens": out.n_tokens, "turns": out.turns, "n_words": words.n_tokens,
                      "word_turns": len(words.turns), "grown": after - before, "kept": kept,
                      "special": int(out.special_mask.sum()), "vocab": lm.vocab_size}))
""")


def long_transcript(tokenizer, n_tokens: int) -> list[dict[str, str]]:
    """A system message, then user / assistant turns repeated up to about ``n_tokens`` tokens."""
    pair = [{"role": "user", "content": "Where are the keys to the cabinet kept at night, and who has them?"},
            {"role": "assistant", "content": "The keys to the cabinet are kept in the desk drawer, next to the "
                                             "lamp; the caretaker has the spare set."}]
    system = [{"role": "system", "content": "You are concise."}]

    def count(messages: list[dict[str, str]]) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    base, one = count(system), count(system + pair) - count(system)
    return system + pair * ((n_tokens - base) // one)


def _run_long(kind: str) -> dict:
    done = subprocess.run([sys.executable, "-c", LONG, kind], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_long(result: dict) -> None:
    assert 7000 <= result["n_tokens"] <= 8192
    roles = [t["role"] for t in result["turns"]]
    assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
    assert result["word_turns"] == len(roles) and result["special"] == 2 * len(roles)
    assert result["turns"][-1]["stop"] == result["n_tokens"]


def test_an_8000_token_transcript_analyses_in_bounded_memory():
    """Random weights, SmolLM2's tokenizer and template: turns, words and memory (no attribution)."""
    result = _run_long("tiny")
    _check_long(result)
    # the model's own logits (n_tokens x vocab, float32: 1.6 GB here) are the one buffer a transformers forward
    # cannot avoid; everything else must stay small beside them (it was 2.6 GB more before the chunked check)
    logits = result["n_tokens"] * result["vocab"] * 4
    assert result["grown"] < 1.5 * logits + 4 * result["kept"] + 2**29, result


@pytest.mark.slow
def test_an_8000_token_transcript_on_the_real_smollm2():
    result = _run_long("real")
    _check_long(result)
    logits = result["n_tokens"] * result["vocab"] * 4
    assert result["grown"] < 1.5 * logits + 3 * result["kept"] + 2**30, result


@pytest.mark.slow
def test_the_real_smollm2_answers_through_its_template(demo_lm):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    out = demo_lm.chat(messages, max_new_tokens=12, progress=False)
    tok = demo_lm.tokenizer
    assert decoded_turns(tok, out)[:2] == [("system", chatml("system", DEFAULT_SYSTEM)),
                                           ("user", chatml("user", messages[0]["content"]))]
    answer = tok.decode(out.token_ids[out.n_input_tokens:].tolist())
    assert "Paris" in answer
    assert decoded_turns(tok, out)[2] == ("assistant", "<|im_start|>assistant\n" + answer)


def test_the_chunked_finiteness_check_finds_one_bad_logit():
    from ecco_widgets.capture import _all_finite

    logits = torch.zeros(1, 1300, 7)
    assert _all_finite(logits)
    for where, bad in (((0, 1299, 6), float("inf")), ((0, 511, 0), float("nan")), ((0, 0, 3), -float("inf"))):
        broken = logits.clone()
        broken[where] = bad
        assert _all_finite(broken) == bool(torch.isfinite(broken).all()) is False
