"""The error the synthetic data generator raises for a request it cannot honour."""

from santelake.errors import SantelakeError


class SynthError(SantelakeError):
    """A synthesis request is out of range or cannot be written."""
