"""santelake: a sovereign, self-hosted health data lake."""

__version__ = "0.1.0"
