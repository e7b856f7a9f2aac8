"""The logit lens: decode every layer's hidden state through the final norm and the unembedding.

Ranks are counted, not sorted: rank = 1 + number of logits greater than the target's logit. All layers are
decoded together (one stacked matmul per chunk of positions), and chunks keep memory bounded for long texts and
large vocabularies.

>>> import torch
>>> logits = torch.tensor([[[0.1, 3.0, 2.0], [5.0, 1.0, 1.5]]])   # (layers=1, positions=2, vocab=3)
>>> ranks_from_logits(logits, torch.tensor([2, 2])).tolist()
[[2, 2]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..progress import progress_bar

DEFAULT_CHUNK_BYTES = 256 * 2**20


@dataclass
class LensResult:
    """ranks: int32 (n_layers, n_positions); topk_ids: int32 (n_layers, n_positions, k);
    topk_probs: float32 (n_layers, n_positions, k); target_probs: float32 (n_layers, n_positions);
    entropy: float32 (n_layers, n_positions), nats, of each layer's decoded distribution; kl_to_final: float32
    (n_layers, n_positions), KL(p_final || p_layer) in nats (0 in the last row)."""

    ranks: np.ndarray
    topk_ids: np.ndarray
    topk_probs: np.ndarray
    target_probs: np.ndarray
    entropy: np.ndarray | None = None
    kl_to_final: np.ndarray | None = None


def ranks_from_logits(logits: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """1-based rank of ``target_ids`` in ``logits``; logits (..., n_positions, vocab), target_ids (n_positions,).

    Ties count in the target's favour (strictly greater logits only), as a stable descending sort would.
    """
    index = target_ids.view(*([1] * (logits.dim() - 2)), -1, 1).expand(*logits.shape[:-1], 1)
    target_logit = logits.gather(-1, index)
    return (logits > target_logit).sum(-1) + 1


def _positions_per_chunk(n_layers: int, vocab: int, chunk_bytes: int) -> int:
    return max(1, chunk_bytes // (max(1, n_layers) * vocab * 4 * 3))


def logit_lens(
    decode: Callable[[torch.Tensor], torch.Tensor],
    block_hidden: torch.Tensor,
    target_ids: torch.Tensor,
    k: int = 10,
    final_logits: torch.Tensor | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: bool | None = False,
    metrics: bool = True,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LensResult:
    """Ranks, top-k and target probabilities of every layer at every position.

    block_hidden: (n_layers, n_positions, d_model), block outputs before the final norm, in the model's dtype
    (each block of positions is decoded in it, then upcast: ranks and probabilities are computed in float32).
    target_ids: int (n_positions,), the token each position should predict (the next token).
    final_logits: the model's own logits (n_positions, vocab); when given they stand for the last layer, so the
    last row equals the model's own ranks exactly. metrics: also the entropy and the KL to the last layer (the
    result holds None for them otherwise). transform: applied to each block of rows before the decode, (n_layers,
    positions, d_model) -> same shape (a tuned lens's translators); None decodes the hidden states as they are.
    """
    n_layers, n_positions, _ = block_hidden.shape
    if n_positions == 0:
        empty = np.zeros((n_layers, 0), np.int32)
        return LensResult(empty, np.zeros((n_layers, 0, k), np.int32), np.zeros((n_layers, 0, k), np.float32),
                          empty.astype(np.float32), empty.astype(np.float32), empty.astype(np.float32))
    with torch.inference_mode():
        sample = decode(block_hidden[:1, :1])
        vocab = sample.shape[-1]
        k = min(k, vocab)
        step = _positions_per_chunk(n_layers, vocab, chunk_bytes)
        ranks = torch.empty(n_layers, n_positions, dtype=torch.int32)
        topk_ids = torch.empty(n_layers, n_positions, k, dtype=torch.int32)
        topk_probs = torch.empty(n_layers, n_positions, k, dtype=torch.float32)
        target_probs = torch.empty(n_layers, n_positions, dtype=torch.float32)
        entropy = torch.empty(n_layers, n_positions, dtype=torch.float32)
        kl = torch.empty(n_layers, n_positions, dtype=torch.float32)
        with progress_bar(n_positions, "logit lens", progress, "token") as bar:
            for start in range(0, n_positions, step):
                stop = min(start + step, n_positions)
                rows = block_hidden[:, start:stop]
                logits = decode(rows if transform is None else transform(rows)).float()
                if final_logits is not None:
                    logits[-1] = final_logits[start:stop].to(logits.device, torch.float32)
                targets = target_ids[start:stop].to(logits.device)
                _rank_block(logits, targets, k, n_layers, start, stop, ranks, topk_ids, topk_probs, target_probs,
                            entropy if metrics else None, kl if metrics else None)
                bar.update(stop - start)
    return LensResult(ranks.numpy(), topk_ids.numpy(), topk_probs.numpy(), target_probs.numpy(),
                      entropy.numpy() if metrics else None, kl.numpy() if metrics else None)


def _rank_block(logits: torch.Tensor, targets: torch.Tensor, k: int, n_layers: int, start: int, stop: int,
                ranks: torch.Tensor, topk_ids: torch.Tensor, topk_probs: torch.Tensor, target_probs: torch.Tensor,
                entropy: torch.Tensor | None, kl: torch.Tensor | None) -> None:
    """Ranks, top-k, target probabilities, entropy and KL to the last row of one block of positions (logits float32
    (n_layers, stop - start, vocab), overwritten), written into the result tensors. One extra buffer of the
    block's size (the exponentials) is used."""
    index = targets.view(1, -1, 1).expand(n_layers, -1, 1)
    target_logit = logits.gather(-1, index)
    ranks[:, start:stop] = (logits > target_logit).sum(-1, dtype=torch.int32).cpu() + 1
    values, ids = logits.topk(k, dim=-1)
    topk_ids[:, start:stop] = ids.to("cpu", torch.int32)
    peak = values[..., :1]
    shifted = logits.sub_(peak)  # logit - max, in place
    if entropy is None or kl is None:
        log_z = shifted.exp_().sum(-1).log()
    else:
        log_z = _entropy_and_kl(shifted, start, stop, entropy, kl)
    log_norm = peak + log_z[..., None]
    topk_probs[:, start:stop] = (values - log_norm).exp().cpu()
    target_probs[:, start:stop] = (target_logit - log_norm).exp()[..., 0].cpu()


def _entropy_and_kl(shifted: torch.Tensor, start: int, stop: int, entropy: torch.Tensor,
                    kl: torch.Tensor) -> torch.Tensor:
    """Entropy and KL(p_final || p_layer) of a block, from shifted = logits - max (n_layers, positions, vocab);
    returns log Z (n_layers, positions). With e = exp(shifted) and Z = sum(e): log p = shifted - log Z, entropy =
    log Z - sum(e * shifted) / Z, KL(p_f || p_l) = sum p_f log p_f - sum p_f log p_l."""
    p_final = shifted[-1].softmax(-1)  # (positions, vocab)
    cross = torch.einsum("pv,lpv->lp", p_final, shifted)  # sum p_f * shifted_l (log Z_l subtracted below)
    e = shifted.exp()
    total = e.sum(-1)
    log_z = total.log()
    weighted = torch.einsum("lpv,lpv->lp", e, shifted)  # sum e * shifted, without a product buffer
    entropy[:, start:stop] = (log_z - weighted / total).cpu()
    cross -= log_z  # sum p_f log p_l
    kl[:, start:stop] = (cross[-1:] - cross).clamp_(min=0).cpu()
    return log_z


def watch_ranks(
    decode: Callable[[torch.Tensor], torch.Tensor],
    hidden_at_position: torch.Tensor,
    watch_ids: list[int],
) -> np.ndarray:
    """Ranks of chosen tokens at one position for every layer.

    hidden_at_position: float (n_layers, d_model) -> int32 (n_layers, n_watch).
    """
    with torch.inference_mode():
        logits = decode(hidden_at_position).float()  # (n_layers, vocab)
        ids = torch.tensor(watch_ids, dtype=torch.long, device=logits.device)
        chosen = logits[:, ids]  # (n_layers, n_watch)
        ranks = (logits.unsqueeze(1) > chosen.unsqueeze(-1)).sum(-1) + 1
    return ranks.to("cpu", torch.int32).numpy()
