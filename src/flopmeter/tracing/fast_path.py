"""What torch's own fast paths would skip that flopmeter's tracing counts.

``nn.TransformerEncoder`` (``enable_nested_tensor=True``, its default), given a
``src_key_padding_mask`` in eval without gradients, packs the batch into a nested tensor
(``_nested_tensor_from_mask``) and skips the padded tokens. It does so only when no
``TorchFunctionMode`` is active; flopmeter's is (attention counted whole), so the profile
runs the padded batch and counts it. Its check of the mask,
``_nested_tensor_from_mask_left_aligned``, comes just before torch looks for modes: seen in
a forward-only trace, the plain run would have skipped the padding, unless one of the
conditions torch checks after it fails (a ``mask`` given too, padding not at the end, autocast),
which the trace does not show: the warning names them (R11b-2).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import torch

from ..notices import CountWarning
from .events import FORWARD, OpEvent

_MASK_CHECK = "aten._nested_tensor_from_mask_left_aligned"


def warn_padded_fast_path(events: list[OpEvent], kinds: set[type], *, backward: bool) -> None:
    """Warn when the counted padded work is more than the model's plain run does
    (``kinds``: the classes of the model's modules; the events are read only when one is
    an ``nn.TransformerEncoder``)."""
    if backward or not any(issubclass(kind, torch.nn.TransformerEncoder) for kind in kinds):
        return
    if not any(event.op == _MASK_CHECK and event.phase == FORWARD for event in events):
        return
    warnings.warn(
        "nn.TransformerEncoder with a src_key_padding_mask: without flopmeter, torch's fast path "
        "(eval, no gradients, no autocast, no `mask` beside the padding mask, and each sequence's "
        "padding at its end) packs the batch into nested tensors and skips the padded tokens; "
        "flopmeter turns that path off and counts the padded batch. To count the real lengths, "
        "profile each sequence unpadded and add their counts (docs/formulas.md, Attention)",
        CountWarning,
        stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside flopmeter (and the context-manager
    wrappers of its decorators): the user's call of ``profile``."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and (
        frame.f_code.co_filename.startswith(package) or frame.f_code.co_filename == contextlib.__file__
    ):
        frame, level = frame.f_back, level + 1
    return level
