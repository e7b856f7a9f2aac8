"""Sites, the attach check and the features of a text (issue 26, rooms 2-4), on random zoo models.

Every TransformerLens hook name is checked against what hooks written HERE record on the HF model (HF's
``hidden_states``, the attention / MLP modules' outputs named per family below); the features against ``sae.encode``
of those activations; error norms, FVU and L0 against their definitions written here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ecco_widgets as ew
import zoo
from ecco_widgets.analysis.features import SAE, FeatureRecorder, Site, resolve
from ecco_widgets.capture import capture
from ecco_widgets.errors import InputError, SiteWarning
from test_foundation import WORDS, ToyTokenizer

IDS = [3, 17, 5, 99, 42, 7, 250, 12, 64, 8, 31, 2]
LAYER = 1
#: per family: (block list, attention's contribution, MLP's contribution, ln2, the MLP, down projection, o_proj)
PARTS = {
    "gpt2": ("transformer.h", "attn", "mlp", "ln_2", "mlp", "mlp.c_proj", "attn.c_proj"),
    "llama": ("model.layers", "self_attn", "mlp", "post_attention_layernorm", "mlp", "mlp.down_proj",
              "self_attn.o_proj"),
    "gemma2": ("model.layers", "post_attention_layernorm", "post_feedforward_layernorm", "pre_feedforward_layernorm",
               "mlp", "mlp.down_proj", "self_attn.o_proj"),
}


def _lm(family: str, dtype=torch.float32):
    return ew.from_pretrained(zoo.build(family).to(dtype), tokenizer=ToyTokenizer(WORDS))


def _first(x):
    return x[0] if isinstance(x, tuple) else x


def reference(lm, family: str, layer: int = LAYER, ids: list[int] = IDS) -> dict[str, torch.Tensor]:
    """Each TL site of block ``layer`` as hooks written here record it (float32 where a transform applies)."""
    blocks_name, attn, mlp, ln2, mlp_module, down, o_proj = PARTS[family]
    model = lm.model
    block = model.get_submodule(f"{blocks_name}.{layer}")
    last = model.get_submodule(f"{blocks_name}.{lm.spec.n_layers - 1}")
    kept: dict[str, torch.Tensor] = {}
    hooks = [
        block.get_submodule(attn).register_forward_hook(lambda m, a, o: kept.__setitem__("attn", _first(o)[0].clone())),
        block.get_submodule(mlp).register_forward_hook(lambda m, a, o: kept.__setitem__("mlp", _first(o)[0].clone())),
        block.get_submodule(mlp_module).register_forward_pre_hook(lambda m, a: kept.__setitem__("mlp_in", a[0][0])),
        block.get_submodule(down).register_forward_pre_hook(lambda m, a: kept.__setitem__("post", a[0][0])),
        block.get_submodule(o_proj).register_forward_pre_hook(lambda m, a: kept.__setitem__("z", a[0][0])),
        last.register_forward_hook(lambda m, a, o: kept.__setitem__("last", _first(o)[0])),
    ]
    try:
        with torch.no_grad():
            hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
    finally:
        for h in hooks:
            h.remove()
    pre, post = hidden[layer][0], hidden[layer + 1][0]
    mid = pre + kept["attn"]
    norm = block.get_submodule(ln2)
    centred = isinstance(norm, torch.nn.LayerNorm)
    c = (lambda x: x.float() - x.float().mean(-1, keepdim=True)) if centred else (lambda x: x)
    eps = norm.eps if centred else norm.eps if hasattr(norm, "eps") else norm.variance_epsilon
    normalized = F.layer_norm(mid.float(), (mid.shape[-1],), eps=eps) if centred else \
        mid.float() * torch.rsqrt(mid.float().pow(2).mean(-1, keepdim=True) + eps)
    return {"hook_resid_pre": c(pre), "hook_resid_mid": c(mid), "hook_resid_post": c(post), "hook_mlp_in": c(mid),
            "hook_attn_out": c(kept["attn"]), "hook_mlp_out": c(kept["mlp"]), "mlp.hook_out": kept["mlp"],
            "mlp.hook_in": kept["mlp_in"], "ln2.hook_normalized": normalized, "attn.hook_z": kept["z"],
            "mlp.hook_post": kept["post"], "last_resid_post": c(kept["last"]), "hf_last": hidden[-1][0],
            "hf_resid_pre": pre}


def _dummy(width: int, dtype=torch.float32) -> SAE:
    return SAE(W_enc=torch.eye(width, dtype=dtype), W_dec=torch.eye(width, dtype=dtype),
               b_enc=torch.zeros(width, dtype=dtype), b_dec=torch.zeros(width, dtype=dtype))


def recorded(lm, names: list[str]) -> dict[str, torch.Tensor]:
    """What the feature plug reads at each site, in one capture."""
    sites = [resolve(lm.spec, n) for n in names]
    recorder = FeatureRecorder(lm.spec, [(_dummy(s.width), s) for s in sites], len(IDS), check=False)
    capture(lm.spec, torch.tensor([IDS]), plugs=(recorder,))
    return {n: recorder.read(s) for n, s in zip(names, sites)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("family", sorted(PARTS))
def test_each_tl_hook_name_reads_what_a_hook_on_the_hf_model_records(family, dtype):
    lm = _lm(family, dtype)
    want = reference(lm, family)
    hooks = ["hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_mlp_in", "hook_attn_out", "hook_mlp_out",
             "mlp.hook_out", "mlp.hook_in", "ln2.hook_normalized", "attn.hook_z", "mlp.hook_post"]
    got = recorded(lm, [f"blocks.{LAYER}.{h}" for h in hooks] + [f"blocks.{lm.spec.n_layers - 1}.hook_resid_post"])
    for hook in hooks:
        x, y = got[f"blocks.{LAYER}.{hook}"], want[hook]
        assert x.shape == y.shape, hook
        torch.testing.assert_close(x.float(), y.float(), rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-2,
                                   msg=hook)
    last = got[f"blocks.{lm.spec.n_layers - 1}.hook_resid_post"]
    torch.testing.assert_close(last.float(), want["last_resid_post"].float(), rtol=0, atol=0)
    assert not torch.allclose(last.float(), want["hf_last"].float(), atol=1e-2)  # HF's last entry is after the norm
    # the traps: hook_mlp_in is before ln2, mlp.hook_in after it (weight applied), ln2.hook_normalized without it
    assert not torch.allclose(want["hook_mlp_in"].float(), want["mlp.hook_in"].float(), atol=1e-2)
    assert not torch.allclose(want["ln2.hook_normalized"].float(), want["mlp.hook_in"].float(), atol=1e-2)
    centred = family == "gpt2"  # TL centres the residual of LayerNorm models (center_writing_weights)
    assert (resolve(lm.spec, "blocks.0.hook_resid_pre").transform == "centre") is centred
    if centred:
        assert not torch.allclose(got[f"blocks.{LAYER}.hook_resid_pre"].float(), want["hf_resid_pre"].float(),
                                  atol=1e-3)


@pytest.mark.parametrize("family", zoo.FAMILIES)
def test_every_family_maps_the_residual_and_block_sites(family):
    lm = ew.from_pretrained(zoo.build(family))
    for hook in ("hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "hook_mlp_in",
                 "ln2.hook_normalized", "mlp.hook_in", "attn.hook_z", "mlp.hook_post"):
        site = resolve(lm.spec, f"blocks.1.{hook}")
        assert site.module in lm.spec.modules and site.width, (family, hook)
    parallel = family in ("gptj", "gpt_neox", "falcon")
    if parallel:
        with pytest.raises(InputError, match="side by side"):
            resolve(lm.spec, "blocks.1.hook_resid_mid")
        assert resolve(lm.spec, "blocks.1.hook_mlp_in").module == resolve(lm.spec, "blocks.1.hook_resid_pre").module
    else:
        assert resolve(lm.spec, "blocks.1.hook_resid_mid").io == "input"


def test_sparsify_and_module_names(tmp_path):
    lm = _lm("llama")
    assert resolve(lm.spec, "layers.1.mlp").module == "model.layers.1.mlp"
    assert resolve(lm.spec, "layers.1").kind == "resid_post"
    assert resolve(lm.spec, "model.layers.1.mlp.input").io == "input"
    tc = SAE(W_enc=torch.randn(64, 20), W_dec=torch.randn(20, 64), b_enc=torch.zeros(20), b_dec=torch.zeros(64),
             architecture="topk", k=4, transcoder=True, apply_b_dec_to_input=False, format="sparsify",
             site={"hookpoint": "layers.1.mlp"})
    from ecco_widgets.analysis.features import sites_of
    read, out = sites_of(lm.spec, tc)
    assert (read.module, read.io, out.module, out.io) == ("model.layers.1.mlp", "input", "model.layers.1.mlp", "output")
    with pytest.raises(InputError, match="no module"):
        resolve(lm.spec, "layers.9.mlp")
    with pytest.raises(InputError, match="not mapped"):
        resolve(lm.spec, "blocks.1.attn.hook_pattern")


def _pca_sae(x: torch.Tensor, dtype=torch.float32) -> SAE:
    """An SAE that reconstructs the rows of x exactly: its latents are +/- the centred rows' principal directions."""
    x = x.double()
    mean = x.mean(0)
    u = torch.linalg.svd(x - mean, full_matrices=False).Vh  # (r, d)
    u = u[: int((torch.linalg.svdvals(x - mean) > 1e-6).sum())]
    w_enc = torch.cat([u.T, -u.T], dim=1)
    return SAE(W_enc=w_enc.to(dtype), W_dec=w_enc.T.contiguous().to(dtype),
               b_enc=torch.zeros(w_enc.shape[1], dtype=dtype), b_dec=mean.to(dtype))


