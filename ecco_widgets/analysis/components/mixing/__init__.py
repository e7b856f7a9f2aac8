"""Context mixing: how each token's representation mixes in the others, read from the model's internals rather than
embedding gradients. Three measures, each an attribution method of the one engine (``"value_zeroing"``,
``"alti_logit"``, ``"rollout"`` in :data:`ecco_widgets.analysis.attribution.METHODS`): value zeroing
(value_zeroing.py), ALTI-Logit (alti.py), attention rollout (rollout.py), over the one hooked forward of
internals.py, on the families of layout.py."""

from .alti import alti_logit
from .internals import LayerRecord, MixingMatrices, ModelInternals, run_layers
from .layout import FAMILIES, MixingLayout, mixing_layout
from .rollout import attention_rollout
from .value_zeroing import value_zeroing

__all__ = ["FAMILIES", "LayerRecord", "MixingLayout", "MixingMatrices", "ModelInternals", "alti_logit",
           "attention_rollout", "mixing_layout", "run_layers", "value_zeroing"]
