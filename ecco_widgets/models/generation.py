"""One call to ``model.generate`` for every model kind, with its options checked first.

``lm.generate``, ``lm.chat`` and the encoder-decoder's ``generate_ids`` all continue one sequence greedily (or
sampled), under the model's lock and ``torch.inference_mode``, with an all-ones attention mask and a pad token, and
analyse what comes out. The options that this call sets itself cannot come again in ``generation_kwargs``.

>>> check_generation_options(True, {"temperature": 0.7})
{'temperature': 0.7}
>>> check_generation_options("yes", None)
Traceback (most recent call last):
...
ecco_widgets.errors.InputError: do_sample must be True or False, got 'yes'.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError

#: what ``generate`` passes itself: given again in generation_kwargs it would clash (or be silently overridden)
OWN_OPTIONS = {"max_new_tokens": "max_new_tokens=", "do_sample": "do_sample=", "input_ids": "the prompt",
               "inputs": "the prompt", "attention_mask": "the prompt", "max_length": "max_new_tokens=",
               "return_dict_in_generate": "(the result is an Output)", "output_scores": "(the result is an Output)"}


def check_generation_options(do_sample: Any, generation_kwargs: Any) -> dict[str, Any]:
    """``generation_kwargs`` as a new dict, after checking ``do_sample`` and what the kwargs may hold (InputError)."""
    if not isinstance(do_sample, (bool, np.bool_)):
        raise InputError(f"do_sample must be True or False, got {do_sample!r}.")
    if generation_kwargs is None:
        return {}
    if not isinstance(generation_kwargs, dict):
        raise InputError(f"generation_kwargs must be a dict of transformers' generate() options, got "
                         f"{type(generation_kwargs).__name__}.")
    clashes = sorted(set(generation_kwargs) & set(OWN_OPTIONS))
    if clashes:
        where = ", ".join(f"{k} (give {OWN_OPTIONS[k]})" for k in clashes)
        raise InputError(f"generation_kwargs repeats what generate sets itself: {where}.")
    count = generation_kwargs.get("num_return_sequences", 1)
    if count != 1:
        raise InputError(f"num_return_sequences={count!r}: one sequence is analysed per call; call generate once per "
                         "sequence (with do_sample=True for different ones).")
    return dict(generation_kwargs)


def generate_ids(lm: Any, ids: Sequence[int], max_new_tokens: int, do_sample: bool, kwargs: dict[str, Any],
                 pad_token_id: int | None) -> list[int]:
    """``ids`` and what the model adds (at most ``max_new_tokens``): the input ids followed by the new ones for a
    decoder-only model, the decoder sequence for an encoder-decoder (whose ``ids`` are the source)."""
    kwargs = dict(kwargs)
    if pad_token_id is not None:
        kwargs.setdefault("pad_token_id", pad_token_id)
    input_ids = torch.tensor([list(ids)], device=lm.device)
    try:
        with lm.lock, torch.inference_mode():
            generated = lm.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                          max_new_tokens=int(max_new_tokens), do_sample=bool(do_sample), **kwargs)
    except (TypeError, ValueError) as error:  # an option transformers does not take, or a bad value for one
        raise InputError(f"transformers' generate() refused the options {sorted(kwargs)}: {error}") from None
    return [int(i) for i in generated[0]]


def pad_id(tokenizer: Any, config: Any = None) -> int | None:
    """The tokenizer's pad token, else its end-of-sequence token, else the model config's pad token."""
    for source, name in ((tokenizer, "pad_token_id"), (tokenizer, "eos_token_id"), (config, "pad_token_id")):
        value = getattr(source, name, None) if source is not None else None
        if value is not None:
            return int(value)
    return None
