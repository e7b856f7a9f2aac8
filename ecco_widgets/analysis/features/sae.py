"""One sparse dictionary (an SAE or a transcoder) and its encode / decode, computed as its producer computes it.

Weights are kept in SAELens' orientation whatever the file: ``W_enc`` (d_in, d_sae), ``W_dec`` (d_sae, d_out),
``b_enc`` (d_sae,), ``b_dec`` (d_out,), ``W_skip`` (d_out, d_in). ``architecture`` is the activation rule:

- ``standard``: relu(pre), pre = x' @ W_enc + b_enc, x' = norm_in(x) - b_dec (b_dec only where
  ``apply_b_dec_to_input``; never for a transcoder);
- ``topk``: pre (times each decoder row's norm where ``rescale_acts_by_decoder_norm``), its k largest kept and
  relu'd, the rest 0 (sparsify: relu then the k largest; the same dense result);
- ``jumprelu``: relu(pre) where pre > threshold, else 0 (BatchTopK SAEs are saved this way, one threshold);
- ``gated``: 1[x' @ W_enc + b_gate > 0] * relu(x' @ (W_enc * exp(r_mag)) + b_mag);
- ``groupmax`` (sparsify): relu(pre) split into k groups of d_sae / k latents, each group's largest kept.

decode: acts (divided by the decoder norms where rescaled) @ W_dec + b_dec, the input normalisation undone (SAEs,
not SAELens transcoders), plus ``x_in @ W_skip.T`` (+ ``b_skip``) for a skip transcoder.

>>> import torch
>>> sae = SAE(W_enc=torch.eye(2), W_dec=torch.eye(2), b_enc=torch.zeros(2), b_dec=torch.zeros(2))
>>> sae.encode(torch.tensor([[1.0, -1.0]])).tolist(), sae.d_in, sae.d_sae
([[1.0, 0.0]], 2, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...errors import InputError
from .labels import Labels, labels_beside
from .loading import read, read_many

ARCHITECTURES = ("standard", "topk", "jumprelu", "gated", "groupmax")
NORMALIZATIONS = ("none", "constant_norm_rescale", "layer_norm", "expected_average_only_in")
LAYER_NORM_EPS = 1e-5  # SAELens' run_time_activation_ln_in


@dataclass(eq=False)
class SAE:
    """A sparse dictionary read from a producer's files (``SAE.load``); see the module's docstring for the math."""

    W_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    b_enc: torch.Tensor | None = None
    architecture: str = "standard"
    k: int | None = None
    threshold: torch.Tensor | None = None
    b_gate: torch.Tensor | None = None
    b_mag: torch.Tensor | None = None
    r_mag: torch.Tensor | None = None
    W_skip: torch.Tensor | None = None
    b_skip: torch.Tensor | None = None
    transcoder: bool = False
    apply_b_dec_to_input: bool = True
    rescale_acts_by_decoder_norm: bool = False
    normalization: str = "none"
    #: sparsify adds the encoder bias inside its matmul (F.linear): one rounding in bfloat16 where SAELens has two
    fused_encoder_bias: bool = False
    #: SAELens' transcoders normalise their input but do not undo it on the output; its SAEs do.
    normalize_output: bool = True
    #: expected_average_only_in's factor, folded into the weights at load as SAELens folds it (x scaled by it).
    scale_factor: float | None = None
    #: the producer's format: "saelens", "sparsify", "gemma_scope", "gemma_scope_2" ("" when built by hand)
    format: str = ""
    #: where the dictionary reads (and, for a transcoder, writes), as the file names it: hook_name, hook_name_out,
    #: layer, model_name, hookpoint, ...
    site: dict[str, Any] = field(default_factory=dict)
    #: {latent: description} (labels.py): set by hand, Labels.read(export), saved by save_labels, read back by load
    labels: Labels = field(default_factory=Labels)
    #: the config as the file gave it (after SAELens' pre-6.0 renames)
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise InputError(f"Unknown SAE architecture {self.architecture!r}; known: {', '.join(ARCHITECTURES)}.")
        if self.normalization not in NORMALIZATIONS:
            raise InputError(f"Unknown activation normalisation {self.normalization!r}; known: "
                             f"{', '.join(NORMALIZATIONS)}.")
        if self.normalization == "expected_average_only_in":
            raise InputError("expected_average_only_in is folded into the weights at load (SAE.load(..., "
                             "scale_factor=...)); an SAE built by hand takes the folded weights.")
        self._check_shapes()
        self.labels = Labels(self.labels, d_sae=self.d_sae)

    # ----- sizes -----
    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def d_out(self) -> int:
        return int(self.W_dec.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    def tensors(self) -> dict[str, torch.Tensor]:
        """The weights by name (those this dictionary has)."""
        names = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold", "b_gate", "b_mag", "r_mag", "W_skip", "b_skip")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> SAE:
        """Moves (and casts) every weight in place; returns self."""
        for name, tensor in self.tensors().items():
            setattr(self, name, tensor.to(device=device, dtype=dtype))
        return self

    def _check_shapes(self) -> None:
        d_in, d_sae, d_out = self.d_in, self.d_sae, self.d_out
        want = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_out), "b_enc": (d_sae,), "b_dec": (d_out,),
                "threshold": (d_sae,), "b_gate": (d_sae,), "b_mag": (d_sae,), "r_mag": (d_sae,),
                "W_skip": (d_out, d_in), "b_skip": (d_out,)}
        wrong = {n: (tuple(t.shape), want[n]) for n, t in self.tensors().items() if tuple(t.shape) != want[n]}
        if wrong:
            found = "; ".join(f"{n} is {s}, expected {w}" for n, (s, w) in wrong.items())
            raise InputError(f"The dictionary's weights do not fit together (d_in={d_in}, d_sae={d_sae}, "
                             f"d_out={d_out}): {found}.")
        needs = {"standard": ("b_enc",), "topk": ("b_enc",), "groupmax": ("b_enc",),
                 "jumprelu": ("b_enc", "threshold"), "gated": ("b_gate", "b_mag", "r_mag")}[self.architecture]
        missing = [n for n in needs if getattr(self, n) is None]
        if missing:
            raise InputError(f"A {self.architecture} dictionary needs {', '.join(missing)}; it is missing.")
        if self.architecture in ("topk", "groupmax") and not (isinstance(self.k, int) and 1 <= self.k <= d_sae):
            raise InputError(f"A {self.architecture} dictionary needs k in 1..d_sae={d_sae}; it has k={self.k!r}.")
        if self.architecture == "groupmax" and d_sae % self.k:
            raise InputError(f"groupmax needs d_sae={d_sae} divisible by k={self.k}.")
        if self.apply_b_dec_to_input and not self.transcoder and d_out != d_in:
            raise InputError(f"apply_b_dec_to_input subtracts b_dec ({d_out},) from the input ({d_in},): an SAE "
                             "whose output width differs from its input's is a transcoder.")

    # ----- the math -----
    def _input(self, x: Any, name: str = "x") -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.ndim < 1 or x.shape[-1] != self.d_in:
            raise InputError(f"{name} must end in d_in={self.d_in} (..., {self.d_in}); got {tuple(x.shape)}.")
        return x.to(device=self.device, dtype=self.dtype)

    def _normalize_in(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalization == "constant_norm_rescale":
            return x * ((self.d_in ** 0.5) / x.norm(dim=-1, keepdim=True))
        if self.normalization == "layer_norm":
            centred = x - x.mean(dim=-1, keepdim=True)
            return centred / (centred.std(dim=-1, keepdim=True) + LAYER_NORM_EPS)
        return x

    def _normalize_out(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.normalization == "constant_norm_rescale":
            return y / ((self.d_in ** 0.5) / x.norm(dim=-1, keepdim=True))
        if self.normalization == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            return y * (x - mu).std(dim=-1, keepdim=True) + mu
        return y

    def pre_activations(self, x: Any) -> torch.Tensor:
        """x' @ W_enc + b_enc (for gated, the magnitude path's), before the activation rule."""
        sae_in = self._sae_in(self._input(x))
        if self.architecture == "gated":
            return sae_in @ (self.W_enc * self.r_mag.exp()) + self.b_mag
        return self._linear(sae_in)

    def _linear(self, sae_in: torch.Tensor) -> torch.Tensor:
        if self.fused_encoder_bias:
            return torch.nn.functional.linear(sae_in, self.W_enc.T, self.b_enc)
        return sae_in @ self.W_enc + self.b_enc

    def _sae_in(self, x: torch.Tensor) -> torch.Tensor:
        x = self._normalize_in(x)
        if self.apply_b_dec_to_input and not self.transcoder:
            x = x - self.b_dec
        return x

    def encode(self, x: Any) -> torch.Tensor:
        """The dictionary's activations of x (..., d_in) -> (..., d_sae), in the dictionary's dtype."""
        with torch.no_grad():
            sae_in = self._sae_in(self._input(x))
            if self.architecture == "gated":
                gate = (sae_in @ self.W_enc + self.b_gate > 0).to(self.dtype)
                return gate * torch.relu(sae_in @ (self.W_enc * self.r_mag.exp()) + self.b_mag)
            pre = self._linear(sae_in)
            if self.architecture == "standard":
                return torch.relu(pre)
            if self.architecture == "jumprelu":
                return torch.relu(pre) * (pre > self.threshold).to(pre.dtype)
            if self.architecture == "groupmax":
                values, index = torch.relu(pre).unflatten(-1, (self.k, -1)).max(dim=-1)
                index = index + torch.arange(0, self.d_sae, self.d_sae // self.k, device=pre.device)
                return torch.zeros_like(pre).scatter_(-1, index, values)
            if self.rescale_acts_by_decoder_norm:
                pre = pre * self.W_dec.norm(dim=-1)
            values, index = torch.topk(pre, k=self.k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter_(-1, index, values.relu())

    def decode(self, acts: Any, x_in: Any = None) -> torch.Tensor:
        """The reconstruction (..., d_out) of activations (..., d_sae). ``x_in``, the input that was encoded, is
        needed where the output depends on it: a skip connection, or a normalisation that is undone."""
        acts = torch.as_tensor(acts)
        if acts.ndim < 1 or acts.shape[-1] != self.d_sae:
            raise InputError(f"acts must end in d_sae={self.d_sae}; got {tuple(acts.shape)}.")
        undo = self.normalize_output and self.normalization in ("constant_norm_rescale", "layer_norm")
        if x_in is None and (undo or self.W_skip is not None):
            why = "its skip connection reads it" if self.W_skip is not None else \
                f"its {self.normalization} normalisation is undone with the input's statistics"
            raise InputError(f"decode(acts, x_in=...) needs the input that was encoded: {why}.")
        with torch.no_grad():
            acts = acts.to(device=self.device, dtype=self.dtype)
            if self.rescale_acts_by_decoder_norm:
                acts = acts / self.W_dec.norm(dim=-1)
            out = acts @ self.W_dec + self.b_dec
            if x_in is not None and (undo or self.W_skip is not None):
                x = self._input(x_in, "x_in")
                if x.shape[:-1] != out.shape[:-1]:
                    raise InputError(f"x_in {tuple(x.shape)} and acts {tuple(acts.shape)} must have the same rows.")
                if undo:
                    out = self._normalize_out(out, x)
                if self.W_skip is not None:
                    out = out + x @ self.W_skip.T
                    if self.b_skip is not None:
                        out = out + self.b_skip
            return out

    def forward(self, x: Any) -> torch.Tensor:
        """decode(encode(x), x_in=x)."""
        return self.decode(self.encode(x), x_in=x)

    __call__ = forward

    def fvu(self, x: Any, target: Any = None) -> float:
        """Fraction of variance unexplained of the reconstruction of x against ``target`` (x itself for an SAE;
        a transcoder's target is the output site's activations): sum |target - x_hat|^2 / sum |target - mean|^2,
        the mean over rows, as sparsify computes it."""
        if target is None:
            if self.transcoder:
                raise InputError("A transcoder reconstructs another site: fvu(x, target) needs that site's "
                                 "activations as target.")
            target = x
        return fvu(torch.as_tensor(target), self.forward(x))

    @classmethod
    def load(cls, path: str | Path, scale_factor: float | None = None, device: str | torch.device = "cpu",
             dtype: torch.dtype | str | None = None, hookpoint: str | None = None) -> SAE:
        """A dictionary from a folder or a hub id (``owner/name[/sub/folder]``, through huggingface_hub):
        SAELens (cfg.json + sae_weights.safetensors), sparsify (cfg.json + sae.safetensors, or a repository of
        hookpoint folders: name one with ``hookpoint``), Gemma Scope (params.npz) or Gemma Scope 2
        (params.safetensors + config.json). ``scale_factor``: expected_average_only_in's factor, which the files do
        not hold. ``dtype``: None computes in the producer's dtype (SAELens: the config's; others: the file's)."""
        sae = cls(**read(path, scale_factor=scale_factor, dtype=dtype, hookpoint=hookpoint)).to(device=device)
        sae.labels = labels_beside(sae.path, sae.d_sae)  # labels.json in its folder, when saved there
        return sae

    @classmethod
    def load_many(cls, path: str | Path, device: str | torch.device = "cpu",
                  dtype: torch.dtype | str | None = None) -> dict[str, SAE]:
        """Every hookpoint's dictionary of a sparsify repository (folder or hub id), by hookpoint, natural order."""
        found = {name: cls(**kwargs).to(device=device) for name, kwargs in read_many(path, dtype=dtype).items()}
        for sae in found.values():
            sae.labels = labels_beside(sae.path, sae.d_sae)
        return found

    def save_labels(self, folder: str | Path | None = None) -> Path:
        """Writes ``labels`` to ``folder/labels.json`` (default: the folder it was loaded from), where ``SAE.load``
        reads them back; returns the file's path."""
        if folder is None and self.path is None:
            raise InputError("This SAE was not loaded from a folder: save_labels(folder) needs the folder.")
        return self.labels.save(self.path if folder is None else folder)

    def save(self, folder: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Writes this SAE in SAELens' layout (cfg.json + sae_weights.safetensors; :mod:`.saving`), its labels
        beside it when it has any; returns the folder."""
        from .saving import save_saelens

        folder = save_saelens(self, folder, metadata)
        if len(self.labels):
            self.labels.save(folder)
        return folder

    @classmethod
    def fit(cls, lm: Any, texts: Any, site: Any, kind: str = "topk", width: int | None = None, k: int = 32,
            tokens: int | None = None, **options: Any) -> SAE:
        """Trains a TopK / BatchTopK / JumpReLU SAE at ``site`` on ``texts`` (:func:`.fit.fit`: harvest, Adam,
        checkpoints in ``out``, resumable; SAELens layout), e.g.
        ``ew.SAE.fit(lm, texts, "blocks.15.hook_resid_post", width=4608, k=32, out="sae/")``."""
        from .fit import fit

        return fit(lm, texts, site, kind=kind, width=width, k=k, tokens=tokens, sae_type=cls, **options)

    def evaluate(self, lm: Any, texts: Any, site: Any = None, **options: Any) -> dict[str, Any]:
        """FVU, L0, dead / dense latents and cross-entropy loss recovered on ``texts`` (:mod:`.evaluate`)."""
        from .evaluate import evaluate

        return evaluate(self, lm, texts, site=site, **options)

    def __repr__(self) -> str:
        kind = "transcoder" if self.transcoder else "SAE"
        extra = f", k={self.k}" if self.k else ""
        where = self.site.get("hook_name") or self.site.get("hookpoint") or ""
        return (f"SAE({self.format or 'hand-built'} {self.architecture} {kind}, d_in={self.d_in}, "
                f"d_sae={self.d_sae}{extra}, normalization={self.normalization!r}, dtype={self.dtype}"
                f"{', site=' + repr(where) if where else ''})")


def fvu(target: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """sum |target - reconstruction|^2 / sum |target - target.mean(rows)|^2, rows flattened, in float64."""
    t = target.detach().reshape(-1, target.shape[-1]).double()
    r = reconstruction.detach().reshape(-1, reconstruction.shape[-1]).to(t)
    if t.shape != r.shape:
        raise InputError(f"target {tuple(target.shape)} and reconstruction {tuple(reconstruction.shape)} differ.")
    total = (t - t.mean(0)).pow(2).sum()
    return float((t - r).pow(2).sum() / total) if total > 0 else float("nan")
