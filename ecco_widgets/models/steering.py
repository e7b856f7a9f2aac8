"""``lm.generate(prompt, steer={sae: {feature: value}})``: the plain and the steered greedy continuations of one
prompt with the same settings, each analysed (the steered one with the steering still on), side by side in a
:class:`~ecco_widgets.results.steering.SteeringResult`; and the link that lets ``out.feature_attribution(name)``
find the dictionaries an output was analysed with. The steering itself: :mod:`ecco_widgets.analysis.features.steering`.

>>> links_of(None)
{}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.features.steering import plan, steering
from ..errors import InputError
from ..results.steering import SteeringResult
from .generation import check_generation_options, generate_ids, pad_id


class Links(dict):
    """{name: (SAE, site)}: kept by reference when an output is copied (the weights are the model's, not the
    output's)."""

    def __deepcopy__(self, memo: dict) -> "Links":
        return self


def links_of(recorder: Any) -> dict[str, Any]:
    """{name: (SAE, site or (site_in, site_out))} of a FeatureRecorder (empty without one)."""
    if recorder is None:
        return {}
    return Links({it["name"]: (it["sae"], (it["read"], it["out"]) if it["out"] else it["read"])
                  for it in recorder.items})


def generate_steered(lm: Any, prompt: str, max_new_tokens: int, do_sample: bool, generation_kwargs: dict | None,
                     steer: Any, **options: Any) -> SteeringResult:
    """The plain and the steered continuation of ``prompt`` (greedy, same settings), each analysed with ``options``
    (as ``lm.analyze``), in a SteeringResult. Every argument is checked before any forward."""
    if do_sample:
        raise InputError("steer compares two greedy continuations of one prompt: leave do_sample=False.")
    ids = lm.encode(prompt)
    if isinstance(max_new_tokens, (bool, np.bool_)) or not isinstance(max_new_tokens, (int, np.integer)) \
            or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}.")
    lm.check_length(len(ids) + max_new_tokens, f"The prompt plus max_new_tokens={max_new_tokens}")
    steps = plan(lm.spec, steer)
    kwargs = check_generation_options(False, generation_kwargs)
    pad = pad_id(lm._require_tokenizer())
    options.setdefault("targets", slice(len(ids), None))
    plain_ids = generate_ids(lm, ids, max_new_tokens, False, kwargs, pad)
    plain = lm.analyze_ids(plain_ids, n_input_tokens=len(ids), **options)
    with steering(lm.spec, steps):
        steered_ids = generate_ids(lm, ids, max_new_tokens, False, kwargs, pad)
        steered = lm.analyze_ids(steered_ids, n_input_tokens=len(ids), **options)
    return SteeringResult.of(plain, steered, [d for step in steps for d in step.describe()])
