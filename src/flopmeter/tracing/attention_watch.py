"""Whether a run needs the function recorder, which counts attention whole.

``recorder.FunctionRecorder`` counts ``F.scaled_dot_product_attention`` and
``F.multi_head_attention_forward`` as one event each. As a ``TorchFunctionMode`` it
sees every torch call of the run, attribute reads included, and each costs a Python
call: a sixth to a tenth of a small convolutional model's profile, for models that
call no attention at all. So a run goes without it unless the model is expected to
call attention (``expects_attention``): it holds an ``nn.MultiheadAttention``, a
module whose own ``forward`` names an attention function (``ATTENTION_NAMES``), or a
module of a class that called attention in an earlier run.

Otherwise the op recorder watches for the aten ops that only an attention call runs
(``is_attention_op``: SDPA itself, as ``torch.inference_mode`` delivers it, its fused
kernels on every device, and ``_safe_softmax``, which its math path runs). When one
arrives, the run stops there (``AttentionSeen``), is thrown away and made again with the
function recorder (``tracing.run.trace_model``), and the class of the module that called
it is remembered, so later profiles of such models start with it. Either way the events
are those of a run with the function recorder. Only shapes-only runs are watched: a run
with values (``shapes_only=False``, ``backward=True``) always has the function recorder,
so it runs the forward once.

A run whose inputs hold objects torch cannot take apart (a KV-cache object, say) is not
watched either: the thrown-away run could change them before its attention call (a
cache's ``update``), and the second run would count what the first left there.

What this cannot see: a function other than a module's own ``forward`` that calls
``F.multi_head_attention_forward`` with ``need_weights=True`` (no SDPA kernel runs
then). Its ops are counted one by one, as for any function, instead of as one event.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterable
from typing import Any

import torch

# aten ops run only by scaled dot-product attention (short names, without "aten.")
_ATTENTION_OPS = frozenset(
    {
        "scaled_dot_product_attention",  # whole, under torch.inference_mode()
        "_safe_softmax",  # the math path's softmax (also flex_attention's: a needless rerun)
        "_flash_attention_forward",
        "_efficient_attention_forward",
        "_native_multi_head_attention",
    }
)


def is_attention_op(short_name: str) -> bool:
    """Whether an aten op (by its name without namespace and overload) is only run by an
    attention call: the ones above and every ``_scaled_dot_product_*`` kernel."""
    return short_name in _ATTENTION_OPS or short_name.startswith("_scaled_dot_product")


class AttentionSeen(Exception):
    """Raised by the op recorder at the first attention op of a run without the function
    recorder, to stop that run at once: it is thrown away, and what the forward would do
    after the attention call should not happen twice. An Exception, so that torch calls
    the ``always_call`` forward hooks of the modules it leaves (a BaseException skips
    them); a model that catches it carries on, and the recorder's flag throws the run away
    all the same. The run then raises it again to ``trace_model``, with ``module``: the
    module whose class called attention."""

    def __init__(self, module: Any = None) -> None:
        super().__init__(f"attention called in {type(module).__name__}" if module is not None else "")
        self.module = module


_EXPECTS: dict[type, bool] = {}  # module class -> whether its modules call attention
_LOCK = threading.Lock()


def expects_attention(kinds: Iterable[type]) -> bool:
    """Whether a model made of modules of these classes is expected to call attention."""
    for kind in kinds:
        expected = _EXPECTS.get(kind)
        if expected is None:
            expected = _calls_attention_by_code(kind)
            with _LOCK:
                expected = _EXPECTS.setdefault(kind, expected)
        if expected:
            return True
    return False


def remember_attention(kind: type) -> None:
    """Modules of ``kind`` called attention: start their later runs with the recorder."""
    with _LOCK:
        _EXPECTS[kind] = True


# Names in a ``forward``'s code that call attention: torch's two functions (MHA's
# need_weights path runs no SDPA kernel to watch for) and transformers' table of
# attention implementations (timm and transformers models then need no second run).
ATTENTION_NAMES = frozenset(
    {"scaled_dot_product_attention", "multi_head_attention_forward", "ALL_ATTENTION_FUNCTIONS"}
)


def _calls_attention_by_code(kind: type) -> bool:
    """An ``nn.MultiheadAttention``, or a class whose own ``forward`` (unwrapped from
    its decorators) names one of ``ATTENTION_NAMES``."""
    if issubclass(kind, torch.nn.MultiheadAttention):
        return True
    forward = getattr(kind, "forward", None)
    try:
        code = inspect.unwrap(forward).__code__ if forward is not None else None
    except (AttributeError, ValueError):  # a builtin, or a wrapper cycle
        return False
    return code is not None and not ATTENTION_NAMES.isdisjoint(code.co_names)
