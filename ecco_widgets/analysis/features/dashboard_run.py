"""The model's side of a feature dashboard: one hooked forward per document feeding a
:class:`~.dashboard.DashboardCollector`, and the tokens each feature's decoder direction promotes and suppresses.

Promoted tokens: the decoder row ``W_dec[f]`` (d_out; for a transcoder, a direction at its output site) taken as a
residual-stream vector through the final norm(s) at unit scale (LayerNorm: centred, times its weight; RMSNorm: times
its weight, Gemma's 1 + weight; the scale that depends on the token is left at 1, as it is the same for every
vocabulary entry and does not change the ranking), then the unembedding, biases left out: (n, vocab) logits, top and
bottom n per feature. A dictionary whose output is not d_model wide gets none (a note says why).

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> from ecco_widgets.analysis.features import SAE
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=30)).eval())
>>> sae = SAE(W_enc=torch.eye(8), W_dec=torch.eye(8), b_enc=torch.zeros(8), b_dec=torch.zeros(8))
>>> top = promoted_tokens(spec, sae, [0, 3], n=4)
>>> top["promoted_ids"].shape, top["suppressed_values"].dtype.name, top["note"][:9]
((2, 4), 'float32', 'W_dec row')
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ...capture import capture
from ...errors import InputError
from ...progress import progress_bar
from ..components.norms import norm_form
from ..components.record import weight_out_in
from .dashboard import DashboardCollector
from .record import FeatureRecorder


def check_dictionary(spec: Any, sae: Any, site: Any = None) -> Any:
    """The (sae, site) entry the recorder takes, its sites and widths checked against the model (InputError)."""
    from .sae import SAE

    if not isinstance(sae, SAE):
        raise InputError(f"sae must be an ew.SAE (ew.SAE.load(folder)); got {type(sae).__name__}.")
    entry = sae if site is None else (sae, site)
    return FeatureRecorder(spec, [entry], 1, check=False).items[0]  # sites and widths: before any forward


def collect(spec: Any, item: dict[str, Any], documents: Iterable[tuple[int, Sequence[int]]],
            collector: DashboardCollector, device: Any = None, total: int | None = None,
            progress: bool | None = None) -> DashboardCollector:
    """Run each (document index, token ids) through the model once, encode the dictionary's site as
    ``lm.analyze(saes=...)`` does (:func:`.record.encode_sparse`) and add it to ``collector``."""
    site = item["read"] if item["out"] is None else (item["read"], item["out"])
    with progress_bar(total, "feature dashboard", progress, unit="text") as bar:
        for doc, ids in documents:
            recorder = FeatureRecorder(spec, {item["name"]: (item["sae"], site)}, len(ids), check=False)
            with torch.no_grad():
                capture(spec, torch.tensor([list(ids)], device=device), plugs=(recorder,))
            found = recorder.finish()[0]
            collector.add(doc, np.asarray(ids), found["indices"], found["values"])
            bar.update(1)
    return collector


def promoted_tokens(spec: Any, sae: Any, features: Sequence[int], n: int = 10) -> dict[str, Any]:
    """Per feature the n most promoted and n most suppressed tokens: ids int64 (F, n) and logits float32 (F, n)
    (see the module docstring); empty (F, 0) arrays and a note when the direction cannot be read as logits."""
    features = np.asarray(features, np.int64)
    empty = {"promoted_ids": np.zeros((len(features), 0), np.int64),
             "promoted_values": np.zeros((len(features), 0), np.float32)}
    empty.update(suppressed_ids=empty["promoted_ids"], suppressed_values=empty["promoted_values"])
    unembedding = getattr(spec, "unembedding", None)
    weight = weight_out_in(unembedding) if unembedding is not None else None
    if spec.decode_fn is not None or weight is None:
        return {**empty, "note": "The model's head is not a linear unembedding: no promoted tokens."}
    d_model = int(weight.shape[1])
    if sae.d_out != d_model:
        return {**empty, "note": f"The decoder writes {sae.d_out} values, not the residual stream's {d_model}: no "
                                 "promoted tokens."}
    with torch.no_grad():
        v = sae.W_dec[torch.as_tensor(features, device=sae.W_dec.device)].float()
        if sae.rescale_acts_by_decoder_norm:  # decode divides activations by the row norms
            v = v / sae.W_dec[torch.as_tensor(features, device=sae.W_dec.device)].float().norm(dim=-1, keepdim=True)
        steps = []
        for module in spec.final_norms:
            form, matrix = norm_form(module), weight_out_in(module)
            if matrix is not None:
                v = v.to(matrix.device) @ matrix.float().T
                steps.append("a linear projection")
            elif form is not None:
                if form.centre:
                    v = v - v.mean(-1, keepdim=True)
                w = getattr(module, "weight", None)
                if w is not None:
                    v = v.to(w.device) * (w.detach().float() + form.offset)
                steps.append(f"{type(module).__name__} at unit scale")
            else:
                return {**empty, "note": f"The final {type(module).__name__} is not a known norm: no promoted "
                                         "tokens."}
        logits = v.to(weight.device) @ weight.float().T
        k = min(int(n), logits.shape[-1])
        top, bottom = torch.topk(logits, k, dim=-1), torch.topk(-logits, k, dim=-1)
    path = " then ".join(steps) or "no final norm"
    return {"promoted_ids": top.indices.cpu().numpy().astype(np.int64),
            "promoted_values": top.values.cpu().numpy().astype(np.float32),
            "suppressed_ids": bottom.indices.cpu().numpy().astype(np.int64),
            "suppressed_values": (-bottom.values).cpu().numpy().astype(np.float32),
            "note": f"W_dec row through {path} and the unembedding (biases left out; the norm's per-token scale "
                    "set to 1, which does not change the ranking)."}