@pytest.mark.parametrize("family,dtype", [("gpt2", torch.float32), ("llama", torch.bfloat16),
                                          ("gemma2", torch.float32)])
def test_features_of_a_text_equal_encode_of_the_recorded_activations(family, dtype):
    lm = _lm(family, dtype)
    want = reference(lm, family)
    g = torch.Generator().manual_seed(0)
    d = want["hook_resid_post"].shape[-1]
    topk = SAE(W_enc=torch.randn(d, 96, generator=g), W_dec=torch.randn(96, d, generator=g) / 10,
               b_enc=torch.randn(96, generator=g) * 0.1, b_dec=torch.randn(d, generator=g) * 0.1, architecture="topk",
               k=5)
    relu = SAE(W_enc=torch.randn(d, 80, generator=g), W_dec=torch.randn(80, d, generator=g) / 10,
               b_enc=torch.randn(80, generator=g) - 1.0, b_dec=torch.zeros(d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)  # random dictionaries fit no site
        out = lm.analyze_ids(IDS, saes={"a": (topk, f"blocks.{LAYER}.hook_resid_post"),
                                        "b": (relu, f"blocks.{LAYER}.hook_mlp_out")})
    for name, sae, hook in (("a", topk, "hook_resid_post"), ("b", relu, "hook_mlp_out")):
        f = out.features[name]
        x = want[hook]
        acts = sae.encode(x).float()
        n_active = (acts != 0).sum(-1)
        assert f.indices.dtype == np.int32 and f.values.dtype == np.float32
        assert f.indices.shape == (len(IDS), int(n_active.max()))  # only active entries: no dense (n, d_sae)
        assert ((f.indices >= 0).sum(1) == n_active.numpy()).all()
        assert (f.values[f.indices < 0] == 0).all() and (f.values[f.indices >= 0] != 0).all()
        for p in range(len(IDS)):
            active = torch.nonzero(acts[p])[:, 0].tolist()
            assert sorted(i for i, _ in f.active(p)) == active
            np.testing.assert_allclose([v for _, v in sorted(f.active(p))], acts[p, active].numpy(), rtol=1e-6)
        np.testing.assert_allclose(f.dense(), acts.numpy(), rtol=1e-6, atol=0)
        recon = sae.decode(sae.encode(x), x_in=x).double()
        target = x.double()
        np.testing.assert_allclose(f.error_norm, (target - recon).norm(dim=-1).numpy(), rtol=1e-4)
        fvu = float((target - recon).pow(2).sum() / (target - target.mean(0)).pow(2).sum())
        assert f.fvu == pytest.approx(fvu, rel=1e-4)
        assert f.l0 == pytest.approx(float(n_active.float().mean()))
        assert f.d_sae == sae.d_sae and "output" in f.site


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2"])
def test_the_attach_check_names_the_site_that_fits(family):
    lm = _lm(family)
    x = reference(lm, family)["hook_resid_post"]
    sae = _pca_sae(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SiteWarning)
        out = lm.analyze_ids(IDS, saes=[(sae, f"blocks.{LAYER}.hook_resid_post")])
    f = out.features[f"blocks.{LAYER}.hook_resid_post"]
    assert f.fvu < 1e-6 and f.warning == ""
    for wrong in (f"blocks.{LAYER}.hook_attn_out", f"blocks.{LAYER}.hook_mlp_out"):
        with pytest.warns(SiteWarning, match=rf"blocks\.{LAYER}\.hook_resid_post|blocks\.{LAYER + 1}\.hook_resid_pre"):
            out = lm.analyze_ids(IDS, saes=[(sae, wrong)])
        assert "fits" in out.features[wrong].warning and out.features[wrong].fvu > 0.5


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_the_attach_check_catches_the_neighbouring_layer(family):
    lm = _lm(family)
    with torch.no_grad():  # MLPs that move the residual stream (random init barely does: neighbours look alike)
        for layer in range(lm.spec.n_layers):
            lm.spec.down_proj(layer).weight.mul_(100)
    sae = _pca_sae(reference(lm, family)["hook_resid_post"])
    with pytest.warns(SiteWarning, match=rf"fits \S+ output.*saes=\[\(sae, 'blocks\.{LAYER}\.hook_resid_post'\)\]"):
        lm.analyze_ids(IDS, saes=[(sae, f"blocks.{LAYER}.hook_resid_pre")])


LONG_IDS = [(37 * i) % 250 + 1 for i in range(40)]  # long enough for the check to judge by FVU alone


def test_stated_fvu_in_the_files_tightens_the_check():
    lm = _lm("llama")
    x = reference(lm, "llama", ids=LONG_IDS)["hook_resid_post"]
    sae = _pca_sae(x[:20])  # fits the first tokens only: FVU below 0.5 on the text (0.32), far above the stated 0.01
    sae.config = {"metadata": {"explained_variance": 0.99}}
    with pytest.warns(SiteWarning, match="its files state 0.01"):
        out = lm.analyze_ids(LONG_IDS, saes=[(sae, f"blocks.{LAYER}.hook_resid_post")])
    assert out.features[f"blocks.{LAYER}.hook_resid_post"].file_fvu == pytest.approx(0.01)
    assert 0.12 < out.features[f"blocks.{LAYER}.hook_resid_post"].fvu < 0.5


def test_on_a_short_text_a_high_fvu_alone_does_not_warn():
    """12 tokens: the same kind of dictionary (fits the first tokens only) is above its stated FVU, but no
    neighbouring site fits better and its FVU is below 1, so the check stays quiet; a wrong site on the same short
    text still warns (a random dictionary too: test_batch_stores_each_prompts_features)."""
    lm = _lm("llama")
    x = reference(lm, "llama")["hook_resid_post"]
    sae = _pca_sae(x[:6])
    sae.config = {"metadata": {"explained_variance": 0.99}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SiteWarning)
        out = lm.analyze_ids(IDS, saes=[(sae, f"blocks.{LAYER}.hook_resid_post")])
    assert out.features[f"blocks.{LAYER}.hook_resid_post"].warning == ""
    with pytest.warns(SiteWarning, match="fits"):
        lm.analyze_ids(IDS, saes=[(_pca_sae(x), f"blocks.{LAYER}.hook_attn_out")])


def test_wrong_widths_and_unknown_sites_are_refused_before_the_forward():
    lm = _lm("gpt2")
    ran = []
    handle = lm.model.register_forward_pre_hook(lambda m, a: ran.append(1))
    try:
        with pytest.raises(InputError, match="reads 32 values per token.*holds 64"):
            lm.analyze_ids(IDS, saes=[(_dummy(32), "blocks.1.hook_resid_post")])
        with pytest.raises(InputError, match="holds 256"):
            lm.analyze_ids(IDS, saes=[(_dummy(64), "blocks.1.mlp.hook_post")])
        with pytest.raises(InputError, match="layer 7 does not exist"):
            lm.analyze_ids(IDS, saes=[(_dummy(64), "blocks.7.hook_resid_post")])
        with pytest.raises(InputError, match="name no site"):
            lm.analyze_ids(IDS, saes=[_dummy(64)])
        with pytest.raises(InputError, match="ew.SAE"):
            lm.analyze_ids(IDS, saes=["not a dictionary"])
    finally:
        handle.remove()
    assert not ran
    sae = _dummy(64)
    sae.site = {"hook_name": "blocks.0.hook_resid_pre"}  # the files' own site is used
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        assert list(lm.analyze_ids(IDS, saes=[sae]).features) == ["blocks.0.hook_resid_pre"]


def test_a_site_by_hand_and_a_head_of_hook_z():
    lm = _lm("llama")
    want = reference(lm, "llama")
    head = _dummy(16)
    head.site = {"hook_name": f"blocks.{LAYER}.attn.hook_z", "hook_head_index": 2}
    by_hand = _dummy(64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        out = lm.analyze_ids(IDS, saes={"head": head, "hand": (by_hand, Site(f"model.layers.{LAYER}.mlp", "input"))})
    np.testing.assert_allclose(out.features["head"].dense(), torch.relu(want["attn.hook_z"][:, 32:48]).numpy())
    np.testing.assert_allclose(out.features["hand"].dense(), torch.relu(want["mlp.hook_in"]).numpy())


def test_saved_and_loaded_with_the_output(tmp_path):
    lm = _lm("gpt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        out = lm.analyze_ids(IDS, saes=[(_dummy(64), "blocks.1.hook_resid_post"),
                                        (_dummy(256), "blocks.0.mlp.hook_post")])
    path = out.save(tmp_path / "out")
    with np.load(path) as data:
        assert "features/blocks.1.hook_resid_post/indices" in data.files
        assert not any(data[k].shape[-1:] == (256,) for k in data.files if k.startswith("features/"))
    back = ew.load(path)
    assert back.features.keys() == out.features.keys()
    for name in out.features:
        assert back.features[name] == out.features[name]
    assert out.copy().features == out.features
    plain = lm.analyze_ids(IDS)
    assert plain.features == {} and ew.load(plain.save(tmp_path / "plain")).features == {}


def test_generate_and_chat_pass_saes_through():
    lm = _lm("gpt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        out = lm.generate("w3 w17 w5", max_new_tokens=3, saes=[(_dummy(64), "blocks.2.hook_resid_post")])
    assert out.features["blocks.2.hook_resid_post"].indices.shape[0] == out.n_tokens == 6
    ran = []
    handle = lm.model.register_forward_pre_hook(lambda m, a: ran.append(1))
    try:
        with pytest.raises(InputError, match="reads 32 values"):  # refused before generating
            lm.generate("w3 w17", max_new_tokens=3, saes=[(_dummy(32), "blocks.2.hook_resid_post")])
    finally:
        handle.remove()
    assert not ran
    from test_words import _smollm2_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _smollm2_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1, vocab_size=len(tokenizer),
                                         max_position_embeddings=512)).eval()
    chat = ew.from_pretrained(model, tokenizer=tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        out = chat.chat([{"role": "user", "content": "Hi"}], max_new_tokens=2,
                        saes=[(_dummy(32), "blocks.1.hook_resid_post")])
    assert out.features["blocks.1.hook_resid_post"].error_norm.shape == (out.n_tokens,)
    with pytest.raises(InputError, match="reads 16 values"):
        chat.chat([{"role": "user", "content": "Hi"}], max_new_tokens=2,
                  saes=[(_dummy(16), "blocks.1.hook_resid_post")])


def test_batch_stores_each_prompts_features(tmp_path):
    lm = _lm("gpt2")
    sae = _dummy(64)
    sae.W_dec = -sae.W_dec  # a broken dictionary (FVU above 1): the check warns even on short prompts
    prompts = ["w3 w17 w5 w9", "w4 w8", ""]
    with pytest.raises(InputError, match="reads 32 values"):  # checked before any prompt
        ew.batch(lm, prompts, tmp_path / "bad", saes=[(_dummy(32), "blocks.1.hook_resid_post")], progress=False)
    results = ew.batch(lm, prompts, tmp_path / "run", saes=[(sae, "blocks.1.hook_resid_post")], progress=False)
    assert results.settings["saes"][0]["name"] == "blocks.1.hook_resid_post"
    for index, prompt in enumerate(prompts[:2]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SiteWarning)
            single = lm.analyze(prompt, saes=[(sae, "blocks.1.hook_resid_post")])
        assert results[index].features == single.features
    assert "SiteWarning" in (results.row(0)["warnings"] or "")


def test_by_word_keeps_each_words_last_piece(tmp_path):
    lm = _lm("gpt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        out = lm.analyze("w3 w17 w5 w9", saes=[(_dummy(64), "blocks.1.hook_resid_post")])
    words = out.by_word()
    f, w = out.features["blocks.1.hook_resid_post"], words.features["blocks.1.hook_resid_post"]
    last = words.piece_starts[1:] - 1
    np.testing.assert_array_equal(w.dense(), f.dense()[last])
    assert w.indices.shape[0] == words.n_tokens and w.fvu == f.fvu
    assert ew.load(words.save(tmp_path / "w")).features == words.features


def test_a_site_by_hand_is_checked():
    lm = _lm("gpt2")
    with pytest.raises(InputError, match="'input' or 'output'"):
        Site("transformer.h.0", "inside")
    with pytest.raises(InputError, match="no module"):
        lm.analyze_ids(IDS, saes=[(_dummy(64), Site("transformer.h.9"))])


@pytest.mark.parametrize("family", ["gpt2", "qwen2"])
def test_hook_z_lacks_the_value_bias_as_transformer_lens_folds_it(family):
    model = zoo.build(family)
    with torch.no_grad():  # biases TL folds away: the pre-attention norm's (GPT-2) and the value projection's
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.5)
    lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
    block = lm.spec.blocks[LAYER]
    kept = {}
    o_proj = block.attn.c_proj if family == "gpt2" else block.self_attn.o_proj
    handle = o_proj.register_forward_pre_hook(lambda m, a: kept.__setitem__("z", a[0][0]))
    with torch.no_grad():
        model(torch.tensor([IDS]))
    handle.remove()
    if family == "gpt2":
        d = 64
        folded = block.ln_1.bias @ block.attn.c_attn.weight[:, 2 * d:] + block.attn.c_attn.bias[2 * d:]
    else:  # 2 key / value heads of 16 serve 4 query heads
        folded = block.self_attn.v_proj.bias.view(2, 16).repeat_interleave(2, dim=0).reshape(-1)
    got = recorded(lm, [f"blocks.{LAYER}.attn.hook_z"])[f"blocks.{LAYER}.attn.hook_z"]
    torch.testing.assert_close(got, kept["z"] - folded, rtol=0, atol=1e-5)
    assert "value bias" in resolve(lm.spec, f"blocks.{LAYER}.attn.hook_z").describe()
