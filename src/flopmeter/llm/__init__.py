"""LLM mode: prefill and decode with a KV cache, cost versus length, training and MFU.

Orchestration over ``profile()``: several traces, exact fits, a roofline. No counting
of its own.
"""

from .cost import LLMCost, llm_cost
from .fit import Fit, Polynomial
from .kv import KVCache, kv_cache
from .model import LanguageModel, ParamCounts, language_model
from .phases import Bytes, Phase
from .serving import Serving

__all__ = [
    "Bytes",
    "Fit",
    "KVCache",
    "LLMCost",
    "LanguageModel",
    "ParamCounts",
    "Phase",
    "Polynomial",
    "Serving",
    "kv_cache",
    "language_model",
    "llm_cost",
]
