"""Context mixing (issue 28): value zeroing, ALTI-Logit and attention rollout as attribution methods, each checked
against its definition computed here with hooks written in this file, in float32, on three layouts of the zoo: GPT-2
(fused Conv1D c_attn, LayerNorm), Llama (v_proj / o_proj, RMSNorm, GQA: 4 query heads on 2 key/value heads) and
GPT-NeoX (fused query_key_value interleaved per head, parallel attention and MLP).

* rollout: the model's own attention weights (``output_attentions`` under eager attention), averaged, plus I,
  normalised, multiplied;
* value zeroing: one full forward per (layer, token) with a forward hook that zeroes that token's value slice in
  that layer's projection output, 1 - cosine of that block's output against the clean run's, normalised, rolled out;
* ALTI-Logit: per-head vectors A_h[t, j] v_hj W_O^h built here from the recorded value slices, attention weights and
  the projection's weight (checked to add up to the projection's real output), the final norm frozen by its formula
  written here, ALTI's L1 contributions, rolled out.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from test_foundation import WORDS, ToyTokenizer

IDS = [5, 17, 33, 2, 99, 140, 7, 61]
TARGETS = [3, 7]  # explained positions; the prefix is IDS[:7], rows 2 and 6 predict them
FAMILIES = ["gpt2", "llama", "gpt_neox"]
METHODS = ["value_zeroing", "alti_logit", "rollout"]


class Parts:
    """This test's own map of a zoo model: blocks, value slice, output projection per head, final norm."""

    def __init__(self, family: str, model: torch.nn.Module):
        self.family, self.model, config = family, model, model.config
        self.n_heads = config.num_attention_heads if family != "gpt2" else config.n_head
        self.n_kv = getattr(config, "num_key_value_heads", None) or self.n_heads
        d = config.hidden_size if family != "gpt2" else config.n_embd
        self.d, self.hd = d, d // self.n_heads
        if family == "gpt2":
            self.blocks, self.final = model.transformer.h, model.transformer.ln_f
        elif family == "llama":
            self.blocks, self.final = model.model.layers, model.model.norm
        else:
            self.blocks, self.final = model.gpt_neox.layers, model.gpt_neox.final_layer_norm

    def value_module(self, layer: int) -> torch.nn.Module:
        block = self.blocks[layer]
        return {"gpt2": lambda: block.attn.c_attn, "llama": lambda: block.self_attn.v_proj,
                "gpt_neox": lambda: block.attention.query_key_value}[self.family]()

    def out_module(self, layer: int) -> torch.nn.Module:
        block = self.blocks[layer]
        return {"gpt2": lambda: block.attn.c_proj, "llama": lambda: block.self_attn.o_proj,
                "gpt_neox": lambda: block.attention.dense}[self.family]()

    def values(self, output: torch.Tensor) -> torch.Tensor:
        """(L, n_heads, hd): each QUERY head's value vectors, from the value module's output (1, L, width)."""
        o = output[0]
        if self.family == "gpt2":
            v = o[:, 2 * self.d:].reshape(-1, self.n_heads, self.hd)
        elif self.family == "llama":
            v = o.reshape(-1, self.n_kv, self.hd).repeat_interleave(self.n_heads // self.n_kv, dim=1)
        else:
            v = o.reshape(-1, self.n_heads, 3 * self.hd)[:, :, 2 * self.hd:]
        return v.float()

    def zero_value(self, output: torch.Tensor, token: int) -> torch.Tensor:
        output = output.clone()
        if self.family == "gpt2":
            output[0, token, 2 * self.d:] = 0
        elif self.family == "llama":
            output[0, token] = 0
        else:
            output.view(1, output.shape[1], self.n_heads, 3 * self.hd)[0, token, :, 2 * self.hd:] = 0
        return output

    def head_out(self, layer: int, head: int) -> torch.Tensor:
        """(hd, d): head ``head``'s slice of the output projection."""
        module = self.out_module(layer)
        rows = slice(head * self.hd, (head + 1) * self.hd)
        return (module.weight[rows] if self.family == "gpt2" else module.weight[:, rows].T).float()

    def frozen_final(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The final norm's linear part at the scale of its input x (d,), applied to v (..., d), bias left out."""
        w = self.final.weight.float()
        if isinstance(self.final, torch.nn.LayerNorm):
            return (v - v.mean(-1, keepdim=True)) / torch.sqrt(x.var(unbiased=False) + self.final.eps) * w
        return v / torch.sqrt(x.pow(2).mean() + self.final.variance_epsilon) * w


def analysed(family: str):
    model = zoo.build(family)
    lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
    return Parts(family, model), lm.analyze_ids(IDS, attribution=METHODS, targets=TARGETS)


@pytest.fixture(scope="module", params=FAMILIES)
def case(request):
    return analysed(request.param)


def normalised(m: torch.Tensor) -> torch.Tensor:
    totals = m.sum(-1, keepdim=True)
    return m / torch.where(totals > 0, totals, torch.ones_like(totals))


def check(out, method: str, per_layer: list[torch.Tensor], rolled: list[torch.Tensor], score: torch.Tensor,
          atol: float) -> None:
    rows, n = [t - 1 for t in TARGETS], TARGETS[-1]
    mixing = out.context_mixing(method)
    np.testing.assert_allclose(mixing.layers[:, :, :n], torch.stack([m[rows] for m in per_layer]).detach(), atol=atol, rtol=1e-3)
    np.testing.assert_allclose(mixing.rolled[:, :, :n], torch.stack([m[rows] for m in rolled]).detach(), atol=atol, rtol=1e-3)
    np.testing.assert_allclose(out.attributions(method)[:, :n], score[rows].detach(), atol=atol, rtol=1e-3)
    assert not out.attributions(method)[:, n:].any() and not mixing.layers[:, :, n:].any()
    for i, t in enumerate(TARGETS):  # nothing at or after the explained token
        assert not out.attributions(method)[i, t:].any()


def test_rollout_is_the_product_of_mean_attention_plus_identity(case):
    parts, out = case
    parts.model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = parts.model(torch.tensor([IDS[:7]]), output_attentions=True, use_cache=False).attentions
    parts.model.set_attn_implementation("sdpa")
    per_layer, rolled, r = [], [], torch.eye(7)
    for a in attentions:
        m = normalised(a[0].mean(0) + torch.eye(7))
        r = m @ r
        per_layer.append(m)
        rolled.append(r)
    check(out, "rollout", per_layer, rolled, rolled[-1], 1e-5)
    np.testing.assert_allclose(out.attributions("rollout", "sum").sum(-1), 1.0, rtol=1e-5)


def test_value_zeroing_is_one_minus_cosine_of_the_zeroed_block_output(case):
    parts, out = case
    ids = torch.tensor([IDS[:7]])
    store = {}

    def keep(layer):
        def hook(module, args, output):
            store[layer] = (output[0] if isinstance(output, tuple) else output)[0].detach().float()
        return hook

    with torch.no_grad():
        handles = [b.register_forward_hook(keep(i)) for i, b in enumerate(parts.blocks)]
        parts.model(ids, use_cache=False)
        clean = dict(store)
        per_layer, rolled, r = [], [], torch.eye(7)
        for layer in range(len(parts.blocks)):
            s = torch.zeros(7, 7)
            for token in range(7):
                zero = parts.value_module(layer).register_forward_hook(
                    lambda m, a, o, _t=token: parts.zero_value(o, _t))
                parts.model(ids, use_cache=False)  # the whole model; block `layer`'s input is untouched
                zero.remove()
                s[:, token] = 1 - torch.nn.functional.cosine_similarity(store[layer], clean[layer], dim=-1)
            s = normalised(torch.tril(s))
            r = s @ r
            per_layer.append(s)
            rolled.append(r)
        for h in handles:
            h.remove()
    check(out, "value_zeroing", per_layer, rolled, rolled[-1], 1e-4)


def test_alti_logit_from_per_head_vectors(case):
    parts, out = case
    ids = torch.tensor([IDS[:7]])
    n_layers, n = len(parts.blocks), 7
    rec: dict = {}
    hooks = []
    for layer in range(n_layers):
        hooks.append(parts.value_module(layer).register_forward_hook(
            lambda m, a, o, _l=layer: rec.__setitem__(("v", _l), parts.values(o.detach()))))
        hooks.append(parts.out_module(layer).register_forward_hook(
            lambda m, a, o, _l=layer: rec.__setitem__(("o", _l), o[0].detach().float())))
        hooks.append(parts.blocks[layer].register_forward_hook(
            lambda m, a, o, _l=layer: rec.__setitem__(("in", _l + 1), (o[0] if isinstance(o, tuple) else o)[0])))
    hooks.append(parts.blocks[0].register_forward_pre_hook(
        lambda m, a, k: rec.__setitem__(("in", 0), (a[0] if a else k["hidden_states"])[0]), with_kwargs=True))
    parts.model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = parts.model(ids, output_attentions=True, use_cache=False).attentions
    parts.model.set_attn_implementation("sdpa")
    for h in hooks:
        h.remove()
    unembedding = parts.model.get_output_embeddings().weight.float()
    final_in = rec[("in", n_layers)].float()
    per_layer, rolled, m_prev = [], [], torch.eye(n)
    for layer in range(n_layers):
        a, v, x = attentions[layer][0].float(), rec[("v", layer)], rec[("in", layer)].float()
        z = torch.zeros(n, n, parts.d)  # z[t, j]: source j's share of the attention output at row t
        for h in range(parts.n_heads):
            z += a[h][:, :, None] * (v[:, h] @ parts.head_out(layer, h))[None]
        bias = getattr(parts.out_module(layer), "bias", None)
        total = z.sum(1) + (bias.float() if bias is not None else 0)
        torch.testing.assert_close(total, rec[("o", layer)], atol=1e-5, rtol=1e-4)  # the split is complete
        dlogit = torch.zeros(n, n)
        for t in range(n):
            u = unembedding[IDS[t + 1]]
            dlogit[t] = parts.frozen_final(final_in[t], z[t]) @ u
        y = x + rec[("o", layer)]
        c = torch.zeros(n, n)
        for t in range(n):
            for j in range(t + 1):
                vec = z[t, j] + (x[t] if j == t else 0)
                c[t, j] = (y[t].abs().sum() - (vec - y[t]).abs().sum()).clamp(min=0)
        per_layer.append(dlogit)
        rolled.append(dlogit @ m_prev)
        m_prev = normalised(c) @ m_prev
    check(out, "alti_logit", per_layer, rolled, sum(rolled), 1e-4)


def test_saved_and_loaded_with_the_output(case, tmp_path):
    parts, out = case
    back = ew.load(out.save(tmp_path / "mixing"))
    for method in METHODS:
        np.testing.assert_array_equal(back.context_mixing(method).rolled, out.context_mixing(method).rolled)
        np.testing.assert_array_equal(back.attributions(method), out.attributions(method))
    layers, rolled = back.context_mixing("rollout").at(TARGETS[0])
    assert layers.shape == rolled.shape == (len(parts.blocks), len(IDS))


def test_kinds_and_families_without_internals_are_refused_before_any_forward():
    import transformers as tf

    config = tf.BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                           vocab_size=50, num_labels=2)
    model = tf.BertForSequenceClassification(config).eval()
    ran = []
    model.register_forward_pre_hook(lambda *a: ran.append(1))
    with pytest.raises(ew.InputError, match="'rollout'.*context-mixing method.*causal language model.*ig"):
        ew.classifier(model).analyze_ids([1, 2, 3], attribution=["rollout"])
    lm = ew.from_pretrained(zoo.build("gptj"), tokenizer=ToyTokenizer(WORDS))
    lm.model.register_forward_pre_hook(lambda *a: ran.append(1))
    with pytest.raises(ew.UnsupportedModelError, match="'gptj' family.*Handled families: gemma, gpt2"):
        lm.analyze_ids(IDS, attribution=["value_zeroing"])
    assert not ran


def test_alti_logit_in_chunks_of_query_rows_is_the_same(case, monkeypatch):
    from ecco_widgets.analysis.components.mixing import alti

    parts, out = case
    monkeypatch.setattr(alti, "CHUNK_BYTES", 4 * 7 * parts.d * 2)  # 2 query rows per chunk
    lm = ew.from_pretrained(parts.model, tokenizer=ToyTokenizer(WORDS))
    chunked = lm.analyze_ids(IDS, attribution=["alti_logit"], targets=TARGETS)
    np.testing.assert_allclose(chunked.context_mixing("alti_logit").rolled, out.context_mixing("alti_logit").rolled,
                               atol=1e-6, rtol=1e-5)
