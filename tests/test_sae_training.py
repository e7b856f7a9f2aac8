"""SAE training and evaluation (issue 27): ew.SAE.fit, SAE.evaluate, SAE.save.

References are written here: a synthetic dataset with a known sparse dictionary (the trained decoder must recover it),
the site's activations read with hooks written here, FVU / L0 / dead / dense from a dense encode in this file, and CE
loss recovered from forwards whose splice is a hook written here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydoc_data.topics import topics

import ecco_widgets as ew
from ecco_widgets.analysis.features.fit import CHECKPOINT, train_rows
from ecco_widgets.analysis.features.training import TrainSettings
from ecco_widgets.errors import InputError

SITE = "blocks.1.hook_resid_post"
TEXTS = [topics[k] for k in sorted(topics)[:12]]
HELD = [topics[k] for k in sorted(topics)[12:15]]
SMALL = dict(width=128, k=8, tokens=2048, context=32, batch_size=256, lr=3e-3, progress=False)


@pytest.fixture(scope="module")
def tiny_lm(tiny_llama_lm):
    return tiny_llama_lm


def synthetic(n: int = 30000, d: int = 32, m: int = 64, k: int = 3, seed: int = 1):
    """Rows made of k atoms of a random unit dictionary (m, d) with magnitudes in [0.5, 2.5]."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(m, d, generator=g)
    atoms /= atoms.norm(dim=1, keepdim=True)
    chosen = torch.stack([torch.randperm(m, generator=g)[:k] for _ in range(n)])
    codes = torch.zeros(n, m).scatter_(1, chosen, torch.rand(n, k, generator=g) * 2 + 0.5)
    return codes @ atoms, atoms


def mean_max_cosine(atoms: torch.Tensor, W_dec: torch.Tensor) -> float:
    learned = W_dec / W_dec.norm(dim=1, keepdim=True)
    return float((atoms @ learned.T).max(dim=1).values.mean())


@pytest.mark.parametrize("kind,extra", [("topk", {}), ("batchtopk", {}),
                                        ("jumprelu", {"l0_coefficient": 0.03, "bandwidth": 0.05,
                                                      "initial_threshold": 0.1})])
def test_training_recovers_a_known_dictionary(kind, extra):
    rows, atoms = synthetic()
    settings = TrainSettings(kind=kind, k=3, batch_size=256, lr=3e-3, dead_after=5000, **extra)
    weights, log = train_rows(rows, width=64, settings=settings, steps=1200, progress=False)
    assert mean_max_cosine(atoms, weights["W_dec"]) >= 0.9
    # the saved weights read raw rows: folded scale, same activations
    sae = ew.SAE(**weights, architecture="topk" if kind == "topk" else "jumprelu", k=3 if kind == "topk" else None)
    l0 = float((sae.encode(rows[:2000]) != 0).sum(1).float().mean())
    assert 2.0 <= l0 <= 4.5, l0
    assert sae.fvu(rows[:2000]) < 0.2
    if kind == "batchtopk":
        assert float(weights["threshold"].min()) > 0 and torch.unique(weights["threshold"]).numel() == 1


def test_a_random_init_does_not_pass_the_recovery_bar():
    """The bar means something: an untrained dictionary of the same width is far below it."""
    rows, atoms = synthetic()
    weights, _ = train_rows(rows[:512], width=64, settings=TrainSettings(k=3, batch_size=256), steps=0,
                            progress=False)
    assert mean_max_cosine(atoms, weights["W_dec"]) < 0.6


def site_rows(lm, texts, context: int, layer: int, tokens: int) -> torch.Tensor:
    """The residual stream after block ``layer`` (a hook written here), contexts cut as documented, first row of
    each context left out."""
    ids = []
    for text in texts:
        ids += lm.tokenizer(text, add_special_tokens=False)["input_ids"] + [lm.tokenizer.eos_token_id]
    n = len(ids) // context
    windows = torch.tensor(ids[: n * context]).reshape(n, context)
    kept = []

    def hook(module, args, output):
        kept.append((output[0] if isinstance(output, tuple) else output).detach())

    handle = lm.model.model.layers[layer].register_forward_hook(hook)
    try:
        with torch.no_grad():
            lm.model(input_ids=windows)
    finally:
        handle.remove()
    return kept[0][:, 1:].reshape(-1, kept[0].shape[-1])[:tokens], windows


