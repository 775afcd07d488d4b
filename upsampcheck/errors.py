"""Exceptions that the CLI maps to exit codes (docs/method.md).

``UsageError`` is bad input: a missing or corrupt file, impossible parameters, an untrusted
checkpoint. The CLI prints its message as one line on stderr and exits 2. Anything else that
escapes is an internal error (exit 3).
"""


class UsageError(Exception):
    """Bad usage or unreadable, unsafe or invalid input: exit code 2, one line on stderr."""


class StageError(UsageError):
    """A model failed while running; the message names the last stage it reached."""
