"""Discretized integrated gradients (Sanyal & Ren 2021): a path from the baseline to each token's embedding through
the embeddings of other words, instead of IG's straight line, integrated segment by segment.

The path of a token (:func:`monotonic_paths`): starting at its embedding, each step looks at the ``neighbours``
words nearest to the current word, keeps per word the dimensions that lie between the previous point and the
baseline (monotone), moves the other dimensions one step of (previous - baseline) / (steps left) towards the
baseline, and takes the word whose point moved least ("greedy") or with the most monotone dimensions
("maxcount"). The anchors, reversed, run from the baseline to the input: (n_anchors + 2, L, d) points. The
integral along the polyline (:func:`polyline_rule`) is taken with Gauss-Legendre nodes on each segment, so its sum
converges to f(x) - f(baseline) (completeness) as the nodes grow; DIG's paper uses one point per anchor.

>>> import torch
>>> vocab = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 1.0]])
>>> start, ref = vocab[2:3], torch.zeros(1, 2)    # one token: the word (2, 2), baseline the origin
>>> monotonic_paths(start, ref, Vocabulary(vocab), n_anchors=1, neighbours=3)[:, 0].tolist()
[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
>>> points, steps = polyline_rule(torch.tensor([[[0.0]], [[1.0]], [[3.0]]]), nodes=1)
>>> points[:, 0, 0].tolist(), steps[:, 0, 0].tolist()     # segment midpoints, segment lengths
([0.5, 2.0], [1.0, 2.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError

STRATEGIES = ("greedy", "maxcount")
#: Measured defaults (benchmarks/bench_paths.py --dig, docs/saliency.md): nearest words searched per anchor,
#: Gauss-Legendre nodes per segment.
DIG_DEFAULTS = {"neighbours": 100, "nodes": 4, "strategy": "greedy"}
_TOKENS_PER_CHUNK = 32


@dataclass(frozen=True)
class Vocabulary:
    """Every word's embedding in the attributed space: ``scale * weight[v]`` (weight: (V, d), not copied; the scale
    is what the module multiplies by, e.g. Gemma's sqrt(d))."""

    weight: torch.Tensor
    scale: float = 1.0


