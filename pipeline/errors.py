"""Errors a stage raises for the user, shared by every stage without importing one another."""

from __future__ import annotations


class StageError(RuntimeError):
    """A stage that could not produce its output; the message says what failed and what to do."""
