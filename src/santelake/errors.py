"""Errors santelake raises on purpose: each says what is wrong and what to do."""


class SantelakeError(Exception):
    """An error meant for the operator; the CLI prints it without a traceback."""


class ConfigError(SantelakeError):
    """A setting is missing, malformed or contradictory."""


class PrerequisiteError(SantelakeError):
    """Something the platform needs is not on this machine."""


class ServiceError(SantelakeError):
    """A service failed to install, start or answer its health check."""
