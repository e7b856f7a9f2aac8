"""Input saliency: how much each earlier token's embedding contributed to the model producing each explained token.

Row i of every result explains the token at ``positions[i]`` from its prefix only: entries at positions
``>= positions[i]`` are exactly 0. Attributions are taken on the token embeddings (the output of the model's input
embedding module, fed back as ``inputs_embeds``; positional embeddings and rotary phases are left alone) against a
zero baseline, for a scalar function of the explained token:

* ``target="prob"`` (default, as Ecco): softmax probability of the token, read at the position before it;
  ``"logit"``: its logit (after any soft cap); ``"logprob"``: its log-probability.
* with ``foil_ids[i] >= 0`` the function is f(token) - f(foil) (contrastive, as inseq's ``contrast_prob_diff``).

Methods (``METHODS``) and what ``raw[method]`` (float32, (n_targets, n_tokens, d_model)) holds:

* ``"ig"``: integrated gradients, (x - 0) * mean over the path of the gradient (Gauss-Legendre, ``n_steps``
  points, as captum's ``IntegratedGradients`` and Ecco). Rows sum to f(x) - f(0) up to ``deltas["ig"]``. Measured
  (benchmarks/bench_attribution.py): exact to < 0.01% at 16+ steps on GPT-2-like models; on RMSNorm models with
  a zero baseline (SmolLM2) f(alpha * x) is erratic for alpha < ~0.01 and no step count up to 100 keeps every
  target under 1% (median ~2% at 50): read ``deltas["ig"]`` (Output.convergence_delta) before trusting a row.
  A ``CompletenessWarning`` is issued when a row misses by more than ``COMPLETENESS_TOLERANCE`` (1%) of
  f(x) - f(0); ``settings["ig_change"]`` keeps f(x) - f(0) per row for ``convergence_delta(relative=True)``.
* ``"grad_x_input"``: gradient * input, as captum's ``InputXGradient``.
* ``"saliency"``: |gradient| per embedding dimension, as captum's ``Saliency`` (so aggregate "l2" is the gradient
  norm and "sum" its L1 norm).
* ``"occlusion"``: drop f(x) - f(x with that token's embedding set to the baseline), spread evenly as drop / d_model
  over the dimensions, so that aggregate "sum" gives the drop itself. (captum's ``Occlusion`` with a window of one
  token puts the whole drop on every dimension: d_model times ours.)

How it is fast, with the numbers of the per-token loop (Ecco ran one captum call per explained token over its
prefix, computing the full-vocabulary head at every position): by causality the value at position p-1 does not
depend on tokens at >= p, so one forward over the whole sequence serves every target, and scaling the whole sequence
for integrated gradients gives each target the same path as scaling only its prefix. The forward stops at the last
block; only the rows at the explained positions go through the final norm and the unembedding; and the per-target
backward passes run as one batched vector-Jacobian product (``is_grads_batched``). Model parameters are frozen
during the call, so the graph keeps only what the input gradient needs. Batches are bounded in memory.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> _ = torch.manual_seed(0)
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)).eval()
>>> res = compute_attributions(discover_spec(model), torch.tensor([[1, 2, 3, 4]]), np.array([2, 3]),
...                            ["grad_x_input", "ig"], n_steps=8, progress=False)
>>> res.raw["ig"].shape, res.deltas["ig"].shape
((2, 4, 16), (2,))
>>> aggregate_attributions(res.raw["ig"], "l2_normalized")[0, 2:].tolist()   # the target and after: 0
[0.0, 0.0]
"""

from __future__ import annotations

import math
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..adapter import ResolvedSpec, block_output
from ..errors import COMPLETENESS_TOLERANCE, CompletenessWarning, InputError, UnsupportedModelError

