"""The tuned lens (Belrose et al. 2023): one affine translator per layer, trained so that decoding a layer's hidden
state gives the distribution of the final layer.

A lens over a model with L blocks holds L translators. Translator ``i`` reads ``hidden_states[i]`` in Hugging Face's
numbering: 0 is the embeddings, ``i`` the output of block ``i - 1``; the last block's output needs none (it is the
model's own prediction). Each translator is residual, ``h + W h + b``, initialised at W = 0, b = 0 (the logit lens).

Files use the layout of the ``tuned-lens`` package (:mod:`.tuned_lens_files`), so lenses trained by either tool
load in both.

>>> import tempfile
>>> lens = TunedLens.identity(n_layers=2, d_model=4)
>>> back = TunedLens.load(lens.save(tempfile.mkdtemp()))
>>> back.n_layers, back.d_model, tuple(back.weights.shape)
(2, 4, (2, 4, 4))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import InputError, NonFiniteError
from .tuned_lens_files import default_config, read_lens, unembedding_hash, write_lens


class TunedLens:
    """Per-layer affine translators; see the module docstring. Build one with :meth:`fit` or :meth:`load`.

    weights: float32 (n_layers, d_model, d_model); biases: float32 (n_layers, d_model); config: the tuned-lens
    config dict. Example: ``tl = ew.TunedLens.fit(lm, texts); out = lm.analyze(text, lens=tl)``.
    """

    def __init__(self, weights: torch.Tensor, biases: torch.Tensor, config: dict[str, Any] | None = None,
                 source: str = ""):
        if weights.dim() != 3 or weights.shape[1] != weights.shape[2] or biases.shape != weights.shape[:2]:
            raise InputError(f"A tuned lens needs weights (n_layers, d, d) and biases (n_layers, d); got "
                             f"{tuple(weights.shape)} and {tuple(biases.shape)}.")
        self.weights = weights.detach().float().cpu()
        self.biases = biases.detach().float().cpu()
        for name, values in (("weights", self.weights), ("biases", self.biases)):
            if not torch.isfinite(values).all():
                layers = sorted({int(i) for i in torch.nonzero(~torch.isfinite(values))[:, 0].tolist()})
                raise NonFiniteError(f"The tuned lens's {name} hold NaN or infinite values (translators {layers[:8]}"
                                     f"{' ...' if len(layers) > 8 else ''}{', ' + source if source else ''}); every "
                                     "cell it translated would be meaningless. Refit it (ew.TunedLens.fit) or load "
                                     "another file.")
        self.config = {**default_config(self.n_layers, self.d_model), **(config or {})}
        self.source = source
        self.history: dict[str, list[float]] = {}  # training loss per step (fit only)

    def __repr__(self) -> str:
        model = self.config.get("base_model_name_or_path") or "?"
        return f"TunedLens(model={model!r}, layers={self.n_layers}, d_model={self.d_model})"

    @classmethod
    def identity(cls, n_layers: int, d_model: int, **config: Any) -> "TunedLens":
        """The untrained lens (every translator W = 0, b = 0): it decodes exactly as the logit lens."""
        return cls(torch.zeros(n_layers, d_model, d_model), torch.zeros(n_layers, d_model), config)

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.weights.shape[-1])

    @property
    def name(self) -> str:
        """How results name this lens: ``tuned:<folder>`` when it was loaded, ``tuned`` otherwise."""
        return f"tuned:{self.source}" if self.source else "tuned"

    # ----- use -----
    def check_model(self, spec: Any) -> None:
        """InputError unless this lens fits the model of ``spec`` (an adapter ResolvedSpec): as many translators as
        blocks, the same width and (when the lens records it) the same unembedding fingerprint."""
        weight = getattr(spec.unembedding, "weight", None)
        d_model = int(weight.shape[-1]) if weight is not None else self.d_model
        if self.n_layers != spec.n_layers or self.d_model != d_model:
            raise InputError(f"This tuned lens has {self.n_layers} translators of width {self.d_model}, the model "
                             f"{spec.n_layers} blocks of width {d_model}: it was trained for another model "
                             f"({self.config.get('base_model_name_or_path') or 'unknown'}). Fit one for this model "
                             "with ew.TunedLens.fit(lm, texts).")
        expected = self.config.get("unembed_hash")
        if expected and weight is not None and weight.device.type != "meta" and unembedding_hash(weight) != expected:
            raise InputError("This tuned lens was trained for a model with a different unembedding (its "
                             "unembed_hash does not match): its translators would decode into the wrong vocabulary "
                             "space. Fit one for this model with ew.TunedLens.fit(lm, texts).")

    def translate(self, block_hidden: torch.Tensor, first_row: int = 1) -> torch.Tensor:
        """Translated hidden states, float32, for rows that are ``hidden_states[first_row:]``.

        block_hidden: (n_rows, n_positions, d_model); row r is hidden_states[first_row + r] (first_row=1: block
        outputs, as the lens grid shows them). Rows with no translator (the last block's output) pass unchanged.
        """
        h = block_hidden.float()
        n_rows = h.shape[0]
        index = torch.arange(first_row, first_row + n_rows)
        has = index < self.n_layers
        out = h.clone()
        if bool(has.any()):
            rows = torch.nonzero(has)[:, 0]
            w = self.weights[index[rows]].to(h.device)  # (r, d, d)
            b = self.biases[index[rows]].to(h.device)
            out[rows] = h[rows] + torch.einsum("rpd,red->rpe", h[rows], w) + b[:, None]
        return out

    # ----- files -----
    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``params.pt`` (the tuned-lens package's layout) into ``folder``; returns it."""
        return write_lens(folder, self.weights, self.biases, self.config)

    @classmethod
    def load(cls, path_or_id: str | Path) -> "TunedLens":
        """A lens from a folder (``config.json`` + ``params.pt``), or, given a model id such as ``"gpt2"``, the
        lens the tuned-lens package publishes for it (downloaded through huggingface_hub when the hub is reachable).
        """
        weights, biases, config, folder = read_lens(path_or_id)
        return cls(weights, biases, config, source=str(folder))

    @classmethod
    def fit(cls, lm: Any, texts: str | Sequence[str], **options: Any) -> "TunedLens":
        """Train a lens for ``lm`` on ``texts``; options and defaults as in
        :func:`ecco_widgets.analysis.tuned_lens_fit.fit_translators` (steps, batch_tokens, lr, ...)."""
        from .tuned_lens_fit import fit_translators

        weights, biases, history = fit_translators(lm, texts, **options)
        config = {"base_model_name_or_path": getattr(lm, "name", ""),
                  "unembed_hash": unembedding_hash(lm.spec.unembedding.weight)}
        lens = cls(weights, biases, config)
        lens.history = history
        return lens
