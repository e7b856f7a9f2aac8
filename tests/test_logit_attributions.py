"""Direct logit attribution at every position in one batched pass (``out.logit_attributions``, issue 28).

The reference is the one-position ``out.logit_attribution`` (itself tested against hooks and patched forwards in
test_logit_attribution.py), called here at each position in turn: the batched values must equal it to 1e-5 on
GPT-2, Llama, Gemma-2 and Mixtral, float32 and bfloat16. The default targets are checked against the token ids and
against the argmax of the model's own logits read by a hook in this file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.analysis.components import batched
from ecco_widgets.errors import InputError, NotAvailableError
from test_foundation import WORDS, ToyTokenizer
from test_logit_attribution import build_mixtral

IDS = [5, 17, 33, 2, 99, 140, 7, 61, 250, 12, 40, 8]


def analysed(family: str, dtype: torch.dtype = torch.float32):
    model = (build_mixtral() if family == "mixtral" else zoo.build(family)).to(dtype)
    lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
    return lm, lm.analyze_ids(IDS, components=True)


@pytest.fixture(scope="module", params=[(f, d) for d in (torch.float32, torch.bfloat16)
                                        for f in ("gpt2", "llama", "gemma2", "mixtral")],
                ids=lambda p: f"{p[0]}-{str(p[1]).replace('torch.', '')}")
def run(request):
    return analysed(*request.param)


def assert_rows_equal_single_calls(r, out, foil=None) -> None:
    """Each row of the batched result equals out.logit_attribution at that position, same target and foil: every
    component by label (a bias column of zeros is absent from the single call), the logit, by-layer and curve."""
    for i, position in enumerate(r.positions):
        one = out.logit_attribution(int(position), target=int(r.target_ids[i]), foil=foil, unit=r.unit)
        single = dict(zip(one.labels, one.values.tolist()))
        assert set(single) <= set(r.labels)
        row = dict(zip(r.labels, r.values[i].tolist()))
        assert max(abs(row[k] - single.get(k, 0.0)) for k in row) < 1e-5, (position, r.unit)
        assert abs(float(r.logit[i]) - one.logit) < 1e-5
        np.testing.assert_allclose(r.by_layer[i], one.by_layer, atol=1e-5)
        np.testing.assert_allclose(r.accumulated[i], one.accumulated, atol=1e-5)
        assert abs(float(r.final_scale[i]) - one.final_scale) < 1e-5 * max(1.0, one.final_scale)


def test_every_position_equals_the_one_position_calls(run):
    lm, out = run
    for unit in ("layer", "head"):
        r = out.logit_attributions(unit=unit)
        assert r.values.shape == (len(IDS), len(r.labels)) and r.values.dtype == np.float32
        assert r.by_layer.shape == (len(IDS), lm.spec.n_layers)
        assert r.accumulated.shape == (len(IDS), lm.spec.n_layers + 1)
        assert_rows_equal_single_calls(r, out)
        rf = out.logit_attributions(positions=[-1, 3, 0], unit=unit, foil=1)
        assert rf.positions.tolist() == [len(IDS) - 1, 3, 0] and rf.foil_ids.tolist() == [1, 1, 1]
        assert_rows_equal_single_calls(rf, out, foil=1)


def test_default_targets_are_the_next_tokens_then_the_top_prediction():
    lm, out = analysed("llama")
    logits: dict = {}
    hook = lm.spec.unembedding.register_forward_hook(lambda m, a, o: logits.__setitem__("x", o[0].float()))
    with torch.no_grad():
        lm.model(input_ids=torch.tensor([IDS]), use_cache=False)
    hook.remove()
    r = out.logit_attributions()
    assert r.target_ids.tolist() == IDS[1:] + [int(logits["x"][-1].argmax())]
    assert r.targets[0] == out.vocab_text.get(IDS[1], r.targets[0]) and r.foils == [""] * len(IDS)
    per = out.logit_attributions(positions=[0, 1], target=[IDS[3], IDS[4]])
    assert per.target_ids.tolist() == [IDS[3], IDS[4]]


def test_chunks_of_positions_give_the_same_values(monkeypatch):
    lm, out = analysed("gpt2")
    whole = out.logit_attributions(unit="head")
    monkeypatch.setattr(batched, "CHUNK_VALUES", 64 * 3)  # widest sublayer 256: one position per chunk
    chunked = out.logit_attributions(unit="head")
    np.testing.assert_allclose(chunked.values, whole.values, atol=1e-6)  # matrix products of other sizes round
    np.testing.assert_allclose(chunked.logit, whole.logit, atol=1e-6)  # differently
    assert_rows_equal_single_calls(chunked, out)


def test_one_pass_without_a_forward_and_round_trip(tmp_path):
    lm, out = analysed("llama")
    calls = []
    hook = lm.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    r = out.logit_attributions(unit="head")
    hook.remove()
    assert not calls
    back = ew.load(r.save(tmp_path / "all.npz"))
    assert isinstance(back, ew.LogitAttributions) and back.labels == r.labels and back.targets == r.targets
    for name in ("positions", "target_ids", "foil_ids", "values", "logit", "attn_by_layer", "mlp_by_layer", "embed",
                 "final_bias", "final_scale"):
        np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
    one = back.at(-1)
    assert isinstance(one, ew.LogitAttribution) and one.position == len(IDS) - 1
    np.testing.assert_array_equal(one.values, r.values[-1])
    assert one.top(1)[0]["value"] == float(r.values[-1][np.abs(r.values[-1]).argmax()])


def test_bad_inputs_say_what_to_do():
    lm, out = analysed("gpt2")
    with pytest.raises(InputError, match="unit='neuron'"):
        out.logit_attributions(unit="neuron")
    with pytest.raises(InputError, match="positions"):
        out.logit_attributions(positions=[])
    with pytest.raises(InputError, match="out of range"):
        out.logit_attributions(positions=[len(IDS)])
    with pytest.raises(InputError, match="list of 2 tokens"):
        out.logit_attributions(positions=[0, 1], target=[1, 2, 3])
    with pytest.raises(InputError, match="one token"):
        out.logit_attributions(target=1.5)
    plain = lm.analyze_ids(IDS)
    with pytest.raises(NotAvailableError, match="components=True"):
        plain.logit_attributions()
    with pytest.raises(InputError, match="index"):
        out.logit_attributions().at(len(IDS))
