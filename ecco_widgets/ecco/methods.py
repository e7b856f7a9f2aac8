"""Ecco's attribution method names, checked and mapped to this project's, and a method computed after the fact.

>>> ATTRIBUTION_ALIASES["integrated_gradients"], ATTRIBUTION_ALIASES["gradient"]
('ig', 'saliency')
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError, NotAvailableError

#: Ecco's method names (and captum's long names) -> this project's
ATTRIBUTION_ALIASES = {"ig": "ig", "integrated_gradients": "ig", "grad_x_input": "grad_x_input",
                       "saliency": "saliency", "gradient": "saliency"}
#: Ecco listed these captum methods; none of them is implemented here
UNSUPPORTED_ATTRIBUTIONS = ("dl", "deep_lift", "dls", "deep_lift_shap", "gb", "guided_backprop", "gg",
                            "guided_gradcam", "deconv", "deconvolution", "lrp", "layer_relevance_propagation")

def check_attribution(attribution: Any) -> dict[str, str]:
    """{Ecco's name: native method} for an Ecco ``attribution=[...]`` list (InputError for what is not offered)."""
    if attribution is None:
        return {}
    if isinstance(attribution, str) or not isinstance(attribution, (list, tuple)):
        raise InputError(f"attribution must be a list of method names such as ['ig', 'grad_x_input'], got "
                         f"{attribution!r}.")
    methods = {}
    for name in attribution:
        if name in UNSUPPORTED_ATTRIBUTIONS:
            raise InputError(f"attribution method {name!r} (captum's) is not offered by ecco_widgets; use 'ig', "
                             "'grad_x_input' or 'saliency' (or, natively, 'occlusion', 'sig', 'dig').")
        if name not in ATTRIBUTION_ALIASES:
            raise InputError(f"Unknown attribution method {name!r}; Ecco's names here are "
                             f"{sorted(ATTRIBUTION_ALIASES)}.")
        methods[name] = ATTRIBUTION_ALIASES[name]
    return methods


def lazy_saliency(output: Any, lm: Any, method: str) -> Any:
    """A native output with ``method`` computed over ``output``'s tokens (for ``output.saliency()`` when generate
    ran without attribution, as in Ecco's earliest notebooks)."""
    if lm.model_type != "causal":
        raise NotAvailableError(f"No {method!r} attributions in this output; pass attribution=[{method!r}] to "
                                "lm.generate.")
    native = output.native
    return lm.native.analyze_ids([int(i) for i in native.token_ids], n_input_tokens=native.n_input_tokens,
                                 attribution=(ATTRIBUTION_ALIASES[method],), lens_topk=1, keep_hidden_states=False)