def test_fit_writes_a_saelens_folder_trained_on_the_sites_activations(tiny_lm, tmp_path):
    sae = ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "sae", epochs=2, **SMALL)
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 8 and cfg["d_sae"] == 128 and cfg["d_in"] == 64
    assert cfg["metadata"]["hook_name"] == SITE and cfg["metadata"]["training"]["steps"] == 16
    assert sae.format == "saelens" and sae.k == 8
    assert not (tmp_path / "sae" / "activations.npy").exists()  # the harvest buffer is removed at the end
    x, _ = site_rows(tiny_lm, TEXTS, 32, 1, 2048)
    # trained on these rows: better than the mean (FVU < 1) and far better than at init
    assert sae.fvu(x) < 0.6
    # a second call with the same settings loads the finished folder instead of training again
    again = ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "sae", epochs=2, **SMALL)
    assert torch.equal(again.W_enc, sae.W_enc)
    with pytest.raises(InputError, match="another dictionary"):
        ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "sae", epochs=3, **SMALL)


def test_harvest_equals_the_sites_values_read_with_a_hook(tiny_lm):
    from ecco_widgets.analysis.features.harvest import harvest

    rows = harvest(tiny_lm, TEXTS, SITE, tokens=1000, context=32, progress=False)
    x, _ = site_rows(tiny_lm, TEXTS, 32, 1, 1000)
    assert rows.dtype == np.float16 and rows.shape == (1000, 64)
    np.testing.assert_allclose(rows.astype(np.float32), x.numpy(), rtol=2e-3, atol=2e-3)


def test_an_interrupted_fit_resumes_to_the_same_weights(tiny_lm, tmp_path):
    whole = ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "whole", epochs=3, **SMALL)

    def interrupt(step, metrics):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "cut", epochs=3, checkpoint_every=5, on_step=interrupt,
                   **SMALL)
    assert (tmp_path / "cut" / CHECKPOINT).is_file()
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["step"] == 7  # Ctrl-C saved step 7
    resumed = ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "cut", epochs=3, **SMALL)
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(resumed, name), getattr(whole, name)), name


def test_evaluate_matches_its_definitions(tiny_lm, tmp_path):
    sae = ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "sae", epochs=2, **SMALL)
    got = sae.evaluate(tiny_lm, HELD, context=32, progress=False)
    x, windows = site_rows(tiny_lm, HELD, 32, 1, 10**9)
    acts = sae.encode(x)
    recon = acts @ sae.W_dec + sae.b_dec
    x64, r64 = x.double(), recon.double()
    fvu = float((x64 - r64).pow(2).sum() / (x64 - x64.mean(0)).pow(2).sum())
    frequency = (acts != 0).double().mean(0)
    assert got["n_tokens"] == len(x)
    assert got["fvu"] == pytest.approx(fvu, rel=1e-4)
    assert got["l0"] == pytest.approx(float((acts != 0).sum(1).double().mean()), rel=1e-9)
    assert got["dead"] == pytest.approx(float((frequency == 0).double().mean()))
    assert got["dense"] == pytest.approx(float((frequency > 0.1).double().mean()))

    def loss(replace=None):
        handle = None
        if replace is not None:
            def hook(module, args, output):
                h = output[0] if isinstance(output, tuple) else output
                new = h.clone()
                new[:, 1:] = replace(h[:, 1:])
                return (new, *output[1:]) if isinstance(output, tuple) else new
            handle = tiny_lm.model.model.layers[1].register_forward_hook(hook)
        try:
            with torch.no_grad():
                logits = tiny_lm.model(input_ids=windows).logits
        finally:
            if handle is not None:
                handle.remove()
        return float(F.cross_entropy(logits[:, 1:-1].reshape(-1, logits.shape[-1]), windows[:, 2:].reshape(-1)))

    clean, spliced, zero = loss(), loss(lambda h: sae.decode(sae.encode(h))), loss(torch.zeros_like)
    assert got["ce_clean"] == pytest.approx(clean, rel=1e-5)
    assert got["ce_sae"] == pytest.approx(spliced, rel=1e-5)
    assert got["ce_zero"] == pytest.approx(zero, rel=1e-5)
    assert got["ce_recovered"] == pytest.approx((zero - spliced) / (zero - clean), rel=1e-4)


