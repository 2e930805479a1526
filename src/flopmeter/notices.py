"""flopmeter's warning classes, so a user can filter them by category:
``warnings.filterwarnings("ignore", category=flopmeter.FlopmeterWarning)``.

Each warning keeps the standard category it had before these classes (``UserWarning`` for
the count's, ``RuntimeWarning`` for the model state's), so a filter on one of those acts
as it did: ``FlopmeterWarning`` is therefore no ``UserWarning`` itself (an
``ignore::UserWarning`` in a notebook would else hide the model-state warnings too)."""

from __future__ import annotations

import os
import sys


class FlopmeterWarning(Warning):
    """Every warning flopmeter gives (``CountWarning`` or ``ModelStateWarning``)."""


class CountWarning(FlopmeterWarning, UserWarning):
    """Something about the count the user should know (ops run where they cannot be
    charged, a registered formula for an unknown op); a ``UserWarning`` too."""


class ModelStateWarning(FlopmeterWarning, RuntimeWarning):
    """The model's forward changed state flopmeter could not see or had to put back (a
    ``RuntimeWarning`` too, as these were before they had a class of their own)."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the function calling this one that
    names the first caller outside flopmeter (the user's line, whichever API path led there)."""
    frame = sys._getframe(1)  # the function that will warn: stacklevel 1
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE + os.sep
    ):
        frame = frame.f_back
        level += 1
    return level
