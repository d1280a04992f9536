"""The one exception the CLI turns into a one-line message instead of a traceback."""

from __future__ import annotations


class OpsError(Exception):
    """An expected failure: a service cannot be reached, an answer is unusable, a bad input."""
