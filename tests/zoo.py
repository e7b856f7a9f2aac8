"""Tiny random-weight causal LMs of many families, built from configs (no downloads).

>>> model = build("gpt2")
>>> type(model).__name__
'GPT2LMHeadModel'
"""

from __future__ import annotations

import torch
import transformers as tf

VOCAB = 320
SMALL = dict(vocab_size=VOCAB)


def _configs() -> dict[str, tuple[str, str, dict]]:
    llama_like = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, **SMALL)
    return {
        "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_layer=3, n_embd=64, n_head=4, n_positions=128, **SMALL)),
        "gpt_neo": ("GPTNeoConfig", "GPTNeoForCausalLM", dict(num_layers=3, hidden_size=64, num_heads=4,
                    attention_types=[[["global", "local"], 1], [["global"], 1]], max_position_embeddings=128,
                    window_size=8, **SMALL)),
        "gptj": ("GPTJConfig", "GPTJForCausalLM", dict(n_layer=3, n_embd=64, n_head=4, rotary_dim=8,
                 n_positions=128, **SMALL)),
        "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(num_hidden_layers=3, hidden_size=64,
                     num_attention_heads=4, intermediate_size=128, max_position_embeddings=128, **SMALL)),
        "opt": ("OPTConfig", "OPTForCausalLM", dict(num_hidden_layers=3, hidden_size=64, num_attention_heads=4,
                ffn_dim=128, word_embed_proj_dim=32, max_position_embeddings=128, **SMALL)),
        "bloom": ("BloomConfig", "BloomForCausalLM", dict(n_layer=3, hidden_size=64, n_head=4, **SMALL)),
        "llama": ("LlamaConfig", "LlamaForCausalLM", llama_like),
        "mistral": ("MistralConfig", "MistralForCausalLM", llama_like),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", llama_like),
        "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(llama_like, pad_token_id=0)),
        "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(llama_like, head_dim=16)),
        "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(llama_like, head_dim=16, final_logit_softcapping=5.0,
                   sliding_window=16)),
        "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(llama_like, head_dim=16, sliding_window=16)),
        "falcon": ("FalconConfig", "FalconForCausalLM", dict(num_hidden_layers=3, hidden_size=64,
                   num_attention_heads=4, new_decoder_architecture=False, **SMALL)),
    }


FAMILIES = sorted(_configs())


def build(family: str, seed: int = 0) -> torch.nn.Module:
    """A random-weight model of ``family`` in eval mode, float32, eager attention-free defaults."""
    config_name, model_name, kwargs = _configs()[family]
    config = getattr(tf, config_name)(**kwargs)
    torch.manual_seed(seed)
    model = getattr(tf, model_name)(config)
    # random LayerNorm/RMSNorm weights, so a missing final norm cannot go unnoticed
    with torch.no_grad():
        for name, module in model.named_modules():
            if "norm" in type(module).__name__.lower() and getattr(module, "weight", None) is not None:
                module.weight.uniform_(0.5, 1.5)
    return model.eval()
