"""Several lenses over the same text, side by side: their outputs stacked into one LensComparison view.

>>> import numpy as np
>>> from ecco_widgets.results import Output
>>> def out(ranks):
...     return Output(token_ids=np.array([1, 2, 3]), tokens=["a", " b", " c"], raw_tokens=["a", "b", "c"],
...                   n_input_tokens=3, ranks=np.array(ranks, dtype=np.int32))
>>> stacked_lens_arrays({"logit": out([[5, 2], [1, 1]]), "tuned": out([[2, 1], [1, 1]])})["ranks"].shape
(2, 2, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .output import Output


def stacked_lens_arrays(outputs: dict[str, Output]) -> dict[str, Any]:
    """ranks int32 and, where every output has them, target_probs / kl_to_final / entropy float32, each stacked
    to (n_lenses, n_layers, n_tokens - 1), plus lens_names; the outputs must cover the same tokens and layers."""
    if not outputs:
        raise InputError("Give at least one lens output to compare.")
    names = list(outputs)
    first = outputs[names[0]]
    for name in names[1:]:
        other = outputs[name]
        if list(other.token_ids) != list(first.token_ids) or other.ranks.shape != first.ranks.shape:
            raise InputError(f"The outputs of lens {names[0]!r} and {name!r} cover different tokens or layers; "
                             "compare lenses over the same text and model.")
    arrays: dict[str, Any] = {"lens_names": names, "ranks": np.stack([outputs[n].ranks for n in names])}
    for field in ("target_probs", "kl_to_final", "entropy"):
        values = [getattr(outputs[n], field) for n in names]
        if all(v is not None for v in values):
            arrays[field] = np.stack(values).astype(np.float32)
    return arrays


def lens_comparison(outputs: dict[str, Output], metric: str = "rank", **view_options: Any):
    """A LensComparison view of ``outputs`` ({lens name: Output of the same text}), grids aligned and linked."""
    from ..views import LensComparison

    first = next(iter(outputs.values()), None)
    arrays = stacked_lens_arrays(outputs)
    return LensComparison(tokens=first.tokens, raw_tokens=first.raw_tokens, n_input_tokens=first.n_input_tokens,
                          layer_labels=first.layer_labels, metric=metric, **arrays, **view_options)
