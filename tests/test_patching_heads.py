"""Head-level activation patching (ew.patching(..., points="head")) against references written here: a forward
pre-hook on the attention output projection that overwrites one head's slice of its input with the clean run's slice,
one patch per forward, the model's own logits; attribution patching against autograd written here; bad inputs and
refused models; save / load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_patching import CLEAN, CORRUPTED, answer_and_foil, backward_of, last_logits  # the same pair
from zoo import build

import ecco_widgets as ew

#: each family's blocks, the attention output projection inside a block and the head width, read from the
#: transformers sources and tests/zoo.py, not from the adapter
PROJECTIONS = {
    "gpt2": ("transformer.h", "attn.c_proj", 16),
    "llama": ("model.layers", "self_attn.o_proj", 16),
    "gemma2": ("model.layers", "self_attn.o_proj", 16),
}
FAMILIES = sorted(PROJECTIONS)


def projections(model, family):
    blocks, path, _ = PROJECTIONS[family]
    return [b.get_submodule(path) for b in model.get_submodule(blocks)]


def clean_inputs(model, modules):
    kept = {}
    handles = [m.register_forward_pre_hook(lambda mod, args, i=i: kept.__setitem__(i, args[0].detach().clone()))
               for i, m in enumerate(modules)]
    logits = last_logits(model, CLEAN)
    for h in handles:
        h.remove()
    return kept, logits


def reference_heads(model, family, answer, foil, positions):
    """Exact head patching, one patch per forward: (effect, logit_diff) float64 (n_layers, n_heads, len(positions))."""
    modules = projections(model, family)
    d = PROJECTIONS[family][2]
    kept, lc = clean_inputs(model, modules)
    lx = last_logits(model, CORRUPTED)
    ld_clean, ld_corrupted = float(lc[answer] - lc[foil]), float(lx[answer] - lx[foil])
    n_heads = kept[0].shape[-1] // d
    diffs = np.zeros((len(modules), n_heads, len(positions)))
    for layer, module in enumerate(modules):
        for h in range(n_heads):
            for j, p in enumerate(positions):
                def write(mod, args, layer=layer, h=h, p=p):
                    x = args[0].clone()
                    x[0, p, h * d:(h + 1) * d] = kept[layer][0, p, h * d:(h + 1) * d]
                    return (x, *args[1:])
                handle = module.register_forward_pre_hook(write)
                logits = last_logits(model, CORRUPTED)
                handle.remove()
                diffs[layer, h, j] = float(logits[answer] - logits[foil])
    return (diffs - ld_corrupted) / (ld_clean - ld_corrupted), diffs


def reference_head_attribution(model, family, answer, foil):
    """(clean - corrupted) . d LD / d (projection input), summed over each head's slice, by autograd, / the gap:
    float64 (n_layers, n_heads, n_positions)."""
    modules = projections(model, family)
    d = PROJECTIONS[family][2]
    kept, lc = clean_inputs(model, modules)
    live = {}

    def keep(mod, args, i):
        args[0].retain_grad()
        live[i] = args[0]

    handles = [m.register_forward_pre_hook(lambda mod, args, i=i: keep(mod, args, i)) for i, m in enumerate(modules)]
    gap = float(lc[answer] - lc[foil]) - backward_of(model, CORRUPTED, answer, foil, handles)
    out = []
    for i in range(len(modules)):
        product = ((kept[i][0] - live[i].detach()[0]) * live[i].grad[0]).double()  # (n, width)
        out.append(product.reshape(product.shape[0], -1, d).sum(-1).T.numpy() / gap)
    return np.stack(out)


@pytest.mark.parametrize("family", FAMILIES)
def test_head_patching_at_the_last_position_equals_one_hooked_forward_per_patch(family):
    model = build(family).double()
    lm = ew.from_pretrained(model)
    answer, foil = answer_and_foil(model)
    result = ew.patching(lm, CLEAN, CORRUPTED, answer, foil, points="head", progress=False)
    effect, diffs = reference_heads(model, family, answer, foil, [len(CLEAN) - 1])
    assert result.effect.dtype == np.float32 and result.effect.shape == (3, 4, 1)
    assert result.n_heads == 4 and result.n_positions == 1 and result.positions.tolist() == [5]
    np.testing.assert_allclose(result.effect, effect, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.logit_diff, diffs, atol=1e-5, rtol=0)
    assert np.abs(effect).max() > 1e-3  # the last position's heads do move the answer


@pytest.mark.parametrize("family", FAMILIES)
def test_head_patching_per_position_equals_the_reference_and_float32_too(family):
    model = build(family).double()
    answer, foil = answer_and_foil(model)
    positions = [1, 2, 5]
    result = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="head",
                         positions=[2, -1, 1], progress=False)
    effect, diffs = reference_heads(model, family, answer, foil, positions)
    assert result.effect.shape == (3, 4, 3) and result.positions.tolist() == positions
    np.testing.assert_allclose(result.effect, effect, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.effect[:, :, 0], 0, atol=1e-5)  # position 1 precedes the corruption
    single = ew.patching(ew.from_pretrained(build(family)), CLEAN, CORRUPTED, answer, foil, points="head",
                         positions=positions, topk=3, progress=False)
    np.testing.assert_allclose(single.effect, effect, atol=1e-4, rtol=0)
    assert single.topk_ids.shape == (3, 4, 3, 3)
    # the top-k of cell (layer 1, head 2, position 2): the patched run's own softmax
    modules, d = projections(model, family), 16
    kept, _ = clean_inputs(model, modules)

    def write(mod, args):
        x = args[0].clone()
        x[0, 2, 2 * d:3 * d] = kept[1][0, 2, 2 * d:3 * d]
        return (x, *args[1:])
    handle = modules[1].register_forward_pre_hook(write)
    probs = torch.softmax(last_logits(model, CORRUPTED), -1).numpy()
    handle.remove()
    assert single.topk_ids[1, 2, 1].tolist() == np.argsort(-probs)[:3].tolist()
    assert [t for t, _ in single.cell_topk(1, 2, head=2)] == [single.vocab_text[int(i)] for i in
                                                              np.argsort(-probs)[:3]]


def test_many_head_patches_run_in_one_forward():
    model = build("llama")
    answer, foil = answer_and_foil(model)
    calls = []
    h = model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(
        (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs["inputs_embeds"]).shape[0]),
        with_kwargs=True)
    ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="head", positions=[2, 5],
                batch_size=10, progress=False)
    h.remove()
    assert calls == [1, 1, 10, 10, 4]  # clean, corrupted, then 3 layers x 4 heads x 2 positions, 10 a forward


@pytest.mark.parametrize("family", FAMILIES)
def test_head_attribution_patching_equals_autograd_written_here(family):
    model = build(family).double()
    answer, foil = answer_and_foil(model)
    calls = []
    h = model.register_forward_pre_hook(lambda *a: calls.append(1))
    result = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="head",
                         method="attribution", positions=list(range(len(CLEAN))), progress=False)
    h.remove()
    assert len(calls) == 2
    expected = reference_head_attribution(model, family, answer, foil)
    assert result.attribution_effect.shape == (3, 4, len(CLEAN))
    np.testing.assert_allclose(result.attribution_effect, expected, atol=1e-5, rtol=0)
    last = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="head", method="both",
                       progress=False)
    np.testing.assert_allclose(last.attribution_effect, expected[:, :, -1:], atol=1e-5, rtol=0)
    assert set(last.agreement) == {"pearson", "sign_agreement", "signed_cells"}


# ----- bad input, refused models, the view -----
def test_bad_head_inputs_are_refused_before_any_forward():
    model = build("gpt2")
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    lm = ew.from_pretrained(model)
    with pytest.raises(ew.InputError, match="'head' one attention head"):
        ew.patching(lm, CLEAN, CORRUPTED, 7, 9, points="heads")
    with pytest.raises(ew.InputError, match="positions must be token positions"):
        ew.patching(lm, CLEAN, CORRUPTED, 7, 9, points="head", positions=[6])
    with pytest.raises(ew.InputError, match="positions .* names a position twice"):
        ew.patching(lm, CLEAN, CORRUPTED, 7, 9, points="head", positions=[5, -1])
    assert calls == []
    with pytest.raises(ew.InputError, match=r"24 patched runs \(3 layers x 4 heads x 2 positions\).*max_runs=10"):
        ew.patching(lm, CLEAN, CORRUPTED, 7, 9, points="head", positions=[1, 2], max_runs=10)
    assert len(calls) == 1  # the clean run, timed for the estimate


def test_a_model_whose_heads_are_not_a_slice_is_refused_before_any_forward():
    model = build("gpt2")
    calls = []
    model.register_forward_pre_hook(lambda *a: calls.append(1))
    lm = ew.from_pretrained(model, spec=ew.ModelSpec(head_dim=24))  # 64 is not a multiple of 24
    with pytest.raises(ew.NotAvailableError, match=r"Head-level patching \(points='head'\) is not available.*"
                                                   "not a multiple of head_dim=24"):
        ew.patching(lm, CLEAN, CORRUPTED, 7, 9, points="head")
    bloom = build("bloom")
    bloom.config.pretraining_tp, bloom.config.slow_but_exact = 2, True
    with pytest.raises(ew.NotAvailableError, match="slow_but_exact"):
        ew.patching(ew.from_pretrained(bloom), CLEAN, CORRUPTED, 7, 9, points="head")
    assert calls == []


def test_the_result_checks_its_cells():
    model = build("llama")
    answer, foil = answer_and_foil(model)
    result = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="head", progress=False)
    with pytest.raises(ew.InputError, match="needs a head from 0 to 3"):
        result.cell_topk(0, 5)
    with pytest.raises(ew.InputError, match="Position 2 was not patched"):
        result.cell_topk(0, 2, head=1)
    assert len(result.cell_topk(2, -1, head=3)) == 10


def sent(view, name: str) -> np.ndarray:
    """A trait's array as the browser receives it (the binary buffer, its dtype and shape)."""
    state = view.get_state()[name]
    return np.frombuffer(bytes(state["view"]), dtype=state["dtype"]).reshape(state["shape"])


