"""The errors a command reports in one or two lines, shared by every layer.

An error's kind sets the exit status: a UserError (a config value, a path, a file of the wrong
kind) exits 2, any other CorpusmillError (damaged data, a broken installation) exits 1.
"""

from __future__ import annotations


class CorpusmillError(Exception):
    """An error the command reports without a traceback; the message says what to do."""

    exit_code = 1


class UserError(CorpusmillError):
    """A mistake in what the user asked for, the user's to correct."""

    exit_code = 2


class StageError(CorpusmillError, RuntimeError):
    """A stage that could not produce its output; the message says what failed and what to do."""


class InstallError(CorpusmillError):
    """Something corpusmill needs is missing from its installation; reinstalling repairs it."""


class ConfigError(UserError, ValueError):
    """A config file or flag that cannot be used; the message names the source and the key."""