def vocabulary_of(embedding: torch.nn.Module, sample_ids: torch.Tensor) -> Vocabulary:
    """The vocabulary of a token-embedding module, checked on sample_ids; InputError if it is not a scaled lookup."""
    weight = getattr(embedding, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise InputError("Discretized IG walks through the embeddings of other words, so it needs a token embedding "
                         "that is a lookup table (a module with a (vocab, d_model) weight); use 'ig' instead.")
    if weight.device.type == "meta":
        raise InputError("Discretized IG needs the embedding matrix in memory, but this model's embedding is "
                         "offloaded (device 'meta'); keep the embedding on a device (device_map) or use 'ig'.")
    ids = sample_ids.reshape(-1)[:16].to(weight.device)
    try:
        with torch.inference_mode():
            out = embedding(ids[None])[0].float().to(weight.device)
            rows = weight[ids].float()
    except (RuntimeError, TypeError, IndexError) as error:
        raise InputError("Discretized IG needs the token embedding to be a lookup table of the vocabulary; this "
                         f"model's embedding module is not ({type(error).__name__}: {error}). Use 'ig' instead.") from error
    scale = float((out * rows).sum() / (rows * rows).sum().clamp_min(1e-30))
    rtol = max(1e-3, 4 * torch.finfo(weight.dtype).eps) if weight.dtype.is_floating_point else 1e-3  # bf16: 3e-2
    if out.shape != rows.shape or not torch.allclose(out, scale * rows, rtol=rtol, atol=1e-6):
        raise InputError("Discretized IG needs the token embedding to be a lookup (times a constant); this model's "
                         "embedding module computes something else. Use 'ig' instead.")
    return Vocabulary(weight.detach(), scale)


def monotonic_paths(start: torch.Tensor, ref: torch.Tensor, vocab: Vocabulary, n_anchors: int,
                    neighbours: int = 100, strategy: str = "greedy") -> torch.Tensor:
    """Points (n_anchors + 2, L, d), float32, from ref (index 0) through the anchors to start (index -1), per token.

    start, ref: (L, d) the inputs and the baseline. Tokens whose start equals their ref (kept positions) stay at
    their input."""
    if strategy not in STRATEGIES:
        raise InputError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
    start, ref = start.float(), ref.float()
    weight, scale = vocab.weight, vocab.scale
    device = start.device
    anchors = torch.empty(n_anchors, *start.shape, dtype=torch.float32, device=device)
    with torch.inference_mode():
        norms = scale ** 2 * weight.float().pow(2).sum(-1)  # (V,)
    k = max(1, min(neighbours, int(weight.shape[0]) - 1))
    for t0 in range(0, start.shape[0], _TOKENS_PER_CHUNK):
        word = start[t0:t0 + _TOKENS_PER_CHUNK]
        base = ref[t0:t0 + _TOKENS_PER_CHUNK]
        prev = word.clone()
        for i in range(n_anchors):
            with torch.inference_mode():
                dots = (word.to(weight.device, weight.dtype) @ weight.T).float() * scale  # (l, V)
                distances = norms[None] - 2 * dots + (word * word).sum(-1, keepdim=True).to(dots.device)
                distances[distances <= 1e-6 * distances.abs().amax(-1, keepdim=True)] = float("inf")  # not itself
                nearest = distances.topk(k, largest=False).indices
                candidates = (weight[nearest].float() * scale).to(device)  # (l, k, d)
            lo, hi = torch.minimum(prev, base)[:, None], torch.maximum(prev, base)[:, None]
            monotone = (candidates >= lo) & (candidates <= hi)
            stepped = (prev - (prev - base) / (n_anchors - i + 1))[:, None].expand_as(candidates)
            points = torch.where(monotone, candidates, stepped)
            if strategy == "greedy":
                score = (points - candidates).norm(dim=-1)
            else:
                score = -monotone.sum(-1).float()
            choice = score.argmin(-1)
            rows = torch.arange(len(choice), device=device)
            prev = points[rows, choice]
            word = candidates[rows, choice]
            anchors[i, t0:t0 + len(choice)] = prev
    path = torch.cat([ref[None], anchors.flip(0), start[None]])
    still = (start == ref).all(-1)  # kept positions: the whole path at the input
    path[:, still] = start[still]
    return path


def segment_nodes(n_steps: int, per_segment: int) -> list[int]:
    """Gauss-Legendre nodes per segment for exactly n_steps evaluations, about per_segment each (n_steps //
    per_segment segments, at least one; the remainder one more on the first ones).

    >>> segment_nodes(96, 4), segment_nodes(10, 4), segment_nodes(3, 4)
    ([4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4], [5, 5], [3])
    """
    n_segments = max(1, n_steps // per_segment)
    return [n_steps // n_segments + (s < n_steps % n_segments) for s in range(n_segments)]


def polyline_rule(path: torch.Tensor, nodes: int | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre on each segment of the polyline path (S + 1, L, d), ``nodes`` points on every segment (or a
    count per segment): points and steps, each (total nodes, L, d), such that sum_k grad f(points[k]) * steps[k]
    approximates the path integral (segment by segment)."""
    counts = [nodes] * (len(path) - 1) if isinstance(nodes, int) else list(nodes)
    if len(counts) != len(path) - 1 or min(counts) < 1:
        raise InputError(f"nodes must be at least 1 on each of the {len(path) - 1} segments; got {nodes}.")
    points, steps = [], []
    for begin, end, count in zip(path[:-1], path[1:], counts):
        x, w = np.polynomial.legendre.leggauss(count)
        alphas = torch.tensor(0.5 * (1 + x), dtype=path.dtype, device=path.device)[:, None, None]
        weights = torch.tensor(0.5 * w, dtype=path.dtype, device=path.device)[:, None, None]
        points.append(begin + alphas * (end - begin))
        steps.append(weights * (end - begin))
    return torch.cat(points), torch.cat(steps)
