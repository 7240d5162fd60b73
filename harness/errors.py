"""The suite's exceptions for bad input. Imports nothing heavy: every entry point (and scoring, which
never needs JAX) can raise and report them without loading JAX or Flax.

Re-exported by harness.spec, where submissions and workloads find them.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: reported as one line naming what is wrong and how to fix it."""


class DataError(UserError):
    """Missing or corrupt dataset files."""


class SeedsFailed(Exception):
    """Some seeds of a sweep failed (recorded as such with their tracebacks); the others ran.
    Entry points report it as one line and exit 1."""
