"""The figures an SAE is judged by, on held-out text: FVU, L0, dead and dense latents, and cross-entropy loss recovered.

Over contexts of ``context`` tokens of the texts (as :mod:`.harvest` cuts them; the first ``skip_first`` positions of
each context are left out of every figure and are never replaced):

- ``fvu``: sum |x - x_hat|^2 / sum |x - mean(x)|^2 over all rows (float64 sums);
- ``l0``: mean active latents per token; ``dead``: fraction of latents that never fire; ``dense``: fraction that
  fire on more than ``DENSE_ABOVE`` of the tokens;
- ``ce_clean``, ``ce_sae``, ``ce_zero``: the model's mean next-token cross-entropy with the site as it is, replaced
  by the dictionary's reconstruction, and set to zero; ``ce_recovered`` = (ce_zero - ce_sae) / (ce_zero - ce_clean)
  (1: the reconstruction loses nothing; 0: no better than zero-ablation); ``ce_delta`` = ce_sae - ce_clean.

The reconstruction is spliced back through the site's transform: a centred site gets each token's mean back; sites
read through a norm's formula or one head's slice are not spliced (``ce_*`` are then None and ``note`` says why).

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.analysis.features import SAE
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=50)).eval())
>>> eye = torch.eye(8)   # relu(x) - relu(-x) = x: a dictionary that reconstructs exactly
>>> sae = SAE(W_enc=torch.cat([eye, -eye], 1), W_dec=torch.cat([eye, -eye]), b_enc=torch.zeros(16), b_dec=torch.zeros(8))
>>> m = evaluate_ids(sae, spec, list(range(1, 40)), "blocks.0.hook_resid_post", context=8)
>>> round(m["ce_recovered"], 5), round(m["fvu"], 8), m["l0"]
(1.0, 0.0, 8.0)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import InputError
from ...progress import progress_bar
from .harvest import contexts, token_stream
from .site_values import values_of, write_site
from .sites import Site, resolve

DENSE_ABOVE = 0.1  # a latent firing on more than this fraction of tokens counts as dense
BATCH_TOKENS = 2048


def _loss(spec: Any, ids: torch.Tensor, skip_first: int) -> torch.Tensor:
    """Summed next-token cross-entropy over the predictions of positions skip_first .. n-2, float64 ()."""
    with torch.inference_mode():
        logits = spec.model(input_ids=ids, use_cache=False).logits.float()
    pred, gold = logits[:, skip_first:-1], ids[:, skip_first + 1:]
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), gold.reshape(-1), reduction="sum").double()


def evaluate_ids(sae: Any, spec: Any, ids: Sequence[int], site: Any = None, context: int = 128, skip_first: int = 1,
                 progress: bool | None = False) -> dict[str, Any]:
    """The module docstring's figures of ``sae`` at ``site`` (default: the site its files name) over the id stream."""
    if site is None:
        site = sae.site.get("hook_name")
        if not site:
            raise InputError("This dictionary names no site: pass site=...")
    where = site if isinstance(site, Site) else resolve(spec, site)
    if sae.transcoder:
        raise InputError("evaluate() measures SAEs; a transcoder reconstructs another site.")
    windows = contexts(ids, context)
    if len(windows) == 0 or context - skip_first < 2:
        raise InputError(f"The texts give {len(ids)} tokens, less than one context of {context}; pass more text or a "
                         "smaller context.")
    values = values_of(spec, where)
    splice = where.transform in ("", "centre")
    device = next(spec.model.parameters()).device
    sums = {"err": 0.0, "x2": 0.0, "n": 0, "l0": 0.0, "clean": 0.0, "sae": 0.0, "zero": 0.0, "pred": 0}
    total = torch.zeros(sae.d_in, dtype=torch.float64)
    fired = torch.zeros(sae.d_sae, dtype=torch.float64)
    batch = max(1, BATCH_TOKENS // context)

    def reconstruct(v: torch.Tensor, store: bool) -> torch.Tensor:
        x = values(v.reshape(-1, v.shape[-1])).float()
        acts = sae.encode(x.to(sae.dtype))
        recon = sae.decode(acts, x_in=x.to(sae.dtype)).float()
        if store:
            keep = torch.ones(v.shape[0], v.shape[1], dtype=torch.bool)
            keep[:, :skip_first] = False
            keep = keep.reshape(-1).to(x.device)
            xs, rs, on = x[keep].double(), recon[keep].double(), (acts[keep] != 0)
            sums["err"] += float((xs - rs).pow(2).sum())
            sums["x2"] += float(xs.pow(2).sum())
            total.add_(xs.sum(0).cpu())
            sums["n"] += int(keep.sum())
            sums["l0"] += float(on.sum())
            fired.add_(on.sum(0).double().cpu())
        if where.transform == "centre":
            recon = recon + v.reshape(-1, v.shape[-1]).float().mean(-1, keepdim=True)
        out = recon.to(v.dtype).reshape(v.shape).clone()
        out[:, :skip_first] = v[:, :skip_first]
        return out

    def zero(v: torch.Tensor) -> torch.Tensor:  # a raw zero: a centred site is zeroed, not its mean kept
        out = torch.zeros_like(v)
        out[:, :skip_first] = v[:, :skip_first]
        return out

    with progress_bar(len(windows), "evaluation", progress, "context") as bar:
        for start in range(0, len(windows), batch):
            ids_b = torch.as_tensor(windows[start:start + batch], device=device)
            sums["clean"] += float(_loss(spec, ids_b, skip_first))
            handle = write_site(spec, where, lambda v: reconstruct(v, True))
            try:
                sums["sae"] += float(_loss(spec, ids_b, skip_first))
            finally:
                handle.remove()
            if splice:
                handle = write_site(spec, where, zero)
                try:
                    sums["zero"] += float(_loss(spec, ids_b, skip_first))
                finally:
                    handle.remove()
            sums["pred"] += ids_b.shape[0] * (context - skip_first - 1)
            bar.update(len(ids_b))
    n = sums["n"]
    variance = sums["x2"] - float(total.pow(2).sum()) / n
    frequency = (fired / n).numpy()
    result: dict[str, Any] = {"fvu": sums["err"] / variance if variance > 0 else float("nan"), "l0": sums["l0"] / n,
                              "dead": float(np.mean(frequency == 0)), "dense": float(np.mean(frequency > DENSE_ABOVE)),
                              "n_tokens": n, "site": where.describe(), "context": context, "skip_first": skip_first,
                              "note": ""}
    if splice:
        clean, with_sae, zeroed = (sums[k] / sums["pred"] for k in ("clean", "sae", "zero"))
        gap = zeroed - clean
        result.update(ce_clean=clean, ce_sae=with_sae, ce_zero=zeroed, ce_delta=with_sae - clean,
                      ce_recovered=(zeroed - with_sae) / gap if gap != 0 else float("nan"))
    else:
        result.update(ce_clean=None, ce_sae=None, ce_zero=None, ce_delta=None, ce_recovered=None,
                      note=f"{where.describe()} is read through a transform that is not spliced back; no CE figures.")
    return result


def evaluate(sae: Any, lm: Any, texts: Sequence[str], site: Any = None, context: int = 128, skip_first: int = 1,
             progress: bool | None = None) -> dict[str, Any]:
    """:func:`evaluate_ids` over ``texts`` tokenized by ``lm`` (``ew.SAE.evaluate``)."""
    return evaluate_ids(sae, lm.spec, token_stream(lm._require_tokenizer(), texts), site, context, skip_first,
                        progress)
