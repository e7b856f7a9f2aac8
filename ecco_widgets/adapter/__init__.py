"""Finding the parts of a model by inspection: where the embedding, blocks, final norm, head and MLPs live.

:mod:`.spec` has :class:`ModelSpec` (the user's override) and :func:`discover_spec` (causal LMs and encoders);
:mod:`.heads` finds heads that are more than one module (masked-LM heads, encoder-decoder heads) and checks each one
against the model's own logits.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100))).n_layers
2
"""

from .heads import HEAD_RECIPES, Seq2SeqSpec, check_seq2seq_model, discover_seq2seq, find_mlm_head
from .spec import DecodeFn, ModelSpec, ResolvedSpec, discover_spec, model_device

__all__ = ["DecodeFn", "HEAD_RECIPES", "ModelSpec", "ResolvedSpec", "Seq2SeqSpec", "check_seq2seq_model",
           "discover_seq2seq", "discover_spec", "find_mlm_head", "model_device"]
