"""Activation patching (ew.patching) against references written here: forward hooks, one patch per forward, the
model's own logits; attribution patching against autograd written here; bad inputs; bfloat16; save / load; the
PatchingGrid's checks; and on SmolLM2 a factual prompt pair whose answer comes back at the subject's last token."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from zoo import FAMILIES, build

import ecco_widgets as ew
from ecco_widgets.views.base import ViewValueError

CLEAN = [5, 17, 33, 41, 9, 12]
CORRUPTED = [5, 17, 80, 41, 9, 12]  # differs at position 2

#: where each family keeps its blocks, what its attention adds to the residual stream and what its MLP adds
#: (module paths inside a block), read from the transformers sources, not from the adapter
_LLAMA = ("model.layers", "self_attn.o_proj", "mlp.down_proj")
PARTS = {
    "gpt2": ("transformer.h", "attn.c_proj", "mlp.c_proj"),
    "gpt_neo": ("transformer.h", "attn.attention.out_proj", "mlp.c_proj"),
    "gptj": ("transformer.h", "attn.out_proj", "mlp.fc_out"),
    "gpt_neox": ("gpt_neox.layers", "attention.dense", "mlp.dense_4h_to_h"),
    "opt": ("model.decoder.layers", "self_attn.out_proj", "fc2"),
    "bloom": ("transformer.h", "self_attention.dense", "mlp.dense_4h_to_h"),
    "falcon": ("transformer.h", "self_attention.dense", "mlp.dense_4h_to_h"),
    "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "phi3": _LLAMA, "gemma": _LLAMA,
    "gemma2": ("model.layers", "post_attention_layernorm", "post_feedforward_layernorm"),
    "gemma3": ("model.layers", "post_attention_layernorm", "post_feedforward_layernorm"),
}


def reference_modules(model, family: str, points: str) -> list[torch.nn.Module]:
    blocks_path, attn, mlp = PARTS[family]
    blocks = list(model.get_submodule(blocks_path))
    if points == "resid":
        return blocks
    return [b.get_submodule(attn if points == "attn" else mlp) for b in blocks]


def _first(output):
    return output if isinstance(output, torch.Tensor) else output[0]


def _replace(output, tensor):
    return tensor if isinstance(output, torch.Tensor) else (tensor, *output[1:])


def last_logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


def reference_patching(model, modules, clean, corrupted, answer, foil):
    """Exact patching, one patch per forward: (effect, logit_diff), float64 numpy (n_layers, n_positions)."""
    n = len(clean)
    kept = {}
    handles = [m.register_forward_hook(lambda mod, a, out, i=i: kept.__setitem__(i, _first(out).detach().clone()))
               for i, m in enumerate(modules)]
    ld_clean = float(last_logits(model, clean)[answer] - last_logits(model, clean)[foil])
    for h in handles:
        h.remove()
    lx = last_logits(model, corrupted)
    ld_corrupted = float(lx[answer] - lx[foil])
    diffs = np.zeros((len(modules), n))
    for layer, module in enumerate(modules):
        for p in range(n):
            def write(mod, args, out, layer=layer, p=p):
                t = _first(out)
                new = t.clone().reshape(1, n, -1)  # OPT's MLP: (n, width)
                new[0, p] = kept[layer].reshape(1, n, -1)[0, p]
                return _replace(out, new.reshape(t.shape))
            handle = module.register_forward_hook(write)
            logits = last_logits(model, corrupted)
            handle.remove()
            diffs[layer, p] = float(logits[answer] - logits[foil])
    return (diffs - ld_corrupted) / (ld_clean - ld_corrupted), diffs


def backward_of(model, ids, answer, foil, handles) -> float:
    """LD of the run on ``ids`` after its backward from LD (hooks ``handles`` keep what they need, then go)."""
    with torch.enable_grad():
        embeds = model.get_input_embeddings()(torch.tensor([ids])).detach().requires_grad_(True)
        lx = model(inputs_embeds=embeds).logits[0, -1]
        (lx[answer] - lx[foil]).backward()
    for h in handles:
        h.remove()
    return float((lx[answer] - lx[foil]).detach())


def reference_attribution(model, modules, clean, corrupted, answer, foil):
    """(clean - corrupted) . d LD / d output at the corrupted run, by autograd, / (LD_clean - LD_corrupted)."""
    n = len(clean)
    kept = {}
    handles = [m.register_forward_hook(lambda mod, a, out, i=i: kept.__setitem__(i, _first(out).detach().clone()))
               for i, m in enumerate(modules)]
    lc = last_logits(model, clean)
    for h in handles:
        h.remove()
    live = {}

    def keep(mod, args, out, i):
        t = _first(out)
        t.retain_grad()
        live[i] = (t, t.detach().clone())

    handles = [m.register_forward_hook(lambda mod, a, out, i=i: keep(mod, a, out, i)) for i, m in enumerate(modules)]
    gap = float(lc[answer] - lc[foil]) - backward_of(model, corrupted, answer, foil, handles)
    out = np.zeros((len(modules), n))
    for i, (t, value) in live.items():
        grad = t.grad.reshape(1, n, -1)[0].double()
        diff = kept[i].reshape(1, n, -1)[0].double() - value.reshape(1, n, -1)[0].double()
        out[i] = ((diff * grad).sum(-1) / gap).numpy()
    return out


def answer_and_foil(model) -> tuple[int, int]:
    """The tokens whose logits the corruption moves most, up and down: a sizeable clean - corrupted gap."""
    d = last_logits(model, CLEAN) - last_logits(model, CORRUPTED)
    return int(d.argmax()), int(d.argmin())


@pytest.mark.parametrize("points", ["resid", "attn", "mlp"])
@pytest.mark.parametrize("family", FAMILIES)
def test_exact_patching_equals_one_hooked_forward_per_patch(family, points):
    model = build(family).double()  # float64: equal to 1e-5 even where a random model's gap is tiny (BLOOM)
    lm = ew.from_pretrained(model)
    answer, foil = answer_and_foil(model)
    result = ew.patching(lm, CLEAN, CORRUPTED, answer, foil, points=points, progress=False)
    effect, diffs = reference_patching(model, reference_modules(model, family, points), CLEAN, CORRUPTED, answer,
                                       foil)
    assert result.effect.dtype == np.float32 and result.effect.shape == (3, len(CLEAN))
    np.testing.assert_allclose(result.effect, effect, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.logit_diff, diffs, atol=1e-5, rtol=0)
    # positions before the corruption see the same tokens: restoring them changes nothing
    np.testing.assert_allclose(result.effect[:, :2], 0, atol=1e-5)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_float32_patching_equals_the_reference_and_the_top_k_is_the_patched_runs(family):
    model = build(family)
    lm = ew.from_pretrained(model)
    answer, foil = answer_and_foil(model)
    result = ew.patching(lm, CLEAN, CORRUPTED, answer, foil, points="resid", topk=4, progress=False)
    modules = reference_modules(model, family, "resid")
    effect, _ = reference_patching(model, modules, CLEAN, CORRUPTED, answer, foil)
    np.testing.assert_allclose(result.effect, effect, atol=1e-5, rtol=0)
    # the top-k of cell (1, 2): one hooked forward here, then an argsort of its softmax
    kept = {}
    h = modules[1].register_forward_hook(lambda m, a, out: kept.__setitem__("v", _first(out).detach().clone()))
    last_logits(model, CLEAN)
    h.remove()

    def write(m, a, out):
        new = _first(out).clone()
        new[0, 2] = kept["v"][0, 2]
        return _replace(out, new)
    h = modules[1].register_forward_hook(write)
    probs = torch.softmax(last_logits(model, CORRUPTED), -1).numpy()
    h.remove()
    order = np.argsort(-probs)[:4]
    assert result.topk_ids[1, 2].tolist() == order.tolist()
    np.testing.assert_allclose(result.topk_probs[1, 2], probs[order], rtol=1e-5)
    # the unpatched runs' top-k
    clean_probs = torch.softmax(last_logits(model, CLEAN), -1).numpy()
    assert result.clean_topk_ids.tolist() == np.argsort(-clean_probs)[:4].tolist()


def test_many_patches_run_in_one_forward_and_batch_size_bounds_them():
    model = build("llama")
    lm = ew.from_pretrained(model)
    answer, foil = answer_and_foil(model)
    calls = []
    h = model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(
        (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs["inputs_embeds"]).shape[0]),
        with_kwargs=True)
    batched = ew.patching(lm, CLEAN, CORRUPTED, answer, foil, progress=False)
    assert calls == [1, 1, 18]  # clean, corrupted, then the 3 x 6 patches together
    calls.clear()
    small = ew.patching(lm, CLEAN, CORRUPTED, answer, foil, batch_size=4, progress=False)
    h.remove()
    assert calls == [1, 1, 4, 4, 4, 4, 2]
    np.testing.assert_allclose(small.effect, batched.effect, atol=1e-5)


@pytest.mark.parametrize("points", ["resid", "attn", "mlp"])
@pytest.mark.parametrize("family", ["gpt2", "llama", "opt", "falcon", "gemma2"])
def test_attribution_patching_equals_autograd_written_here(family, points):
    model = build(family).double()
    lm = ew.from_pretrained(model)
    answer, foil = answer_and_foil(model)
    calls = []
    h = model.register_forward_pre_hook(lambda *a: calls.append(1))
    result = ew.patching(lm, CLEAN, CORRUPTED, answer, foil, points=points, method="attribution", progress=False)
    h.remove()
    assert len(calls) == 2  # one clean forward, one corrupted forward (+ its backward)
    expected = reference_attribution(model, reference_modules(model, family, points), CLEAN, CORRUPTED, answer, foil)
    np.testing.assert_allclose(result.attribution_effect, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(result.effect, result.attribution_effect)
    assert result.topk_ids is None and result.agreement == {}


def test_both_stores_the_agreement_of_the_estimate_with_exact_patching():
    model = build("gpt2")
    lm = ew.from_pretrained(model)
    answer, foil = answer_and_foil(model)
    result = ew.patching(lm, CLEAN, CORRUPTED, answer, foil, method="both", progress=False)
    exact, estimate = result.effect.ravel().astype(np.float64), result.attribution_effect.ravel().astype(np.float64)
    r = np.sum((exact - exact.mean()) * (estimate - estimate.mean())) / math.sqrt(
        np.sum((exact - exact.mean()) ** 2) * np.sum((estimate - estimate.mean()) ** 2))
    signed = [i for i in range(exact.size) if abs(exact[i]) >= 0.01]
    agree = sum((exact[i] > 0) == (estimate[i] > 0) for i in signed) / len(signed)
    assert result.agreement["pearson"] == pytest.approx(r, abs=1e-9)
    assert result.agreement["sign_agreement"] == pytest.approx(agree)
    assert result.agreement["signed_cells"] == len(signed)
    view = result.grid()
    assert view.attribution_effect.shape == view.effect.shape and view.pearson == pytest.approx(r)
    assert view.signed_cells == len(signed)


# ----- bfloat16 -----
@pytest.mark.parametrize("family", FAMILIES)
def test_bfloat16_patching_is_close_to_float32(family):
    model = build(family)
    answer, foil = answer_and_foil(model)
    full = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, method="both", progress=False)
    half = ew.patching(ew.from_pretrained(build(family).to(torch.bfloat16)), CLEAN, CORRUPTED, answer, foil,
                       method="both", progress=False)
    assert half.effect.dtype == np.float32 and np.isfinite(half.effect).all()
    assert np.isfinite(half.attribution_effect).all()
    # bfloat16 keeps ~3 significant digits of each logit: compare logit differences on the scale of the logits
    scale = max(1.0, float(np.abs(full.logit_diff).max()))
    np.testing.assert_allclose(half.logit_diff, full.logit_diff, atol=0.05 * scale, rtol=0)


def test_bfloat16_batched_patching_equals_bfloat16_hooks_one_patch_per_forward():
    model = build("llama").to(torch.bfloat16)
    answer, foil = answer_and_foil(model)
    result = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="mlp", progress=False)
    _, diffs = reference_patching(model, reference_modules(model, "llama", "mlp"), CLEAN, CORRUPTED, answer, foil)
    # bfloat16 kernels differ between a batch of 18 and a batch of 1 by about one unit in the last place
    np.testing.assert_allclose(result.logit_diff, diffs, atol=0.02 * max(1.0, float(np.abs(diffs).max())))


# ----- bad input: clear errors before any forward -----
@pytest.fixture()
def counted():
    model = build("gpt2")
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    return ew.from_pretrained(model), calls


@pytest.mark.parametrize("kwargs, match", [
    ({"points": "block"}, "points must be one of 'resid', 'attn', 'mlp'"),
    ({"method": "fast"}, "method must be one of 'exact', 'attribution', 'both'"),
    ({"topk": 0}, "topk must be an integer from 1"),
    ({"batch_size": 0}, "batch_size must be None"),
    ({"answer": 7, "foil": 7}, "answer and foil are the same token"),
    ({"answer": 10**6}, "answer=1000000: Token id 1000000 is outside the vocabulary"),
    ({"corrupted": list(CLEAN)}, "clean and corrupted are the same tokens"),
    ({"corrupted": CORRUPTED + [3]}, r"same length.*clean is 6 tokens.*corrupted is 7 tokens"),
    ({"clean": "text"}, "This model has no tokenizer"),
])
def test_bad_input_is_refused_before_any_forward(counted, kwargs, match):
    lm, calls = counted
    args = {"clean": CLEAN, "corrupted": CORRUPTED, "answer": 7, "foil": 9, **kwargs}
    with pytest.raises(ew.InputError, match=match):
        ew.patching(lm, args.pop("clean"), args.pop("corrupted"), args.pop("answer"), args.pop("foil"), **args)
    assert calls == []


def test_an_answer_the_corruption_does_not_move_is_refused_before_the_patched_runs():
    model = build("gpt2")
    lm = ew.from_pretrained(model)
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    same = [5, 17, 33, 41, 9, 12]
    other = [6, 17, 33, 41, 9, 12]
    with torch.no_grad():  # make tokens 5 and 6 the same embedding: both runs give the same logits
        model.transformer.wte.weight[6] = model.transformer.wte.weight[5]
    with pytest.raises(ew.InputError, match="same logit difference"):
        ew.patching(lm, same, other, 7, 9, progress=False)
    assert len(calls) == 2  # the clean and the corrupted run, no patched one


@pytest.mark.slow
def test_text_errors_show_both_tokenizations_and_the_answer_pieces(demo_lm):
    calls = []
    handle = demo_lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ew.InputError) as error:
            ew.patching(demo_lm, "The Eiffel Tower is in", "Rome's Colosseum is in", " Paris", " Rome")
        text = str(error.value)
        assert "same length" in text and "'ĠTower'" in text and "'ĠCol'" in text and "clean is 6 tokens" in text
        pieces = r"answer=' Parisians' must be one token .* splits into \['ĠParis', 'ians'\]"
        with pytest.raises(ew.InputError, match=pieces):
            ew.patching(demo_lm, "The Eiffel Tower is in", "The Colosseum is in", " Parisians", " Rome")
        with pytest.raises(ew.InputError, match=r"foil=' Romeo and' must be one token .*splits into"):
            ew.patching(demo_lm, "The Eiffel Tower is in", "The Colosseum is in", " Paris", " Romeo and")
    finally:
        handle.remove()
    assert calls == []


# ----- save / load -----
def test_save_and_load_give_back_every_field(tmp_path):
    model = build("qwen2")
    answer, foil = answer_and_foil(model)
    result = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="attn", method="both",
                         topk=3, progress=False)
    back = ew.load(result.save(tmp_path / "patch"))
    assert type(back) is ew.PatchingResult
    for name, value in vars(result).items():
        other = getattr(back, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(other, value)
            assert other.dtype == value.dtype
        else:
            assert other == value, name
    assert back.cell_topk(2, 3) == result.cell_topk(2, 3)
    np.savez(tmp_path / "bad.npz", **{**dict(np.load(tmp_path / "patch.npz")), "effect": result.effect[:, :3]})
    with pytest.raises(ew.InputError, match="inconsistent.*effect of shape"):
        ew.load(tmp_path / "bad.npz")


# ----- the view -----
def test_patching_grid_checks_its_arrays():
    toks, other = ["a", " b", " c"], ["a", " x", " c"]
    with pytest.raises(ViewValueError, match="prompt pair must have as many tokens"):
        ew.PatchingGrid(toks, other[:2], np.zeros((2, 3)))
    with pytest.raises(ViewValueError, match=r"effect: expected shape \(n_layers, n_positions = 3\)"):
        ew.PatchingGrid(toks, other, np.zeros((2, 2)))
    with pytest.raises(ViewValueError, match="shown: 'attribution' needs attribution_effect"):
        ew.PatchingGrid(toks, other, np.zeros((2, 3)), shown="attribution")
    with pytest.raises(ViewValueError, match="NaN"):
        ew.PatchingGrid(toks, other, np.full((2, 3), np.nan))
    with pytest.raises(ViewValueError, match="outside the grid"):
        ew.PatchingGrid(toks, other, np.zeros((2, 3)), selected_cell=[2, 0])
    view = ew.PatchingGrid(toks, other, np.zeros((2, 3)), attribution_effect=np.ones((2, 3)),
                           agreement={"pearson": float("nan"), "sign_agreement": 0.5})
    assert view.pearson is None and view.sign_agreement == 0.5  # JSON has no NaN
    view.shown = "attribution"
    with pytest.raises(Exception, match="outside the grid"):
        view.selected_cell = [0, 5]


# ----- SmolLM2: a factual prompt pair -----
@pytest.mark.slow
def test_smollm2_restores_paris_at_the_subjects_last_token_in_middle_layers(demo_lm):
    clean, corrupted = "The Eiffel Tower is in the city of", "The Colosseum is in the city of"
    result = ew.patching(demo_lm, clean, corrupted, " Paris", " Rome", points="resid", method="both", progress=False)
    assert result.clean_tokens[3] == " Tower" and result.corrupted_tokens[1:4] == [" Col", "osse", "um"]
    assert result.differing_positions == [1, 2, 3]
    vocab = result.vocab_text
    assert vocab[int(result.clean_topk_ids[0])] == " Paris" and vocab[int(result.corrupted_topk_ids[0])] == " Rome"
    e = result.effect
    middle = slice(8, 21)
    # the subject's last token carries the answer through the middle layers; the tokens after it do not
    assert (e[middle, 3] > 0.25).all()
    assert (e[middle, 4:8] < 0.15).all()
    # the last position takes it over late: little in the middle layers, most from layer 23 on, all at the top
    assert (e[middle, -1] < 0.1).all() and (e[23:, -1] > 0.6).all()
    assert e[-1, -1] == pytest.approx(1.0, abs=1e-3)
    # two cells against one hooked forward each (the model's own logits)
    modules = list(demo_lm.model.model.layers)
    for layer, p in ((12, 3), (25, 8)):
        kept = {}
        h = modules[layer].register_forward_hook(lambda m, a, out: kept.__setitem__("v", _first(out).detach().clone()))
        ids_clean = demo_lm.encode(clean)
        lc = last_logits(demo_lm.model, ids_clean)
        h.remove()

        def write(m, a, out, p=p):
            new = _first(out).clone()
            new[0, p] = kept["v"][0, p]
            return _replace(out, new)
        h = modules[layer].register_forward_hook(write)
        lp = last_logits(demo_lm.model, demo_lm.encode(corrupted))
        h.remove()
        lx = last_logits(demo_lm.model, demo_lm.encode(corrupted))
        a, f = result.answer_id, result.foil_id
        expected = float((lp[a] - lp[f] - (lx[a] - lx[f])) / (lc[a] - lc[f] - (lx[a] - lx[f])))
        assert e[layer, p] == pytest.approx(expected, abs=1e-4)
    assert result.agreement["pearson"] > 0.3 and result.agreement["sign_agreement"] > 0.8
