"""flopmeter's warning classes, so a user can filter them by category:
``warnings.filterwarnings("ignore", category=flopmeter.FlopmeterWarning)``.

Each warning keeps the standard category it had before these classes (``UserWarning`` for
the count's, ``RuntimeWarning`` for the model state's), so a filter on one of those acts
as it did: ``FlopmeterWarning`` is therefore no ``UserWarning`` itself (an
``ignore::UserWarning`` in a notebook would else hide the model-state warnings too)."""

from __future__ import annotations


class FlopmeterWarning(Warning):
    """Every warning flopmeter gives (``CountWarning`` or ``ModelStateWarning``)."""


class CountWarning(FlopmeterWarning, UserWarning):
    """Something about the count the user should know (ops run where they cannot be
    charged, a registered formula for an unknown op); a ``UserWarning`` too."""


class ModelStateWarning(FlopmeterWarning, RuntimeWarning):
    """The model's forward changed state flopmeter could not see or had to put back (a
    ``RuntimeWarning`` too, as these were before they had a class of their own)."""
