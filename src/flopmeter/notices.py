"""flopmeter's warning classes, so a user can filter them by category:
``warnings.filterwarnings("ignore", category=flopmeter.FlopmeterWarning)``."""

from __future__ import annotations


class FlopmeterWarning(UserWarning):
    """Every warning flopmeter gives: something about the count the user should know
    (ops run where they cannot be charged, a registered formula for an unknown op)."""


class ModelStateWarning(FlopmeterWarning, RuntimeWarning):
    """The model's forward changed state flopmeter could not see or had to put back (a
    ``RuntimeWarning`` too, as these were before they had a class of their own)."""
