"""What identifies a model's numbers: a hash of its config, dtype and weights (a strided sample of each).

Two outputs of different models of one class, or a batch folder resumed with other weights or another dtype, differ
here; the name a model was loaded from does not tell them apart.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["model_fingerprint"]


def model_fingerprint(model: Any) -> str:
    """What determines a run's numbers, hashed: the model's config, its dtype and every parameter's name, shape,
    dtype and a strided sample of its values (up to 4,096 each). A folder of weights replaced in place, or another
    --dtype, gives another fingerprint, so a resume into the old run's folder is refused.

    >>> import torch
    >>> a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    >>> model_fingerprint(a) == model_fingerprint(a), model_fingerprint(a) == model_fingerprint(b)
    (True, False)
    """
    import torch

    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        digest.update(config.to_json_string(use_diff=False).encode())
    with torch.no_grad():
        for name, param in model.named_parameters():
            digest.update(f"{name}:{tuple(param.shape)}:{param.dtype}".encode())
            if param.device.type == "meta" or not param.numel():
                continue
            flat = param.detach().reshape(-1)
            step = max(1, flat.numel() // 4096)
            digest.update(flat[::step].float().cpu().numpy().tobytes())
    return digest.hexdigest()
