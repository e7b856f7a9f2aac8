"""What an analysis returns: one dataclass per kind (plain numpy arrays and token text) and one save / load.

:class:`Output` (causal LMs) is the base; :class:`MaskedLMOutput`, :class:`ClassifierOutput` and
:class:`Seq2SeqOutput` add what their kind has. :func:`load` gives back the class that was saved. Results build
their views (``out.rankings()``, ``out.primary_attributions()``, ...); views never import results.

>>> sorted(KINDS)  # doctest: +NORMALIZE_WHITESPACE
['ClassifierOutput', 'FeatureAttribution', 'LogitAttribution', 'LogitAttributions', 'MaskedLMOutput', 'Output',
 'PatchingResult', 'PromptPair', 'Seq2SeqOutput', 'SteeringResult']
"""

from pathlib import Path

from .classifier import ClassifierOutput
from .explore import explorer_traits  # (also lets ew.Explorer(out) read an output)
from .factors import NMFResult
from .feature_attribution import FeatureAttribution
from .logit_attribution import LogitAttribution
from .logit_attributions import LogitAttributions
from .masked_lm import MaskedLMOutput
from .output import Output
from .patching import PatchingResult
from .prompt_pair import PromptPair, compare
from .seq2seq import Seq2SeqOutput
from .steering import SteeringResult
from .storage import read_result, save_result

#: Every result kind, by the name written into its file.
KINDS: dict[str, type] = {cls.__name__: cls for cls in (Output, MaskedLMOutput, ClassifierOutput, Seq2SeqOutput,
                                                         PatchingResult, PromptPair, LogitAttribution,
                                                         LogitAttributions, FeatureAttribution, SteeringResult)}


def load(path: str | Path) -> Output:
    """Read a result written by ``out.save(path)``, as the class that was saved, every field intact. The model is
    not needed (``out.attach(lm)`` reconnects it for watch_ranks). Example: ``out = ew.load("run.npz")``."""
    return read_result(path, KINDS)

__all__ = ["KINDS", "ClassifierOutput", "LogitAttribution", "LogitAttributions", "MaskedLMOutput", "NMFResult", "Output",
           "PatchingResult", "Seq2SeqOutput", "PromptPair", "compare", "load", "save_result", "FeatureAttribution",
           "SteeringResult"]