TARGETS = ("prob", "logit", "logprob")
AGGREGATES = ("sum", "l2", "l2_normalized")
DEFAULT_N_STEPS = 50
IG_METHOD = "gausslegendre"
# Memory bounds of one batch. The autograd graph keeps about _GRAPH_FLOATS_PER_DIM * d_model floats per token and
# layer (measured on GPT-2 and Llama blocks, parameters frozen); the batched backward of several targets (its
# transient gradients live one layer at a time) and the vocabulary rows decoded at once are bounded separately.
# Time hardly depends on these (measured: CPU time within 10% from 8 MiB to 192 MiB), memory does.
FORWARD_BUDGET_BYTES = 128 * 2**20
BACKWARD_BUDGET_BYTES = 128 * 2**20
DECODE_BUDGET_BYTES = 64 * 2**20
_GRAPH_FLOATS_PER_DIM = 40
_LEAK_TOLERANCE = 1e-5
# Integrated gradients warns when a row misses completeness by more than COMPLETENESS_TOLERANCE of f(input) -
# f(baseline) plus this absolute floor, so that targets whose f hardly changes do not warn on round-off.
_COMPLETENESS_FLOOR = 1e-6


@dataclass
class AttributionResult:
    """raw: {method: float32 (n_targets, n_tokens, d_model)}; deltas: {method: float32 (n_targets,)} (IG only):
    sum of attributions - (f(input) - f(baseline)); settings: JSON-serialisable description of what was computed."""

    raw: dict[str, np.ndarray]
    deltas: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class _StopForward(Exception):
    """Raised by the hook on the last block: nothing after it (final norm, full-vocabulary head) is needed."""


