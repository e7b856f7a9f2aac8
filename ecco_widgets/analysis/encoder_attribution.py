"""Input saliency for bidirectional encoders (masked LMs, sequence classifiers): every token explains every target.

The causal-LM attribution (:mod:`ecco_widgets.analysis.attribution`) explains a token from its prefix only. An
encoder reads the whole sequence, so here row i of every result may be non-zero at *every* position, before and
after the explained one (and at the explained position itself, e.g. the [MASK] embedding of a masked LM).

What is attributed: the token embeddings, i.e. the output of the model's input embedding module, fed back to the
model as ``inputs_embeds`` (position and token-type embeddings, LayerNorm and the rest of the embedding block are
left to the model, untouched), against a zero baseline. What is explained: any scalar per target read from the
model output by ``target_fn(output) -> (batch, n_targets)`` (a masked LM: the probability of the true token at a
masked position; a classifier: the probability of a label).

Methods (``METHODS``), each giving float32 (n_targets, n_tokens, d_model) as in the causal-LM module:

* ``"ig"``: integrated gradients, Gauss-Legendre with ``n_steps`` points (as captum's ``IntegratedGradients``); the
  path points run as batches through one forward each, and the per-target gradients of a batch as one batched
  vector-Jacobian product. ``deltas["ig"]``: sum of attributions - (f(x) - f(0)) per target.
* ``"grad_x_input"`` (captum's ``InputXGradient``), ``"saliency"`` (|gradient|, captum's ``Saliency``).
* ``"occlusion"``: drop f(x) - f(x with token j's embedding set to 0), spread as drop / d_model per dimension.

Aggregation over the embedding dimensions is the causal module's :func:`aggregate_attributions`.

>>> from transformers import BertConfig, BertForSequenceClassification
>>> _ = torch.manual_seed(0)
>>> model = BertForSequenceClassification(BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
...                                                  intermediate_size=32, vocab_size=50)).eval()
>>> res = compute_encoder_attributions(model, model.get_input_embeddings(), torch.tensor([[1, 5, 7, 2]]),
...                                    lambda out: out.logits.softmax(-1)[:, :1], ["ig", "grad_x_input"],
...                                    n_steps=8, progress=False)
>>> res.raw["ig"].shape, res.deltas["ig"].shape
((1, 4, 16), (1,))
>>> bool((aggregate_attributions(res.raw["ig"], "l2")[0] > 0).all())   # every position, before and after
True
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .attribution import (_GRAPH_FLOATS_PER_DIM, _RAW_MEANING, BACKWARD_BUDGET_BYTES, FORWARD_BUDGET_BYTES, IG_METHOD,
                          METHODS, AttributionResult, _frozen, aggregate_attributions, check_completeness,
                          check_methods, check_n_steps, run_methods)

__all__ = ["METHODS", "TARGETS", "compute_encoder_attributions", "aggregate_attributions", "scalar_of_logits"]

TARGETS = ("prob", "logit", "logprob")

TargetFn = Callable[[Any], torch.Tensor]
ForwardFn = Callable[[torch.Tensor], Any]


def scalar_of_logits(logits: torch.Tensor, ids: torch.Tensor, target: str = "prob",
                     multi_label: bool = False) -> torch.Tensor:
    """f from logits (b, T, V) and the explained ids (T,): "prob" (softmax, or sigmoid when ``multi_label``),
    "logit", or "logprob" (log-softmax / log-sigmoid) -> float32 (b, T)."""
    logits = logits.float()
    if target == "logit":
        values = logits
    elif target == "prob":
        values = logits.sigmoid() if multi_label else logits.softmax(-1)
    else:
        values = nn.functional.logsigmoid(logits) if multi_label else logits.log_softmax(-1)
    index = ids.to(values.device)[None, :, None].expand(values.shape[0], -1, 1)
    return values.gather(-1, index)[..., 0]


class _EncoderJob:
    """One call: the token embeddings (1, n, d), the forward over embeddings and the explained values."""

    def __init__(self, forward: ForwardFn, target_fn: TargetFn, embeddings: torch.Tensor, n_layers: int, bar):
        self.forward = forward
        self.target_fn = target_fn
        self.embeddings = embeddings
        self.bar = bar
        self.n_tokens = int(embeddings.shape[1])
        self.length = self.n_tokens
        self.d_model = int(embeddings.shape[-1])
        itemsize = embeddings.element_size()
        per_sequence = max(1, n_layers) * _GRAPH_FLOATS_PER_DIM * self.d_model * itemsize * self.n_tokens
        self.sequences_per_forward = max(1, FORWARD_BUDGET_BYTES // per_sequence)
        self.backward_sequences = max(1, BACKWARD_BUDGET_BYTES // (_GRAPH_FLOATS_PER_DIM * self.d_model * itemsize
                                                                   * self.n_tokens))
        self._gradient: torch.Tensor | None = None
        self._batched_ok = True

    def f(self, x: torch.Tensor) -> torch.Tensor:
        values = self.target_fn(self.forward(x))
        if not isinstance(values, torch.Tensor) or values.dim() != 2 or values.shape[0] != x.shape[0]:
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise InputError(f"target_fn must return a tensor of shape (batch={x.shape[0]}, n_targets); got {shape}.")
        return values.float()

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """f for each sequence of embeddings x (b, n, d): float32 (b, T), no graph."""
        with torch.inference_mode():
            out = [self.f(x[s:s + self.sequences_per_forward]) for s in range(0, x.shape[0], self.sequences_per_forward)]
        return torch.cat(out)

    def _target_grads(self, values: torch.Tensor, x: torch.Tensor, idx: list[int], last: bool) -> torch.Tensor:
        """Gradients of values[:, t].sum() w.r.t. x for t in idx: (len(idx), b, n, d)."""
        if len(idx) == 1:
            (g,) = torch.autograd.grad(values[:, idx[0]].sum(), x, retain_graph=not last)
            return g[None]
        if self._batched_ok:
            seeds = torch.zeros(len(idx), *values.shape, dtype=values.dtype, device=values.device)
            seeds[torch.arange(len(idx)), :, idx] = 1.0
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # vmap fallbacks: slower, still correct
                    (g,) = torch.autograd.grad(values, x, seeds, retain_graph=not last, is_grads_batched=True)
                return g
            except RuntimeError:  # an op without a batching rule: one backward per target instead
                self._batched_ok = False
        grads = [torch.autograd.grad(values[:, t].sum(), x, retain_graph=True)[0] for t in idx]
        return torch.stack(grads)

    def path_gradients(self, alphas: list[float], weights: list[float]) -> torch.Tensor:
        """sum_k weights[k] * grad f_t(alphas[k] * x) per target: float32 (T, n, d)."""
        emb = self.embeddings
        total: torch.Tensor | None = None
        per_batch = max(1, min(len(alphas), self.sequences_per_forward))
        for start in range(0, len(alphas), per_batch):
            alpha = torch.tensor(alphas[start:start + per_batch], dtype=emb.dtype, device=emb.device)
            weight = torch.tensor(weights[start:start + per_batch], dtype=torch.float32, device=emb.device)
            b = len(alpha)
            with torch.enable_grad():
                x = (alpha[:, None, None] * emb).requires_grad_(True)
                values = self.f(x)  # (b, T)
                n_targets = values.shape[1]
                if total is None:
                    total = torch.zeros(n_targets, self.n_tokens, self.d_model, dtype=torch.float32,
                                        device=emb.device)
                chunk = max(1, min(n_targets, self.backward_sequences // b))
                for t0 in range(0, n_targets, chunk):
                    idx = list(range(t0, min(n_targets, t0 + chunk)))
                    last = t0 + len(idx) >= n_targets
                    grads = self._target_grads(values, x, idx, last)  # (len(idx), b, n, d)
                    total[idx] += torch.einsum("k,tknd->tnd", weight, grads.float())
            self.bar.update(1)
        assert total is not None
        return total

    def gradient(self) -> torch.Tensor:
        if self._gradient is None:
            self._gradient = self.path_gradients([1.0], [1.0])
        return self._gradient

    def mask_occlusion(self, drops: torch.Tensor) -> None:
        """Bidirectional: every token may matter to every target, so no drop is masked."""

    def to_numpy(self, values: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(values.detach().float().cpu().numpy(), dtype=np.float32)


def _count_layers(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    for key in ("num_hidden_layers", "n_layers", "n_layer", "num_layers"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 12


def _default_forward(model: nn.Module, forward_kwargs: dict[str, Any] | None) -> ForwardFn:
    kwargs = dict(forward_kwargs or {})

    def forward(x: torch.Tensor):
        batch = {k: (v.expand(x.shape[0], *v.shape[1:]) if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == 1
                     else v) for k, v in kwargs.items()}
        return model(inputs_embeds=x, **batch)

    return forward


def compute_encoder_attributions(
    model: nn.Module,
    embedding: nn.Module,
    input_ids: torch.Tensor,
    target_fn: TargetFn,
    methods,
    *,
    forward: ForwardFn | None = None,
    forward_kwargs: dict[str, Any] | None = None,
    n_steps: int | None = None,
    progress: bool | None = None,
    settings: dict[str, Any] | None = None,
) -> AttributionResult:
    """Attribute every target value to the token embeddings of every position, by each of ``methods``.

    model: the encoder (put in eval mode, parameters frozen for the call, then restored). embedding: its input
    embedding module (``model.get_input_embeddings()``); ``embedding(input_ids)`` are the attributed inputs.
    input_ids: int (1, n_tokens). target_fn: model output -> float (batch, n_targets), f per target.
    forward: embeddings (b, n, d) -> model output (default ``model(inputs_embeds=x, **forward_kwargs)``; tensors
    in forward_kwargs with a leading 1 are expanded to the batch). n_steps: integration points for "ig" (default
    DEFAULT_N_STEPS). Returns an AttributionResult with raw (n_targets, n_tokens, d_model) per method.
    """
    from tqdm import tqdm

    methods = check_methods(methods)
    n_steps = check_n_steps(n_steps)
    input_ids = torch.as_tensor(input_ids)
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if input_ids.dim() != 2 or input_ids.shape[0] != 1 or input_ids.shape[1] == 0:
        raise InputError(f"input_ids must be one non-empty sequence (1, n_tokens); got shape {tuple(input_ids.shape)}.")
    forward = forward or _default_forward(model, forward_kwargs)
    with tqdm(total=None, desc="attribution", unit="pass", file=sys.stderr, disable=progress is False,
              delay=0 if progress else 3.0, leave=False) as bar, _frozen(model):
        with torch.inference_mode():
            embeddings = embedding(input_ids)
        job = _EncoderJob(forward, target_fn, embeddings.clone(), _count_layers(model), bar)
        raw, deltas = run_methods(job, methods, n_steps)
    described: dict[str, Any] = {
        "methods": list(methods),
        "baseline": "zero",
        "attributed": f"token embeddings ({type(embedding).__name__} output)",
        "causal": False,
        "raw": {m: _RAW_MEANING[m] for m in methods},
    }
    if "ig" in methods:
        described["n_steps"] = n_steps
        described["ig_method"] = IG_METHOD
        described.update(check_completeness(deltas["ig"], job.ig_change))
    described.update(settings or {})
    return AttributionResult(raw=raw, deltas=deltas, settings=described)