def test_the_grid_sends_the_results_arrays():
    """grid() of a points="head" result is a HeadPatchingGrid (layers x heads, a position selector): what it sends
    equals the result's arrays, every top-k entry names the result's token and probability."""
    model = build("gpt2")
    answer, foil = answer_and_foil(model)
    result = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="head", method="both",
                         positions=[2, 5], topk=3, progress=False)
    view = result.grid(theme="dark")
    assert isinstance(view, ew.views.HeadPatchingGrid) and view.theme == "dark"
    np.testing.assert_array_equal(sent(view, "effect"), result.effect)
    np.testing.assert_array_equal(sent(view, "attribution_effect"), result.attribution_effect)
    assert view.positions == [2, 5] and view.selected_position == 1  # the last patched position first
    assert view.clean_tokens == result.clean_tokens and view.pearson == pytest.approx(result.agreement["pearson"])
    index, probs = sent(view, "topk_index"), sent(view, "topk_probs")
    assert index.shape == result.topk_ids.shape == (3, 4, 2, 3)
    words = np.vectorize(lambda i: view.topk_vocab[i])(index)
    expected = np.vectorize(lambda i: result.vocab_text.get(int(i), str(int(i))))(result.topk_ids)
    np.testing.assert_array_equal(words, expected)
    np.testing.assert_array_equal(probs, result.topk_probs)
    html = ew.to_html(view)
    assert "patching_heads" in html or "HeadPatchingGrid" in html
    with pytest.raises(ew.views.ViewValueError, match="selected_position"):
        view.selected_position = 2
    with pytest.raises(ew.views.ViewValueError, match="3 layers x 4 heads"):
        view.selected_cell = [0, 4]