def test_save_round_trip_keeps_every_weight_and_the_labels(tmp_path):
    g = torch.Generator().manual_seed(0)
    for architecture, extra in (("topk", {"k": 3}), ("jumprelu", {"threshold": torch.rand(12, generator=g)}),
                                ("standard", {})):
        sae = ew.SAE(W_enc=torch.randn(6, 12, generator=g), W_dec=torch.randn(12, 6, generator=g),
                     b_enc=torch.randn(12, generator=g), b_dec=torch.randn(6, generator=g),
                     architecture=architecture, site={"hook_name": SITE}, **extra)
        sae.labels[2] = "a label"
        back = ew.SAE.load(sae.save(tmp_path / architecture))
        x = torch.randn(5, 6, generator=g)
        assert torch.equal(back.encode(x), sae.encode(x)) and torch.equal(back.decode(back.encode(x)), sae(x))
        assert back.labels[2] == "a label" and back.site["hook_name"] == SITE


@pytest.mark.parametrize("options,message", [
    ({"kind": "relu"}, "kind must be one of"),
    ({"k": 200}, "cannot exceed width"),
    ({"tokens": 10**7}, "Asked for 10000000 rows"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"momentum": 0.9}, "Unknown training settings"),
])
def test_bad_settings_are_refused_before_any_forward(tiny_lm, tmp_path, options, message):
    calls = []
    handle = tiny_lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(InputError, match=message):
            ew.SAE.fit(tiny_lm, TEXTS, SITE, out=tmp_path / "x", **{**SMALL, **options})
    finally:
        handle.remove()
    assert not calls


def test_harvest_reads_a_site_whose_module_flattens_the_tokens():
    """OPT's MLP runs on (batch * tokens, d): the rows still come out per context, in order (a hook in the test)."""
    import zoo
    from ecco_widgets.analysis.features.harvest import harvest_ids
    from test_foundation import WORDS, ToyTokenizer

    model = zoo.build("opt")
    lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
    ids = np.random.default_rng(0).integers(0, zoo.VOCAB, 4 * 16)
    rows = harvest_ids(lm.spec, ids, "blocks.1.hook_mlp_out", tokens=4 * 15, context=16, progress=False)
    got = []
    handle = model.model.decoder.layers[1].fc2.register_forward_hook(lambda m, a, o: got.append(o.detach()))
    with torch.no_grad():
        model(torch.tensor(ids.reshape(4, 16)), use_cache=False)
    handle.remove()
    assert got[0].shape == (4 * 16, 64)  # flattened by OPT's decoder layer
    expected = got[0].reshape(4, 16, 64)[:, 1:].reshape(-1, 64)  # the first token of each context left out
    expected = expected - expected.mean(-1, keepdim=True)  # a LayerNorm model's hook_mlp_out is centred, as in TL
    np.testing.assert_allclose(rows.astype(np.float32), expected.numpy(), rtol=2e-3, atol=2e-3)


def test_fit_on_a_bfloat16_model_trains_in_float32_on_its_sites_values(demo_lm, tmp_path):
    """A bfloat16 model: the harvest reads its bfloat16 site (float16 rows), training runs in float32 and the
    dictionary reconstructs the bfloat16 model's own rows as well as the float32 model's dictionary does its own."""
    from conftest import random_llama

    lm16 = ew.LanguageModel(random_llama(demo_lm.tokenizer).to(torch.bfloat16), tokenizer=demo_lm.tokenizer)
    sae = ew.SAE.fit(lm16, TEXTS, SITE, out=tmp_path / "sae16", epochs=2, **SMALL)
    assert sae.W_enc.dtype == torch.float32
    x, _ = site_rows(lm16, TEXTS, 32, 1, 2048)
    assert x.dtype == torch.bfloat16
    assert sae.fvu(x.float()) < 0.6  # the float32 model's bar in the test above
