"""ew.patching over a prompt pair from ew.compare (issue 17 on issue 16's pairs): A is the clean prompt, B the
corrupted one; the result equals patching the two prompts' token ids given directly."""

from __future__ import annotations

import numpy as np
import pytest
from zoo import build

import ecco_widgets as ew
from test_foundation import WORDS, ToyTokenizer


@pytest.fixture(scope="module")
def lm():
    return ew.LanguageModel(build("llama"), tokenizer=ToyTokenizer(WORDS))


def test_a_prompt_pair_patches_like_its_two_prompts(lm):
    a, b = lm.analyze("w1 w2 w3 w4 w5"), lm.analyze("w1 w9 w3 w4 w5")
    pair = ew.compare(a, b)
    direct = ew.patching(lm, [int(i) for i in a.token_ids], [int(i) for i in b.token_ids], 11, 12, progress=False)
    through = ew.patching(lm, pair, answer=11, foil=12, progress=False)
    np.testing.assert_array_equal(through.effect, direct.effect)
    assert through.differing_positions == [1]


def test_a_generated_pair_patches_the_prompts_only(lm):
    a = lm.generate("w1 w2 w3 w4", max_new_tokens=2)
    b = lm.generate("w1 w8 w3 w4", max_new_tokens=2)
    through = ew.patching(lm, ew.compare(a, b), answer=11, foil=12, progress=False)
    assert through.effect.shape[1] == 4  # the prompts' 4 tokens, not the generated ones


def test_pair_errors_say_what_to_do(lm):
    pair = ew.compare(lm.analyze("w1 w2 w3"), lm.analyze("w1 w5 w3"))
    with pytest.raises(ew.InputError, match="without a corrupted prompt"):
        ew.patching(lm, pair, "w1 w2 w3", answer=11, foil=12)
    with pytest.raises(ew.InputError, match="needs answer= and foil="):
        ew.patching(lm, pair)
    with pytest.raises(ew.InputError, match="needs the corrupted prompt"):
        ew.patching(lm, "w1 w2 w3", answer=11, foil=12)
