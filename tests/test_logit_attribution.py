"""Direct logit attribution (issue 28) on every family of the zoo, in float32 and bfloat16.

Every numeric check has a reference written here: the model's own pre-cap logit (a hook on the unembedding), the
residual stream after each block (hooks on the blocks) read through a final norm frozen by this file's own formula,
and the direct effect of a head, of a neuron or of a whole MLP measured by a patched forward: its slice of the
projection's input zeroed, every other sublayer's output clamped to the clean run's (so only the direct path
changes), the final norm (and Gemma-2's post-attention norm) at the clean run's scale. Frozen, the path is linear, so
the patched difference is the attribution exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.errors import InputError, NotAvailableError
from test_foundation import WORDS, ToyTokenizer

IDS = [5, 17, 33, 2, 99, 140, 7, 61, 250, 12]
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 1e-2}


class Run:
    """A zoo model analysed with components=True, and the test's own records of a clean forward."""

    def __init__(self, family: str, dtype: torch.dtype = torch.float32, softcap: float | None = None):
        model = (build_mixtral() if family == "mixtral" else zoo.build(family)).to(dtype)
        if softcap is not None:
            model.config.final_logit_softcapping = softcap
        self.family, self.dtype, self.model = family, dtype, model
        self.lm = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS))
        self.out = self.lm.analyze_ids(IDS, components=True)
        spec = self.lm.spec
        self.final_norm = spec.final_norms[0]
        self.ids = torch.tensor([IDS])
        records: dict = {}
        hooks = [spec.unembedding.register_forward_hook(lambda m, a, o: records.__setitem__("precap", o[0].float())),
                 self.final_norm.register_forward_pre_hook(lambda m, a: records.__setitem__("final_in", a[0][0]))]
        hooks += [b.register_forward_hook(self._keep(records, f"block.{i}")) for i, b in enumerate(spec.blocks)]
        with torch.no_grad():
            self.logits = model(input_ids=self.ids, use_cache=False).logits[0].float()
        for h in hooks:
            h.remove()
        self.records = records

    @staticmethod
    def _keep(records: dict, key: str):
        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) else output
            records[key] = out.reshape(-1, out.shape[-1])[-len(IDS):].detach()
        return hook


def build_mixtral() -> torch.nn.Module:
    """A random 3-layer Mixtral (4 experts, 2 per token), random norm weights as in the zoo."""
    import transformers as tf

    config = tf.MixtralConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                              num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, vocab_size=zoo.VOCAB,
                              max_position_embeddings=128)
    torch.manual_seed(0)
    model = tf.MixtralForCausalLM(config)
    with torch.no_grad():
        for module in model.modules():
            if "norm" in type(module).__name__.lower():
                module.weight.uniform_(0.5, 1.5)
    return model.eval()


def mlp_of(run: "Run", layer: int) -> torch.nn.Module:
    """The module whose output is what block ``layer``'s MLP adds: its down projection, or Mixtral's expert bank."""
    down = run.lm.spec.down_proj(layer)
    return down if down is not None else run.lm.spec.blocks[layer].mlp.experts


def frozen_forward(norm: torch.nn.Module, clean_input: torch.Tensor):
    """A forward for ``norm`` with each position's scale fixed at the clean input's (n, d), written from the norm
    formulas (LayerNorm, RMSNorm, Gemma's 1 + weight) and checked against the module on the clean input."""
    name = type(norm).__name__
    centre = isinstance(norm, torch.nn.LayerNorm)
    eps = norm.eps if centre or not hasattr(norm, "variance_epsilon") else norm.variance_epsilon
    x0 = clean_input.reshape(-1, clean_input.shape[-1]).float()
    x0c = x0 - x0.mean(-1, keepdim=True) if centre else x0
    scale = 1.0 / torch.sqrt(x0c.pow(2).mean(-1, keepdim=True) + eps)
    weight = norm.weight.detach().float() + (1.0 if name.startswith("Gemma") else 0.0)
    bias = getattr(norm, "bias", None)

    def forward(x):
        shape, flat = x.shape, x.reshape(-1, x.shape[-1]).float()
        flat = flat - flat.mean(-1, keepdim=True) if centre else flat
        y = flat * scale * weight + (0.0 if bias is None else bias.detach().float())
        return y.to(x.dtype).reshape(shape)

    with torch.no_grad():
        expected = norm(clean_input).float().reshape(x0.shape)
    tol = 1e-5 if clean_input.dtype == torch.float32 else 2e-2
    assert torch.allclose(forward(clean_input).float().reshape(x0.shape), expected, rtol=tol, atol=tol), name
    return forward


