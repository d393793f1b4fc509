"""Exceptions that carry a one-line, human-readable message for operators."""


class PufaError(Exception):
    """A failure the command line reports as one line on stderr (exit status 1)."""


class ConfigError(PufaError):
    """Invalid or missing configuration; the message names the variable."""
