"""Ecco's array layouts built from a native output: attributions per generated token, activations
(batch, layer, neuron, position), hidden states per generation step. Every array is a fresh copy.

>>> import numpy as np
>>> from ecco_widgets.results import Output
>>> out = Output(token_ids=np.arange(4), tokens=list("abcd"), raw_tokens=list("abcd"), n_input_tokens=2,
...              ranks=np.ones((2, 3), np.int32), hidden_states=np.zeros((3, 4, 5), np.float32))
>>> [tuple(s.shape) for s in decoder_steps(out, generated=True)]
[(2, 2, 5), (2, 1, 5)]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import NotAvailableError


def _hidden(out: Any, final_norms: Sequence[Any] = ()) -> np.ndarray:
    """The output's hidden states with ``final_norms`` applied to the last row, as transformers (and so Ecco)
    report the last layer: (n_layers + 1, n_tokens, d_model), a copy when a norm was applied."""
    if out.hidden_states is None:
        raise NotAvailableError("No hidden states were kept: load the model with hidden_states=True (Ecco's "
                                "default).")
    if not final_norms:
        return out.hidden_states
    hidden = out.hidden_states.copy()
    with torch.no_grad():
        last = torch.from_numpy(hidden[-1])
        for norm in final_norms:
            weight = next(norm.parameters(), None)
            last = norm(last if weight is None else last.to(weight.device, weight.dtype))
        hidden[-1] = last.float().cpu().numpy()
    return hidden


def decoder_steps(out: Any, generated: bool, final_norms: Sequence[Any] = ()) -> list[torch.Tensor] | \
        tuple[torch.Tensor, ...]:
    """Ecco's ``decoder_hidden_states``, without the embedding row; the last layer after the final norm(s), as
    transformers reports it.

    After ``generate``: a list with one tensor per generated token, (n_layers, positions fed at that step, d_model):
    the prompt at the first step, then the one new position (transformers' cached generation). After ``lm(inputs)``:
    a tuple of n_layers tensors (1, n_tokens, d_model).
    """
    hidden = _hidden(out, final_norms)
    if not generated:
        return tuple(torch.from_numpy(hidden[layer][None].copy()) for layer in range(1, hidden.shape[0]))
    n_input, n = out.n_input_tokens, out.n_tokens
    steps = []
    for j in range(n - n_input):
        start = 0 if j == 0 else n_input + j - 1
        steps.append(torch.from_numpy(hidden[1:, start: n_input + j].copy()))
    return steps


def embedding_states(out: Any, generated: bool) -> torch.Tensor:
    """Ecco's ``embedding_states``: the embedding row (hidden state 0) of the positions last fed to the model:
    (1, n_tokens, d_model) after ``lm(inputs)``; after ``generate`` (positions, d_model), as Ecco left it."""
    hidden = _hidden(out)
    if not generated:
        return torch.from_numpy(hidden[0][None].copy())
    start = 0 if out.n_tokens - out.n_input_tokens == 1 else out.n_tokens - 2
    return torch.from_numpy(hidden[0, start: out.n_tokens - 1].copy())


def ecco_activations(acts: np.ndarray, n_positions: int) -> np.ndarray:
    """(n_layers, n_tokens, n_neurons) -> Ecco's (1, n_layers, n_neurons, n_positions), a copy."""
    return np.ascontiguousarray(np.swapaxes(acts[:, :n_positions], 1, 2)[None]).copy()


def activation_dict(out: Any, kind: str, generated: bool, stack_key: str) -> dict[str, np.ndarray]:
    """Ecco's ``output.activations``: {'decoder' or 'encoder': (1, n_layers, n_neurons, n_positions)}.

    After ``generate`` the positions are those of the last forward Ecco ran: every token but the last one.
    """
    if kind == "enc-dec":
        found = {}
        if out.encoder_activations is not None:
            found["encoder"] = ecco_activations(out.encoder_activations, out.n_source)
        if out.decoder_activations is not None:
            found["decoder"] = ecco_activations(out.decoder_activations, out.n_tokens - (1 if generated else 0))
        return found
    if out.activations is None:
        return {}
    return {stack_key: ecco_activations(out.activations, out.n_tokens - (1 if generated else 0))}


def attribution_lists(out: Any, methods: dict[str, str], kind: str) -> dict[str, list[np.ndarray]]:
    """Ecco's ``output.attribution``: {name: [one array per explained token]}, each the L2 norm per input token,
    normalised to sum to 1, over the tokens before the explained one (encoder-decoder: the source, then the decoder
    tokens before it)."""
    result: dict[str, list[np.ndarray]] = {}
    offset = out.n_source if kind == "enc-dec" else 0
    for name, method in methods.items():
        if method not in out.attributions_raw:
            continue
        rows = out.attributions(method, "l2_normalized")
        result[name] = [np.asarray(row[: offset + int(t)], dtype=np.float32).copy()
                        for row, t in zip(rows, out.targets)]
    return result