def direct_effect(run: Run, kind: str, layer: int, columns: slice, position: int, target: int,
                  expert: int | None = None) -> float:
    """logit(clean) - logit(patched) at ``position``: ``columns`` of the input of block ``layer``'s attention output
    projection (kind "attn") or MLP down projection ("mlp") zeroed (or, with ``expert``, that expert's router weight
    at every position), every other sublayer clamped to its clean output, final norm and the patched sublayer's
    post-norm frozen at the clean scales."""
    spec = run.lm.spec
    outs = [spec.attention_out(i) for i in range(spec.n_layers)] + [mlp_of(run, i) for i in range(spec.n_layers)]
    patched = spec.attention_out(layer) if kind == "attn" else mlp_of(run, layer)
    clean_outputs: dict = {}
    hooks = [m.register_forward_hook(lambda m, a, o, i=i: clean_outputs.__setitem__(i, o.detach().clone()))
             for i, m in enumerate(outs)]
    post = spec.attention_branch(layer) if kind == "attn" else (spec.mlp_branch(layer) or patched)
    post_in: dict = {}
    if post is not patched:
        hooks.append(post.register_forward_pre_hook(lambda m, a: post_in.__setitem__("x", a[0].detach().clone())))
    with torch.no_grad():
        run.model(input_ids=run.ids, use_cache=False)
    for h in hooks:
        h.remove()

    def zero(module, args):
        if expert is not None:  # Mixtral's bank: (hidden, top_k_index, top_k_weights)
            return (args[0], args[1], torch.where(args[1] == expert, 0.0, args[2]).to(args[2].dtype))
        x = args[0].clone()
        x[..., columns] = 0
        return (x, *args[1:])

    logits: dict = {}
    hooks = [patched.register_forward_pre_hook(zero),
             spec.unembedding.register_forward_hook(lambda m, a, o: logits.__setitem__("precap", o[0].float()))]
    hooks += [m.register_forward_hook(lambda m, a, o, i=i: clean_outputs[i]) for i, m in enumerate(outs)
              if m is not patched]
    frozen = [(run.final_norm, frozen_forward(run.final_norm, run.records["final_in"][None]))]
    if post is not patched:
        frozen.append((post, frozen_forward(post, post_in["x"])))
    try:
        for module, forward in frozen:
            module.forward = forward
        with torch.no_grad():
            run.model(input_ids=run.ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
        for module, _ in frozen:
            del module.forward
    return float(run.records["precap"][position, target] - logits["precap"][position, target])


FAMILIES = [*zoo.FAMILIES, "mixtral"]


@pytest.fixture(scope="module", params=[(f, d) for d in (torch.float32, torch.bfloat16) for f in FAMILIES],
                ids=lambda p: f"{p[0]}-{str(p[1]).replace('torch.', '')}")
def run(request):
    return Run(*request.param)


@pytest.fixture(scope="module")
def runs32():
    return {}


def float32_run(runs32: dict, family: str) -> Run:
    if family not in runs32:
        runs32[family] = Run(family)
    return runs32[family]


def relative(value: float, reference: float) -> float:
    return abs(value - reference) / abs(reference)


def test_components_sum_to_the_models_own_logit(run):
    """Every unit, with and without a foil, at the last and a middle position: components + bias terms = the model's
    pre-cap logit (difference), 1e-4 relative in float32, 1e-2 in bfloat16."""
    tol = TOLERANCE[run.dtype]
    for position in (-1, 4):
        precap = run.records["precap"][position]
        foil = int(precap.argmin())
        for unit in ("layer", "head", "neuron"):
            r = run.out.logit_attribution(position=position, unit=unit)
            target = r.target_id  # the top prediction (bfloat16's rounded logits may tie: then one of the tied)
            assert float(precap[target]) >= float(precap.max()) - tol * abs(float(precap.max())) and r.unit == unit
            assert relative(r.total, float(precap[target])) < tol, (unit, position, r.total, float(precap[target]))
            d = run.out.logit_attribution(position=position, target=target, foil=foil, unit=unit)
            assert relative(d.total, float(precap[target] - precap[foil])) < tol
            assert relative(d.logit, float(precap[target] - precap[foil])) < tol


def test_the_by_layer_curve_reads_the_residual_stream(run):
    """accumulated[l + 1] is block l's output read through the final norm frozen at the model's scale (this file's
    formula) and the unembedding; its last value is the model's own logit."""
    tol = TOLERANCE[run.dtype]
    r = run.out.logit_attribution(position=-1)
    spec = run.lm.spec
    forward = frozen_forward(run.final_norm, run.records["final_in"][None])
    weight = spec.unembedding.weight.detach().float()
    for layer in range(spec.n_layers):
        hidden = run.records[f"block.{layer}"][None]
        for module in spec.final_norms:
            hidden = forward(hidden) if module is run.final_norm else module(hidden)
        expected = float(hidden[0, -1].detach().float() @ weight[r.target_id])
        scale = max(abs(expected), float(np.abs(r.values).sum()) * 0.1)
        assert abs(r.accumulated[layer + 1] - expected) / scale < tol, (layer, r.accumulated, expected)
    assert relative(float(r.accumulated[-1]), float(run.records["precap"][-1, r.target_id])) < tol
    assert np.allclose(r.by_layer, np.diff(r.accumulated), atol=1e-5 * np.abs(r.values).sum())


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2", "gpt_neox", "bloom", "opt", "mixtral"])
def test_each_head_equals_zeroing_it(runs32, family):
    """Per head: DLA == logit(clean) - logit(head's slice of the o_proj input zeroed), direct path only, norms
    frozen (Gemma-2: its post-attention norm too)."""
    run = float32_run(runs32, family)
    r = run.out.logit_attribution(position=-1, unit="head")
    hd, n_heads = run.lm.spec.head_dim, r.indices[np.array(r.kinds) == "head"].max() + 1
    for layer in range(run.lm.spec.n_layers):
        for head in range(n_heads):
            value = float(r.values[r.labels.index(f"{layer}.h{head}")])
            effect = direct_effect(run, "attn", layer, slice(head * hd, (head + 1) * hd), -1, r.target_id)
            assert abs(value - effect) < 1e-4 * max(1.0, abs(effect)), (layer, head, value, effect)


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2"])
def test_neurons_sum_to_their_mlp_and_match_zeroing(runs32, family):
    """Per layer the neurons sum to the MLP's share; that share (without the bias) and one neuron equal zeroing the
    whole down-projection input, or that one column, in a patched forward."""
    run = float32_run(runs32, family)
    layers = run.out.logit_attribution(position=-1, unit="layer")
    neurons = run.out.logit_attribution(position=-1, unit="neuron")
    kinds = np.array(neurons.kinds)
    for layer in range(run.lm.spec.n_layers):
        mine = neurons.values[(kinds == "neuron") & (neurons.layers == layer)]
        whole = float(layers.values[layers.labels.index(f"{layer}.mlp")])
        assert abs(mine.sum(dtype=np.float64) - whole) < 1e-5 * max(1.0, abs(whole))
        assert abs(whole - direct_effect(run, "mlp", layer, slice(None), -1, layers.target_id)) < 1e-4
        strongest = int(np.abs(mine).argmax())
        effect = direct_effect(run, "mlp", layer, slice(strongest, strongest + 1), -1, layers.target_id)
        assert abs(mine[strongest] - effect) < 1e-5


def test_soft_capping_attributes_the_pre_cap_logit():
    """Gemma-2 with a strong cap: the attributed logit is the unembedding's output, the model's logit is its cap."""
    run = Run("gemma2", softcap=0.5)
    r = run.out.logit_attribution(position=-1)
    pre = float(run.records["precap"][-1, r.target_id])
    capped = float(run.logits[-1, r.target_id])
    assert r.softcap == 0.5 and "pre-cap" in r.note
    assert relative(r.total, pre) < 1e-4 and relative(r.logit, pre) < 1e-4
    assert abs(np.tanh(r.logit / 0.5) * 0.5 - capped) < 1e-5 and abs(pre - capped) > 0.1


def test_no_forward_runs_and_the_result_round_trips(runs32, tmp_path):
    run = float32_run(runs32, "llama")
    calls = []
    handle = run.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        r = run.out.logit_attribution(position=3, target="w7", foil=9, unit="head")
    finally:
        handle.remove()
    assert not calls and r.target == "w7" and r.foil_id == 9 and r.dtype == "float32"
    back = ew.load(r.save(tmp_path / "dla.npz"))
    assert type(back).__name__ == "LogitAttribution" and back.labels == r.labels
    assert np.array_equal(back.values, r.values) and back.logit == r.logit and back.total == r.total
    assert back.top(2) == r.top(2) and np.array_equal(back.accumulated, r.accumulated)


def test_bad_inputs_say_what_to_do(runs32, tmp_path):
    run = float32_run(runs32, "gpt2")
    out = run.out
    with pytest.raises(InputError, match="position"):
        out.logit_attribution(position=len(IDS))
    with pytest.raises(InputError, match="not one token"):
        out.logit_attribution(target="w1 w2")
    with pytest.raises(InputError, match="outside the vocabulary"):
        out.logit_attribution(target=10 ** 6)
    with pytest.raises(InputError, match="unit"):
        out.logit_attribution(unit="block")
    with pytest.raises(InputError, match="foil"):
        out.logit_attribution(target=3, foil=3)
    with pytest.raises(InputError, match="one token"):
        out.logit_attribution(target=2.5)
    with pytest.raises(NotAvailableError, match="components=True"):
        run.lm.analyze_ids(IDS).logit_attribution()
    with pytest.raises(NotAvailableError, match="components=True"):
        ew.load(out.save(tmp_path / "out.npz")).logit_attribution()


def test_a_post_norm_model_is_refused_before_the_forward():
    model = zoo.build("opt")
    model.config.do_layer_norm_before = False
    lm = ew.from_pretrained(model)
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    with pytest.raises(NotAvailableError, match="post-norm"):
        lm.analyze_ids(IDS, components=True)
    assert not calls


def test_a_stream_that_is_not_the_sum_is_refused():
    """An extra term in the residual stream (a hook adding to block 1's output) breaks the sum: refused, not wrong."""
    model = zoo.build("llama")
    model.model.layers[1].register_forward_hook(lambda m, a, o: o + 1.0 if torch.is_tensor(o) else (o[0] + 1.0, *o[1:]))
    out = ew.from_pretrained(model).analyze_ids(IDS, components=True)
    with pytest.raises(NotAvailableError, match="not the sum"):
        out.logit_attribution()


def test_mixture_of_experts_weighted_by_the_router(runs32):
    """Mixtral: the MLP share is the chosen experts' neurons weighted by the router; one expert's neurons sum to the
    logit change when its router weight is zeroed (direct path, norms frozen), the whole bank to zeroing its input."""
    run = float32_run(runs32, "mixtral")
    layers = run.out.logit_attribution(position=-1, unit="layer")
    neurons = run.out.logit_attribution(position=-1, unit="neuron")
    kinds = np.array(neurons.kinds)
    checked = 0
    for layer in range(run.lm.spec.n_layers):
        mine = (kinds == "neuron") & (neurons.layers == layer)
        whole = float(layers.values[layers.labels.index(f"{layer}.mlp")])
        assert abs(neurons.values[mine].sum(dtype=np.float64) - whole) < 1e-5 * max(1.0, abs(whole))
        assert abs(whole - direct_effect(run, "mlp", layer, slice(None), -1, layers.target_id)) < 1e-4
        chosen = sorted({label.split(".")[1] for label, m in zip(neurons.labels, mine) if m})
        assert len(chosen) == 2  # num_experts_per_tok
        for name in chosen:
            share = sum(float(v) for v, label in zip(neurons.values, neurons.labels)
                        if label.startswith(f"{layer}.{name}."))
            effect = direct_effect(run, "mlp", layer, slice(None), -1, layers.target_id, expert=int(name[1:]))
            assert abs(share - effect) < 1e-5 * max(1.0, abs(effect)), (layer, name, share, effect)
            checked += 1
    assert checked == 2 * run.lm.spec.n_layers
