"""Model kinds, siblings over one base (:class:`ModelBase`): each loads, checks its input, runs the capture and the
analyses, and returns its result kind.

================================  ==============================  ===========================
kind                              build it with                   returns
================================  ==============================  ===========================
causal LM (:class:`LanguageModel`)  ``from_pretrained``, ``demo_model``  ``results.Output``
masked LM                         ``masked_lm``                   ``results.MaskedLMOutput``
encoder-decoder                   ``seq2seq``                     ``results.Seq2SeqOutput``
sequence classifier               ``classifier``                  ``results.ClassifierOutput``
================================  ==============================  ===========================

>>> issubclass(LanguageModel, ModelBase) and issubclass(MaskedLanguageModel, ModelBase)
True
"""

from .base import ModelBase
from .causal_lm import LanguageModel, from_pretrained
from .classifier import SequenceClassifier, classifier
from .demo import demo_model
from .masked_lm import MaskedLanguageModel, masked_lm
from .seq2seq import Seq2SeqLanguageModel, seq2seq

__all__ = ["LanguageModel", "MaskedLanguageModel", "ModelBase", "Seq2SeqLanguageModel", "SequenceClassifier",
           "classifier", "demo_model", "from_pretrained", "masked_lm", "seq2seq"]
