"""Hooks for activation patching: record modules' outputs during a forward (:func:`recording`), or write values
into them at chosen rows and positions (:func:`writing`); a module's output seen as (batch, n_tokens, width)
(:func:`as_rows`) and rebuilt with a new leading tensor (:func:`replace_first`).

>>> lin = nn.Linear(2, 2)
>>> with writing([lin], {0: (torch.tensor([0]), torch.tensor([1]), torch.zeros(1, 2))}, batch=1):
...     out = lin(torch.ones(1, 3, 2))
>>> out[0, 1].tolist()
[0.0, 0.0]
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from .capture import block_output, removed_on_exit, this_thread_only


def as_rows(output: torch.Tensor, batch: int) -> torch.Tensor:
    """A module's output as (batch, n_tokens, width): OPT's MLP works on (batch * n_tokens, width)."""
    return output if output.dim() == 3 else output.reshape(batch, -1, output.shape[-1])


def replace_first(output: Any, tensor: torch.Tensor) -> Any:
    """A module's forward ``output`` (a tensor, or a tuple / list led by one) with ``tensor`` in its place."""
    if isinstance(output, torch.Tensor):
        return tensor
    return (tensor, *output[1:]) if isinstance(output, tuple) else [tensor, *output[1:]]


@contextmanager
def recording(modules: list[nn.Module], batch: int = 1, keep_graph: bool = False) -> Iterator[list]:
    """Forward hooks that keep each module's output: ``records[i]`` is a detached copy of module i's output as
    (batch, n_tokens, width), or, with ``keep_graph``, ``(copy, live tensor)`` (the live one to take gradients at).
    Hooks are removed on exit.

    >>> lin = nn.Linear(2, 2)
    >>> with recording([lin]) as records:
    ...     _ = lin(torch.ones(1, 3, 2))
    >>> tuple(records[0].shape)
    (1, 3, 2)
    """
    records: list = [None] * len(modules)
    handles: list = []

    def hook(index: int):
        def keep(module, args, output):
            live = block_output(output)
            copy = as_rows(live.detach(), batch).clone()  # a copy: Falcon adds to its MLP output in place
            records[index] = (copy, live) if keep_graph else copy
        return keep

    with removed_on_exit(handles):
        handles.extend(m.register_forward_hook(this_thread_only(hook(i))) for i, m in enumerate(modules))
        yield records


@contextmanager
def writing(modules: list[nn.Module], plans: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
            batch: int) -> Iterator[None]:
    """Forward hooks that patch outputs: for ``plans[i] = (rows, positions, values)`` (int (k,), int (k,),
    (k, width)), module i's output gets ``values[j]`` at ``[rows[j], positions[j]]`` of its (batch, n_tokens, width)
    view; the other rows and positions run unchanged. Hooks are removed on exit."""
    handles: list = []

    def hook(rows: torch.Tensor, positions: torch.Tensor, values: torch.Tensor):
        def write(module, args, output):
            live = block_output(output)
            patched = as_rows(live, batch).clone()
            patched[rows.to(patched.device), positions.to(patched.device)] = values.to(patched.device, patched.dtype)
            return replace_first(output, patched.reshape(live.shape))
        return write

    with removed_on_exit(handles):
        handles.extend(modules[i].register_forward_hook(this_thread_only(hook(*plan))) for i, plan in plans.items())
        yield