class _Job:
    """One attribution call: the embeddings, the explained positions and the scalar function f at each of them."""

    def __init__(self, spec: ResolvedSpec, input_ids: torch.Tensor, positions: np.ndarray, target: str,
                 foil_ids: np.ndarray | None, bar):
        self.spec = spec
        self.model = spec.model
        self.bar = bar
        n_tokens = int(input_ids.shape[-1])
        self.n_tokens = n_tokens
        self.length = int(positions.max())  # tokens at >= max(positions) influence no explained value
        device = input_ids.device
        with torch.inference_mode():
            embeddings = spec.embedding(input_ids[:, : self.length])
        self.embeddings = embeddings.clone()  # (1, L, d), a normal tensor (inference tensors cannot be saved)
        self.d_model = int(self.embeddings.shape[-1])
        self.positions = torch.as_tensor(positions, dtype=torch.long, device=device)
        self.rows = self.positions - 1  # where each explained token is predicted
        self.token_ids = input_ids[0, self.positions].to(device)
        self.target = target
        foils = None if foil_ids is None else torch.as_tensor(foil_ids, dtype=torch.long, device=device)
        self.has_foil = foils is not None and bool((foils >= 0).any())
        self.foil_ids = foils.clamp(min=0) if self.has_foil else None
        self.foil_mask = (foils >= 0) if self.has_foil else None
        itemsize = self.embeddings.element_size()
        n_layers = max(1, spec.n_layers)
        self.forward_tokens = max(1, FORWARD_BUDGET_BYTES // (n_layers * _GRAPH_FLOATS_PER_DIM * self.d_model
                                                              * itemsize))
        self.backward_tokens = max(1, BACKWARD_BUDGET_BYTES // (_GRAPH_FLOATS_PER_DIM * self.d_model * itemsize))
        vocab = self._vocab_size()
        self.decode_rows = max(1, DECODE_BUDGET_BYTES // (3 * 4 * vocab))
        self._cache: dict[str, Any] = {}

    def _vocab_size(self) -> int:
        weight = getattr(self.spec.unembedding, "weight", None)
        return int(weight.shape[0]) if weight is not None else 1 << 16

    # ----- the model, cut after the last block -----
    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last block (before the final norm) for a batch of embeddings x (b, L, d)."""
        store: dict[str, torch.Tensor] = {}

        def hook(module, args, output):
            store["h"] = block_output(output)
            raise _StopForward

        handle = self.spec.blocks[-1].register_forward_hook(hook)
        try:
            self.model(inputs_embeds=x, use_cache=False)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if "h" not in store:
            raise UnsupportedModelError("The last block did not run during the forward pass; the ModelSpec may be "
                                        "wrong (pass ew.ModelSpec(blocks='path.to.layers')).")
        return store["h"]

    # ----- the explained function -----
    def f_of_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """f at the explained positions from the last block's output there: h (b, T, d) -> float32 (b, T)."""
        b, n_targets, _ = h.shape
        flat = h.reshape(b * n_targets, -1)
        target_ids = self.token_ids.repeat(b)
        foil_ids = self.foil_ids.repeat(b) if self.has_foil else None
        out = []
        for start in range(0, flat.shape[0], self.decode_rows):
            stop = start + self.decode_rows
            logits = self.spec.decode(flat[start:stop]).float()
            if self.target == "prob":
                values = logits.softmax(-1)
            elif self.target == "logprob":
                values = logits.log_softmax(-1)
            else:
                values = logits
            chosen = values.gather(1, target_ids[start:stop, None])[:, 0]
            if foil_ids is not None:
                mask = self.foil_mask.repeat(b)[start:stop]
                chosen = chosen - torch.where(mask, values.gather(1, foil_ids[start:stop, None])[:, 0], 0.0)
            out.append(chosen)
        return torch.cat(out).reshape(b, n_targets)

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """f at every explained position for each sequence of embeddings x (b, L, d): float32 (b, T), no graph."""
        with torch.inference_mode():  # no graph: only one layer's activations live at a time
            chunk = max(1, self.forward_tokens * self.spec.n_layers // self.length)
            out = []
            for start in range(0, x.shape[0], chunk):
                h = self.hidden(x[start:start + chunk])
                out.append(self.f_of_hidden(h[:, self.rows]))
            return torch.cat(out)

    # ----- gradients -----
    def path_gradients(self, alphas: list[float], weights: list[float]) -> torch.Tensor:
        """sum_k weights[k] * grad f_i (alphas[k] * x), per target: float32 (T, L, d); exactly 0 at >= positions[i].

        One forward per batch of path points over the whole sequence, then one batched vector-Jacobian product per
        chunk of targets.
        """
        n_targets, length = len(self.rows), self.length
        total = torch.zeros(n_targets, length, self.d_model, dtype=torch.float32, device=self.embeddings.device)
        steps_per_batch = max(1, min(len(alphas), self.forward_tokens // length))
        for start in range(0, len(alphas), steps_per_batch):
            alpha = torch.tensor(alphas[start:start + steps_per_batch], dtype=self.embeddings.dtype,
                                 device=self.embeddings.device)
            weight = torch.tensor(weights[start:start + steps_per_batch], dtype=torch.float32,
                                  device=self.embeddings.device)
            b = len(alpha)
            with torch.enable_grad():
                x = (alpha[:, None, None] * self.embeddings).requires_grad_(True)
                h = self.hidden(x)  # (b, L, d)
                h_rows = h[:, self.rows].detach().requires_grad_(True)
                (grad_rows,) = torch.autograd.grad(self.f_of_hidden(h_rows).sum(), h_rows)  # (b, T, d)
                targets_per_batch = max(1, min(n_targets, self.backward_tokens // (b * length)))
                for t0 in range(0, n_targets, targets_per_batch):
                    idx = torch.arange(t0, min(n_targets, t0 + targets_per_batch), device=total.device)
                    seeds = h.new_zeros(len(idx), *h.shape)  # hidden width may differ from the embedding width (OPT)
                    seeds[torch.arange(len(idx)), :, self.rows[idx]] = grad_rows[:, idx].transpose(0, 1).to(h.dtype)
                    last = start + b >= len(alphas) and t0 + len(idx) >= n_targets
                    if len(idx) == 1:
                        (grads,) = torch.autograd.grad(h, x, seeds[0], retain_graph=not last)
                        grads = grads[None]
                    else:
                        (grads,) = torch.autograd.grad(h, x, seeds, retain_graph=not last, is_grads_batched=True)
                    total[idx] += torch.einsum("k,tkld->tld", weight, grads.float())
                    self.bar.update(1)
        self._zero_future(total)
        return total

    def _zero_future(self, grads: torch.Tensor) -> None:
        """Check that f_i did not depend on tokens at >= positions[i] (causality), then make those entries exactly 0."""
        future = torch.arange(self.length, device=grads.device)[None, :] >= self.positions[:, None]
        if not future.any():
            return
        leak = float(grads[future].abs().max()) if future.any() else 0.0
        scale = float(grads.abs().max())
        if leak > _LEAK_TOLERANCE * max(scale, 1e-30) and leak > 0:
            raise UnsupportedModelError(
                f"The explained value at a position depends on later tokens (gradient {leak:.3g} vs {scale:.3g}): "
                "the model does not look causal, so attributions over a token's prefix cannot be computed this way."
            )
        grads[future] = 0.0

    def gradient(self) -> torch.Tensor:
        """Plain gradient of f_i at the input, per target (T, L, d); computed once per call."""
        if "gradient" not in self._cache:
            self._cache["gradient"] = self.path_gradients([1.0], [1.0])
        return self._cache["gradient"]

    def mask_occlusion(self, drops: torch.Tensor) -> None:
        """Zero the drops (T, length) of occluding tokens at or after each target: they cannot matter (causality)."""
        drops[torch.arange(self.length, device=drops.device)[None, :] >= self.positions[:, None]] = 0.0

    def to_numpy(self, values: torch.Tensor) -> np.ndarray:
        """(T, L, d) -> float32 numpy (T, n_tokens, d), zeros after the analysed length."""
        out = np.zeros((values.shape[0], self.n_tokens, self.d_model), dtype=np.float32)
        out[:, : self.length] = values.detach().float().cpu().numpy()
        return out


# ----- the methods -----
# Each method takes a job with: embeddings (1, length, d), d_model, length, bar, values(x), path_gradients(alphas,
# weights), gradient(), mask_occlusion(drops) and to_numpy(values). The causal _Job here and the bidirectional
# encoder job (encoder_attribution.py) both have them, so the methods serve both.
def _integrated_gradients(job: _Job, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters(IG_METHOD)
    path = job.path_gradients(list(alphas(n_steps)), list(step_sizes(n_steps)))
    attributions = path * job.embeddings[0].float()  # (x - baseline) * average gradient; baseline 0
    ends = job.values(torch.cat([job.embeddings, torch.zeros_like(job.embeddings)]))  # f(x), f(0): (2, T)
    job.bar.update(1)
    change = ends[0] - ends[1]
    job.ig_change = change.cpu().numpy()
    deltas = attributions.sum(dim=(1, 2)) - change
    return job.to_numpy(attributions), deltas.cpu().numpy().astype(np.float32)


def _grad_x_input(job: _Job, n_steps: int) -> tuple[np.ndarray, None]:
    return job.to_numpy(job.gradient() * job.embeddings[0].float()), None


def _saliency(job: _Job, n_steps: int) -> tuple[np.ndarray, None]:
    return job.to_numpy(job.gradient().abs()), None


def _occlusion(job: _Job, n_steps: int) -> tuple[np.ndarray, None]:
    length = job.length
    # Sequence 0 is the input; sequence j+1 has token j's embedding replaced by the baseline (0).
    occluded = job.embeddings.repeat(length + 1, 1, 1)
    occluded[torch.arange(1, length + 1), torch.arange(length)] = 0.0
    values = job.values(occluded)  # (length + 1, T)
    job.bar.update(1)
    drops = (values[:1] - values[1:]).T  # (T, length): drops[i, j] for occluding token j
    job.mask_occlusion(drops)
    spread = (drops / job.d_model)[:, :, None].expand(-1, -1, job.d_model)
    return job.to_numpy(spread), None


Method = Callable[[_Job, int], "tuple[np.ndarray, np.ndarray | None]"]
METHODS: dict[str, Method] = {
    "ig": _integrated_gradients,
    "grad_x_input": _grad_x_input,
    "saliency": _saliency,
    "occlusion": _occlusion,
}
_RAW_MEANING = {
    "ig": "integrated gradients on the token embeddings: (x - 0) * path-averaged gradient",
    "grad_x_input": "gradient * input (token embeddings)",
    "saliency": "|gradient| per embedding dimension",
    "occlusion": "drop f(x) - f(x with the token's embedding set to 0), spread as drop / d_model per dimension",
}


def _work_units(methods: list[str], n_targets: int, job: _Job, n_steps: int) -> int:
    """Number of progress-bar updates the methods will make."""
    units = 0
    gradient_batches = math.ceil(n_targets / max(1, min(n_targets, job.backward_tokens // job.length)))
    if "grad_x_input" in methods or "saliency" in methods:
        units += gradient_batches
    if "ig" in methods:
        steps = max(1, min(n_steps, job.forward_tokens // job.length))
        per = max(1, min(n_targets, job.backward_tokens // (steps * job.length)))
        units += math.ceil(n_steps / steps) * math.ceil(n_targets / per) + 1
    if "occlusion" in methods:
        units += 1
    return units


@contextmanager
def _frozen(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and parameters without gradients for the duration (restored after): the graph keeps less.

    Also flushes denormal floats to zero on CPU: the integrated-gradients points near the zero baseline produce
    subnormal intermediates, which made those batches ~20x slower (SmolLM2: 4 s vs 0.2 s per batch); values below
    1e-38 change no result. torch has no getter for the flag; it is set back to torch's default (off).
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    flushed = torch.set_flush_denormal(True)
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def check_methods(methods, available: "dict[str, Any] | tuple[str, ...]" = tuple(METHODS),
                  kind: str = "") -> list[str]:
    """The methods as a list without repeats; InputError naming the choices for an unknown or empty one.

    >>> check_methods(["ig", "saliency", "ig"])
    ['ig', 'saliency']
    """
    if isinstance(methods, str):
        methods = [methods]
    choices = ", ".join(available)
    chosen: list[str] = []
    for m in methods or ():
        if m not in available:
            raise InputError(f"Unknown attribution method {m!r}{kind}; choose from {choices}.")
        if m not in chosen:
            chosen.append(m)
    if not chosen:
        raise InputError(f"No attribution method given; choose from {choices}.")
    return chosen


def check_n_steps(n_steps) -> int:
    """n_steps for integrated gradients: DEFAULT_N_STEPS for None, else a positive integer (InputError otherwise)."""
    if n_steps is None:
        return DEFAULT_N_STEPS
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise InputError(f"n_steps must be a positive integer, got {n_steps!r}.")
    return int(n_steps)


def check_positions(positions, n_tokens: int, what: str, why: str) -> np.ndarray:
    """Target positions as int64 (n_targets,), each in 1..n_tokens-1; InputError naming ``what`` and ``why`` else.

    >>> check_positions([2, 3], 4, "tokens", "a target needs a token before it").tolist()
    [2, 3]
    """
    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    if positions.size == 0:
        raise InputError(f"No {what} to explain: the targets selection is empty.")
    if positions.min() < 1 or positions.max() >= n_tokens:
        raise InputError(f"Target positions must lie in 1..{n_tokens - 1} ({why}); got {positions.tolist()}.")
    return positions


def run_methods(job: Any, methods: list[str], n_steps: int, registry: "dict[str, Method] | None" = None,
                after_each: Callable[[], None] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run each method of ``registry`` (default METHODS) on the job: ({method: raw}, {method: delta}, IG only)."""
    registry = METHODS if registry is None else registry
    raw: dict[str, np.ndarray] = {}
    deltas: dict[str, np.ndarray] = {}
    for method in methods:
        values, delta = registry[method](job, n_steps)
        raw[method] = values
        if delta is not None:
            deltas[method] = delta
        if after_each is not None:
            after_each()
    return raw, deltas


def compute_attributions(
    spec: ResolvedSpec,
    input_ids: torch.Tensor,
    positions: np.ndarray,
    methods: list[str],
    target: str = "prob",
    foil_ids: np.ndarray | None = None,
    n_steps: int | None = None,
    progress: bool | None = None,
) -> AttributionResult:
    """Attribute each token at ``positions`` to the embeddings of the tokens before it, by each of ``methods``.

    input_ids: int (1, n_tokens). positions: int (n_targets,), each in 1..n_tokens-1. foil_ids: int (n_targets,),
    -1 where a target has no foil. n_steps: integration points for "ig" (default DEFAULT_N_STEPS).
    progress: True / False, or None to show a bar (stderr) only once the call has run for a few seconds.
    """
    from tqdm import tqdm

    methods = check_methods(methods)
    if target not in TARGETS:
        raise InputError(f"Unknown attribution target {target!r}; choose from {', '.join(TARGETS)}.")
    input_ids = torch.as_tensor(input_ids)
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    positions = check_positions(positions, int(input_ids.shape[-1]), "tokens", "a target needs a token before it")
    if foil_ids is not None:
        foil_ids = np.asarray(foil_ids, dtype=np.int64).reshape(-1)
        if foil_ids.shape != positions.shape:
            raise InputError(f"foil_ids has {foil_ids.size} entries for {positions.size} targets.")
    n_steps = check_n_steps(n_steps)

    disable = progress is False
    with tqdm(total=None, desc="attribution", unit="pass", file=sys.stderr, disable=disable,
              delay=0 if progress else 3.0, leave=False) as bar, _frozen(spec.model):
        job = _Job(spec, input_ids, positions, target, foil_ids, bar)
        bar.total = _work_units(methods, len(positions), job, n_steps)
        raw, deltas = run_methods(job, methods, n_steps)

    settings: dict[str, Any] = {
        "methods": list(methods),
        "target": target,
        "contrastive": bool(foil_ids is not None and (foil_ids >= 0).any()),
        "baseline": "zero",
        "attributed": f"token embeddings ({spec.embedding_name} output)",
        "raw": {m: _RAW_MEANING[m] for m in methods},
    }
    if "ig" in methods:
        settings["n_steps"] = n_steps
        settings["ig_method"] = IG_METHOD
        settings.update(check_completeness(deltas["ig"], job.ig_change, positions))
    return AttributionResult(raw=raw, deltas=deltas, settings=settings)


def check_completeness(deltas: np.ndarray, change: np.ndarray,
                       positions: np.ndarray | None = None) -> dict[str, Any]:
    """Warn (CompletenessWarning) when some IG row misses f(input) - f(baseline) by more than COMPLETENESS_TOLERANCE
    of it; return the settings that let Output.convergence_delta(relative=True) report it later. positions: where each
    explained token sits (for the message; rows are named by index without it).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_completeness(np.array([0.001, 0.05]), np.array([0.5, 0.5]), np.array([3, 4]))["ig_change"]
    [0.5, 0.5]
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    Integrated gradients missed completeness by more than 1% for 1 of 2 explained tokens (worst: 10.0% at position 4)...
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    change = np.asarray(change, dtype=np.float64)
    missed = np.abs(deltas) > COMPLETENESS_TOLERANCE * np.abs(change) + _COMPLETENESS_FLOOR
    if missed.any():
        relative = relative_completeness_error(deltas, change)
        worst = int(np.argmax(np.where(missed, relative, -1.0)))
        where = f"row {worst}" if positions is None else f"position {int(positions[worst])}"
        warnings.warn(
            f"Integrated gradients missed completeness by more than {COMPLETENESS_TOLERANCE:.0%} for "
            f"{int(missed.sum())} of {missed.size} explained tokens (worst: {relative[worst]:.1%} at {where}). Those rows do not add up to f(input) - f(baseline). A larger n_steps helps "
            "when f is smooth along the path from the zero baseline; on some models (RMSNorm models such as "
            "SmolLM2) f is rough next to the baseline and no practical n_steps converges. Per-token errors: "
            "out.convergence_delta('ig', relative=True).",
            CompletenessWarning, stacklevel=3,
        )
    return {"ig_change": [float(c) for c in change], "completeness_tolerance": COMPLETENESS_TOLERANCE}


def relative_completeness_error(deltas: np.ndarray, change: np.ndarray) -> np.ndarray:
    """|delta| / |f(input) - f(baseline)| per row, float64 (guarded against a zero change).

    >>> relative_completeness_error(np.array([0.01, -0.2]), np.array([0.5, -0.4])).tolist()
    [0.02, 0.5]
    """
    deltas = np.abs(np.asarray(deltas, dtype=np.float64))
    return deltas / np.maximum(np.abs(np.asarray(change, dtype=np.float64)), 1e-12)


def aggregate_attributions(raw: np.ndarray, how: str = "sum") -> np.ndarray:
    """Reduce raw attributions (n_targets, n_tokens, d_model) over the embedding dimensions -> (n_targets, n_tokens).

    how: "sum" (signed), "l2" (norm), "l2_normalized" (norm, each row divided by its sum: Ecco's display default;
    an all-zero row stays 0).
    """
    if how not in AGGREGATES:
        raise InputError(f"Unknown aggregate {how!r}; choose from {', '.join(AGGREGATES)}.")
    raw = np.asarray(raw)
    if raw.ndim != 3:
        raise InputError(f"Raw attributions must be (n_targets, n_tokens, d_model); got shape {raw.shape}.")
    if how == "sum":
        return raw.sum(axis=-1, dtype=np.float64).astype(np.float32)
    norms = np.sqrt(np.square(raw, dtype=np.float64).sum(axis=-1))
    if how == "l2_normalized":
        totals = norms.sum(axis=1, keepdims=True)
        norms = np.divide(norms, totals, out=np.zeros_like(norms), where=totals > 0)
    return norms.astype(np.float32)
