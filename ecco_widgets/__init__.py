"""ecco_widgets: see how a Transformer language model arrives at its words.

>>> import ecco_widgets as ew
>>> ew.__version__
'0.1.0'
"""

from .adapter import ModelSpec
from .classifier import ClassifierOutput, SequenceClassifier, classifier
from .errors import CompletenessWarning, EccoWidgetsError, InputError, ModelLoadError, NotAvailableError, UnsupportedModelError
from .lm import LanguageModel
from .loading import demo_model, from_pretrained
from .masked_lm import MaskedLanguageModel, MaskedLMOutput, masked_lm
from .result import Output
from .seq2seq import Seq2SeqLanguageModel, Seq2SeqOutput, load_seq2seq, seq2seq
from .storage import load
from .export import save_html, to_html
from .views import (AttentionView, FactorExplorer, LayerPredictions, NeuronHeatmap, RankGrid, RankWatch,
                    SaliencyView)
from . import analysis

__version__ = "0.1.0"

__all__ = [
    "AttentionView", "FactorExplorer", "LayerPredictions", "NeuronHeatmap", "RankGrid", "RankWatch", "SaliencyView",
    "analysis", "save_html", "to_html", "ClassifierOutput", "SequenceClassifier", "classifier",
    "CompletenessWarning", "EccoWidgetsError", "InputError", "LanguageModel", "MaskedLMOutput", "MaskedLanguageModel", "ModelLoadError",
    "ModelSpec", "NotAvailableError", "Output", "UnsupportedModelError", "demo_model", "from_pretrained", "load",
    "masked_lm", "Seq2SeqLanguageModel", "Seq2SeqOutput", "load_seq2seq", "seq2seq",
]
