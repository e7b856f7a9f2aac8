"""Baselines and kept positions of integrated gradients and occlusion, against independent references: captum's
IntegratedGradients with the same baseline tensor (kept positions given as their own input, so nothing moves
there), occlusion by one forward per occluded token written here, completeness from direct forwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

import ecco_widgets as ew
from ecco_widgets.models.causal_lm import compute_attributions
from test_attribution import _forward, assert_close
from zoo import build

IDS = [5, 17, 33, 8, 61, 25, 90, 12, 47, 3]
POSITIONS = np.array([4, 7, 9])


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def lm(request):
    return ew.from_pretrained(build(request.param))


def _start(lm, baseline: str, keep: list[int]) -> torch.Tensor:
    """The path's start written out: the baseline row at every position, the kept positions at their input."""
    emb = lm.spec.embedding(torch.tensor([IDS])).detach()
    weight = lm.spec.embedding.weight.detach()
    row = {"zero": torch.zeros(weight.shape[1]), "mean": weight.mean(0), "token": weight[7]}[baseline]
    start = row.expand_as(emb).clone()
    start[:, keep] = emb[:, keep]
    return start


@pytest.mark.parametrize("baseline, keep", [("mean", "none"), ("zero", "first"), ("token", [0, 2])])
def test_ig_matches_captum_with_the_same_baseline(lm, baseline, keep):
    spec = baseline if baseline != "token" else torch.as_tensor(lm.spec.embedding.weight[7].detach())
    res = compute_attributions(lm.spec, torch.tensor([IDS]), POSITIONS, ["ig"], n_steps=16, progress=False,
                               baseline=spec, keep=keep)
    kept = {"none": [], "first": [0]}.get(keep, keep) if isinstance(keep, str) else keep
    assert res.settings["kept_positions"] == kept
    emb = lm.spec.embedding(torch.tensor([IDS])).detach()
    start = _start(lm, baseline, kept)
    for i, p in enumerate(POSITIONS):
        ig = IntegratedGradients(_forward(lm.model, IDS[p]))
        ref, delta = ig.attribute(emb[:, :p].clone(), baselines=start[:, :p], n_steps=16, method="gausslegendre",
                                  return_convergence_delta=True)
        assert_close(res.raw["ig"][i, :p], ref[0].detach().numpy())
        assert abs(res.deltas["ig"][i] - float(delta)) <= 1e-3 * abs(float(delta)) + 1e-6
        assert not res.raw["ig"][i, kept].any()  # kept positions do not move: no attribution


def test_occlusion_puts_the_baseline_in_a_tokens_place(lm):
    res = compute_attributions(lm.spec, torch.tensor([IDS]), POSITIONS, ["occlusion"], progress=False,
                               baseline="mean")
    drops = res.raw["occlusion"].sum(-1)
    emb = lm.spec.embedding(torch.tensor([IDS])).detach()
    mean = lm.spec.embedding.weight.detach().mean(0)
    with torch.no_grad():
        for i, p in enumerate(POSITIONS):
            f = _forward(lm.model, IDS[p])
            full = float(f(emb[:, :p]))
            for j in range(p):
                occluded = emb[:, :p].clone()
                occluded[0, j] = mean
                assert abs(drops[i, j] - (full - float(f(occluded)))) <= 1e-5 + 1e-4 * abs(full)


def test_the_settings_and_the_view_name_the_baseline():
    lm = ew.from_pretrained(build("gpt2"))
    out = lm.analyze_ids(IDS, n_input_tokens=5, attribution=("ig", "grad_x_input"), n_steps=8, baseline="mean",
                         keep="first", progress=False)
    assert out.attribution_settings["baseline"] == "mean token embedding"
    assert out.attribution_settings["kept_positions"] == [0]
    view = out.primary_attributions()
    assert view.baselines == ["mean token embedding, positions 0 kept", ""]  # grad x input has no baseline
    back = ew.load(out.save(__import__("tempfile").mkdtemp() + "/o.npz")).primary_attributions()
    assert back.baselines == view.baselines


def test_bad_baselines_and_keep_are_clear_errors_before_the_forward():
    lm = ew.from_pretrained(build("gpt2"))
    for kwargs, message in [
        (dict(baseline="nonsense"), "neither one of zero, pad, eos, bos, mask, mean nor a single token|no tokenizer"),
        (dict(baseline="mask"), "names no mask token"),
        (dict(baseline=torch.zeros(3)), r"baseline tensor must have shape \(d_model,\)"),
        (dict(keep="everything"), "keep must be one of none, first, special"),
        (dict(keep=[40]), "keep position 40 is out of range"),
    ]:
        with pytest.raises(ew.InputError, match=message):
            lm.analyze_ids(IDS, attribution=("ig",), **kwargs)


# ----- sequential integrated gradients -----
def test_sequential_ig_matches_captum_one_token_at_a_time(lm):
    """Token j: captum's IG on a function of token j's embedding alone (the others held at their input), from its
    start (the zero baseline, or its own input where kept) to its input."""
    res = compute_attributions(lm.spec, torch.tensor([IDS]), POSITIONS, ["sig"], n_steps=8, progress=False,
                               keep="first")
    emb = lm.spec.embedding(torch.tensor([IDS])).detach()
    for i, p in enumerate(POSITIONS):
        assert not res.raw["sig"][i, 0].any() and not res.raw["sig"][i, p:].any()  # kept token; causality
        for j in (1, p - 1):
            def f_of_token(e, p=p, j=j):
                x = emb[:, :p].expand(e.shape[0], -1, -1).clone()
                x[:, j] = e
                return _forward(lm.model, IDS[p])(x)

            ref = IntegratedGradients(f_of_token).attribute(emb[:, j].clone(), baselines=torch.zeros_like(emb[:, j]),
                                                            n_steps=8, method="gausslegendre")
            got = res.raw["sig"][i, j]
            assert np.abs(got - ref[0].detach().numpy()).max() <= 1e-3 * np.abs(ref.detach().numpy()).max() + 1e-9


def test_sequential_ig_completeness_per_token_sum(lm):
    """Rows add up to the sum over tokens of f(x) - f(x with that token at its start), from direct forwards."""
    out = lm.analyze_ids(IDS, n_input_tokens=6, attribution=("sig",), n_steps=16, keep="first", progress=False)
    emb = lm.spec.embedding(torch.tensor([IDS])).detach()
    sums = out.attributions("sig", "sum").sum(axis=1, dtype=np.float64)
    with torch.no_grad():
        for i, p in enumerate(out.targets):
            f = _forward(lm.model, IDS[p])
            full = float(f(emb[:, :p]))
            change = 0.0
            for j in range(1, p):
                moved = emb[:, :p].clone()
                moved[0, j] = 0
                change += full - float(f(moved))
            assert out.convergence_delta("sig")[i] == pytest.approx(sums[i] - change, abs=1e-5 + 1e-3 * abs(change))
    assert (out.convergence_delta("sig", relative=True) >= 0).all()