def test_save_and_load_give_back_every_field(tmp_path):
    model = build("gemma2")
    answer, foil = answer_and_foil(model)
    result = ew.patching(ew.from_pretrained(model), CLEAN, CORRUPTED, answer, foil, points="head", method="both",
                         positions=[2, 5], topk=3, progress=False)
    back = ew.load(result.save(tmp_path / "heads"))
    assert type(back) is ew.PatchingResult and back.n_heads == 4
    for name, value in vars(result).items():
        other = getattr(back, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(other, value)
            assert other.dtype == value.dtype
        else:
            assert other == value or (value != value and other != other), name
    assert back.cell_topk(1, 5, head=0) == result.cell_topk(1, 5, head=0)
    np.savez(tmp_path / "bad.npz", **{**dict(np.load(tmp_path / "heads.npz")), "effect": result.effect[:, :, 0]})
    with pytest.raises(ew.InputError, match="inconsistent.*effect of shape"):
        ew.load(tmp_path / "bad.npz")


# ----- SmolLM2: the heads that carry " Paris" to the last position -----
@pytest.mark.slow
def test_smollm2_layer_23_head_4_restores_paris_at_the_last_position(demo_lm):
    clean, corrupted = "The Eiffel Tower is in the city of", "The Colosseum is in the city of"
    result = ew.patching(demo_lm, clean, corrupted, " Paris", " Rome", points="head", method="both", progress=False)
    e = result.effect[:, :, 0]
    assert e.shape == (30, 9) and np.unravel_index(np.argmax(e), e.shape) == (23, 4)
    assert result.agreement["pearson"] > 0.9
    # that cell against one hooked forward (the model's own logits)
    o_proj = demo_lm.model.model.layers[23].self_attn.o_proj
    kept = {}
    h = o_proj.register_forward_pre_hook(lambda m, args: kept.__setitem__("x", args[0].detach().clone()))
    lc = last_logits(demo_lm.model, demo_lm.encode(clean))
    h.remove()

    def write(m, args):
        x = args[0].clone()
        x[0, -1, 4 * 64:5 * 64] = kept["x"][0, -1, 4 * 64:5 * 64]
        return (x, *args[1:])
    h = o_proj.register_forward_pre_hook(write)
    lp = last_logits(demo_lm.model, demo_lm.encode(corrupted))
    h.remove()
    lx = last_logits(demo_lm.model, demo_lm.encode(corrupted))
    a, f = result.answer_id, result.foil_id
    expected = float((lp[a] - lp[f] - (lx[a] - lx[f])) / (lc[a] - lc[f] - (lx[a] - lx[f])))
    assert e[23, 4] == pytest.approx(expected, abs=1e-4)
