"""ew.compare(out_a, out_b): alignment, differing tokens, the rank-grid difference, saliency, save / load, errors.

Expected alignments are written out by hand; rank differences are recomputed here with a loop over the aligned
columns.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import ecco_widgets as ew
from test_words import _smollm2_tokenizer


@pytest.fixture(scope="module")
def lm():
    tokenizer = _smollm2_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=len(tokenizer)))
    return ew.from_pretrained(model.eval(), tokenizer=tokenizer)


def analyze(lm, text):
    return lm.analyze(text, attribution=("grad_x_input", "saliency"), progress=False)


def test_same_length_prompts_align_position_by_position(lm):
    a, b = analyze(lm, "The keys to the cabinet is"), analyze(lm, "The keys to the cabinet are")
    assert a.n_tokens == b.n_tokens
    pair = ew.compare(a, b)
    assert pair.alignment.tolist() == [[i, i] for i in range(a.n_tokens)]
    assert pair.differs.tolist() == [i == a.n_tokens - 1 for i in range(a.n_tokens)]
    diff = pair.rank_difference()
    assert diff.shape == (a.n_layers, a.n_tokens)
    for layer in range(a.n_layers):
        for k in range(a.n_tokens):
            if k >= a.n_tokens - 1:
                assert math.isnan(diff[layer, k])  # the last token predicts past the text: no cell
            else:
                expected = math.log10(b.ranks[layer, k] / a.ranks[layer, k])
                assert diff[layer, k] == pytest.approx(expected, abs=1e-6)
    np.testing.assert_array_equal(pair.attributions_a[0], a.attributions("grad_x_input", "l2_normalized"))
    np.testing.assert_array_equal(pair.attributions_b[1], b.attributions("saliency", "l2_normalized"))
    assert pair.methods == ["grad_x_input", "saliency"]


def test_different_lengths_align_by_token_ids_with_gaps(lm):
    a, b = analyze(lm, "The key to the cabinet is here"), analyze(lm, "The keys to the old cabinet are here")
    pair = ew.compare(a, b)
    # by hand: The | key/keys | to the | - / old | cabinet | is/are | here
    ta, tb = a.tokens, b.tokens
    shown = [(ta[i] if i >= 0 else None, tb[j] if j >= 0 else None) for i, j in pair.alignment.tolist()]
    assert shown == [("The", "The"), (" key", " keys"), (" to", " to"), (" the", " the"), (None, " old"),
                     (" cabinet", " cabinet"), (" is", " are"), (" here", " here")]
    assert pair.differs.tolist() == [False, True, False, False, True, False, True, False]
    ranks_a, ranks_b = pair.aligned_ranks()
    for k, (i, j) in enumerate(pair.alignment.tolist()):
        assert ranks_a[:, k].tolist() == (a.ranks[:, i].tolist() if 0 <= i < a.n_tokens - 1 else [0] * a.n_layers)
        assert ranks_b[:, k].tolist() == (b.ranks[:, j].tolist() if 0 <= j < b.n_tokens - 1 else [0] * b.n_layers)
    view = pair.view()
    assert view.differs.tolist() == [int(d) for d in pair.differs] and view.alignment.shape == (8, 2)
    assert np.isfinite(view.rank_diff).all()  # NaN travels as 0, with ranks 0 for "no cell"


def test_word_level_pairs_align_words(lm):
    a, b = analyze(lm, "The cabinetmakers are here"), analyze(lm, "The cabinet makers are here")
    pair = ew.compare(a.by_word(), b.by_word())
    words = [(pair.tokens_a[i] if i >= 0 else None, pair.tokens_b[j] if j >= 0 else None)
             for i, j in pair.alignment.tolist()]
    assert words[0] == ("The", "The") and words[-2:] == [(" are", " are"), (" here", " here")]
    assert pair.unit == "word" and pair.view().unit == "word"
    with pytest.raises(ew.InputError, match="by_word"):
        ew.compare(a, b.by_word())


def test_round_trip_and_errors(lm, tmp_path):
    from test_results import assert_same

    a, b = analyze(lm, "The keys are"), analyze(lm, "The key is here")
    pair = ew.compare(a, b)
    back = ew.load(pair.save(tmp_path / "pair"))
    assert type(back) is ew.PromptPair
    assert_same(back, pair)
    other = ew.from_pretrained(GPT2LMHeadModel(GPT2Config(n_layer=3, n_embd=16, n_head=2, vocab_size=60)))
    with pytest.raises(ew.InputError, match="decoded differently"):
        ew.compare(a, other.analyze_ids([1, 2, 3], progress=False))
    c = b.copy()
    c.model_name = "another/model"
    with pytest.raises(ew.InputError, match="different models"):
        ew.compare(a, c)
    d = b.copy()
    d.raw_tokens = ["X" + r for r in d.raw_tokens]  # the same ids spelt otherwise: another tokenizer
    with pytest.raises(ew.InputError, match="different tokenizers"):
        ew.compare(a, d)
    with pytest.raises(ew.InputError, match="must be an output"):
        ew.compare(a, "The keys are")
    occlusion = lm.analyze("The keys are", attribution=("occlusion",), progress=False)
    with pytest.raises(ew.NotAvailableError, match="share no attribution"):
        ew.compare(a, occlusion)
    plain = lm.analyze("The key is", progress=False)
    assert ew.compare(plain, lm.analyze("The keys are", progress=False)).methods == []
