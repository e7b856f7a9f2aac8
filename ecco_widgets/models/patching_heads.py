"""Head-level activation patching (``ew.patching(..., points="head")``): restore one attention head's output of the
clean run in the corrupted run. A head's output is its ``head_dim``-wide slice of the attention output projection's
input (o_proj, c_proj, dense, out_proj: the heads side by side), so the patch overwrites that slice, at one position,
before the projection runs; many patches run in one batched forward, as for the other points.

The projections are found through the adapter and checked as direct logit attribution checks them
(:func:`ecco_widgets.analysis.components.attention_outputs`): a model whose head is not an exact slice is refused.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..analysis.components import attention_outputs
from ..analysis.patching import logit_difference
from ..capture import this_thread_only
from ..errors import NotAvailableError

WHAT = "Head-level patching (points='head')"


def _input_of(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _with_input(args: tuple, kwargs: dict, tensor: torch.Tensor) -> tuple[tuple, dict]:
    if args:
        return (tensor, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": tensor}


@contextmanager
def _pre_hooks(modules: list[nn.Module], make: Callable[[int], Any]) -> Iterator[None]:
    handles = [m.register_forward_pre_hook(this_thread_only(make(i)), with_kwargs=True)
               for i, m in enumerate(modules)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class HeadRunner:
    """The patched forwards of points="head": the same interface as the other points' runner (record, patched,
    gradients, estimate, cells), on the inputs of the attention output projections."""

    def __init__(self, spec: Any, logits: Callable[..., torch.Tensor]):
        self.spec, self.logits = spec, logits
        self.modules, self.n_heads = attention_outputs(spec, WHAT)
        self.head_dim = int(spec.head_dim)

    def _recorded(self, records: list) -> list:
        missing = [layer for layer, r in enumerate(records) if r is None]
        if missing:
            raise NotAvailableError(f"{WHAT} is not available for this model: the attention output projections of "
                                    f"blocks {missing[:4]} did not run as modules (a fused path), so no head can be "
                                    "restored there.")
        return records

    def _keeping(self, records: list, keep_graph: bool):
        def make(i: int):
            def keep(module, args, kwargs):
                live = _input_of(args, kwargs)
                copy = live.detach().reshape(live.shape[0], -1, live.shape[-1]).clone()
                records[i] = (copy, live) if keep_graph else copy
            return keep
        return _pre_hooks(self.modules, make)

    def record(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the projections' inputs (n_layers, n, n_heads * head_dim), logits (vocab,)) of one run, no graph."""
        records: list = [None] * len(self.modules)
        with torch.inference_mode(), self._keeping(records, False):
            logits = self.logits(ids)[0]
        return torch.stack([r[0] for r in self._recorded(records)]), logits

    def patched(self, ids: torch.Tensor, cells: list[tuple[int, int, int]], clean: torch.Tensor) -> torch.Tensor:
        """Logits (len(cells), vocab): row j is the corrupted run with cell (layer, head, position) j restored."""
        by_layer: dict[int, list[int]] = {}
        for row, (layer, _, _) in enumerate(cells):
            by_layer.setdefault(layer, []).append(row)
        plans = {}
        for layer, rows in by_layer.items():
            heads, positions = (torch.tensor([cells[r][k] for r in rows])[:, None] for k in (1, 2))
            columns = heads * self.head_dim + torch.arange(self.head_dim)  # (k, head_dim)
            plans[layer] = (torch.tensor(rows)[:, None], positions, columns, clean[layer, positions, columns])
        batch = len(cells)

        def make(i: int):
            if i not in plans:
                return lambda module, args, kwargs: None
            rows, positions, columns, values = plans[i]

            def write(module, args, kwargs):
                live = _input_of(args, kwargs)
                patched = live.reshape(batch, -1, live.shape[-1]).clone()
                device = patched.device
                patched[rows.to(device), positions.to(device), columns.to(device)] = values.to(device, patched.dtype)
                return _with_input(args, kwargs, patched.reshape(live.shape))
            return write

        with torch.inference_mode(), _pre_hooks(self.modules, make):
            return self.logits(ids.expand(batch, -1))

    def gradients(self, ids: torch.Tensor, answer: int, foil: int,
                  check: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the projections' inputs, d LD / d inputs), each (n_layers, n, width), and the logits (vocab,) of one run
        with a graph: one forward, ``check(logits)`` (which may raise), one backward."""
        records: list = [None] * len(self.modules)
        with torch.inference_mode(False), torch.enable_grad():
            embeds = self.spec.embedding(ids).detach().requires_grad_(True)
            with self._keeping(records, True):
                logits = self.logits(ids, inputs_embeds=embeds)[0]
            check(logits.detach())
            self._recorded(records)
            grads = torch.autograd.grad(logit_difference(logits, answer, foil), [r[1] for r in records])
        return (torch.stack([r[0][0] for r in records]),
                torch.stack([g.detach().reshape(r[0].shape)[0] for r, g in zip(records, grads)]), logits.detach())

    def estimate(self, clean: torch.Tensor, corrupted: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """(clean - corrupted) . gradient summed over each head's slice: (n_layers, n_heads, n)."""
        n_layers, n, _ = clean.shape
        product = (clean.float() - corrupted.float()) * grads.float()
        return product.reshape(n_layers, n, self.n_heads, self.head_dim).sum(-1).transpose(1, 2)

    def cells(self, n_layers: int, positions: list[int]) -> tuple[list[tuple[int, int, int]], tuple[int, ...]]:
        """Every (layer, head, position) patched, and the result's shape (n_layers, n_heads, len(positions))."""
        cells = [(layer, head, p) for layer in range(n_layers) for head in range(self.n_heads) for p in positions]
        return cells, (n_layers, self.n_heads, len(positions))
