"""Chat turns and template special tokens reach every token view of a chat output (issue 16: "marks each turn in
every view, dims template special tokens"): the views' traits equal the output's turns / special_mask, and in
Chromium the first token of each turn carries its role and the special tokens are dimmed."""

from __future__ import annotations

import numpy as np
import pytest

import ecco_widgets as ew
from ecco_widgets.views.arrays import ViewValueError

TOKENS = ["<s>", "user", " hi", "</s>", "<s>", "assistant", " hello", " there"]
TURNS = [{"role": "user", "start": 0, "stop": 4}, {"role": "assistant", "start": 4, "stop": 8}]
SPECIAL = np.array([1, 0, 0, 1, 1, 0, 0, 0], bool)


def chat_output() -> ew.Output:
    rng = np.random.default_rng(0)
    n, L = len(TOKENS), 3
    return ew.Output(token_ids=np.arange(n), tokens=TOKENS, raw_tokens=TOKENS, n_input_tokens=6,
                     ranks=rng.integers(1, 9, size=(L, n - 1)).astype(np.int32), turns=TURNS, special_mask=SPECIAL,
                     topk_ids=rng.integers(0, n, size=(L, n, 2)).astype(np.int32),
                     topk_probs=rng.random((L, n, 2)).astype(np.float32), vocab_text={i: t for i, t in enumerate(TOKENS)},
                     targets=np.array([6, 7]), attributions_raw={"ig": rng.random((2, n, 4)).astype(np.float32)},
                     activations=rng.random((L, n, 5)).astype(np.float32), activation_layers=[0, 1, 2],
                     attention_weights=rng.random((L, 2, n, n)).astype(np.float32))


def views_of(out):
    return {"rankings": out.rankings(), "saliency": out.primary_attributions(), "attention": out.attention(0),
            "heatmap": out.neuron_heatmap(0, [1, 2]), "factors": out.run_nmf(2, exclude_first=False).explore()}


def test_factors_over_some_positions_keep_the_turns_of_those_tokens():
    used = [0, 1, 2, 4, 6, 7]
    nmf = chat_output().run_nmf(2, positions=used, exclude_first=False)
    # positions 0, 1, 2 lie in the user turn (0..4), 4, 6, 7 in the assistant turn (4..8)
    assert nmf.turns == [{"role": "user", "start": 0, "stop": 3}, {"role": "assistant", "start": 3, "stop": 6}]
    assert nmf.special_mask.tolist() == SPECIAL[used].tolist() == [True, False, False, True, False, False]
    view = nmf.explore()
    assert view.turns == nmf.turns and view.special.tolist() == nmf.special_mask.astype(int).tolist()


def test_every_token_view_of_a_chat_output_carries_its_turns_and_special_tokens():
    for name, view in views_of(chat_output()).items():
        assert view.turns == TURNS, name
        assert view.special.tolist() == SPECIAL.astype(int).tolist(), name


def test_an_output_without_turns_gives_views_without_them():
    out = chat_output()
    out.turns, out.special_mask = [], None
    for name, view in views_of(out).items():
        assert view.turns == [] and view.special.size == 0, name


def test_bad_turns_are_refused():
    view = chat_output().rankings()
    with pytest.raises(ViewValueError, match="role"):
        view.update(turns=[{"role": "robot", "start": 0, "stop": 2}])
    with pytest.raises(ViewValueError, match="ordered token ranges"):
        view.update(turns=[{"role": "user", "start": 3, "stop": 99}])
    with pytest.raises(ViewValueError, match="special: expected 8 booleans"):
        view.update(special=np.ones(3, np.uint8))
