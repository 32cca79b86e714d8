"""The errors every part of the engine raises, and the exit codes they map to."""

from __future__ import annotations

import contextlib

# Exit codes shared by the CLI and the job runner (sysexits.h where one fits).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ALREADY_RUNNING = 73
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: worth retrying
EXIT_TIMEOUT = 124  # the coreutils timeout(1) convention


class CaretakerError(Exception):
    """A task failed; the message says why in words an operator can act on."""

    exit_code = EXIT_FAILED
    transient = False

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class TransientError(CaretakerError):
    """A failure that may succeed if tried again (network, lock contention, 5xx)."""

    exit_code = EXIT_TRANSIENT
    transient = True


class ConfigError(CaretakerError):
    """Bad input: names where it came from and which field is wrong."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, field: str | None = None, source: str | None = None):
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message  # without the source and field, for re-raising with a source
        self.field = field
        self.source = source


@contextlib.contextmanager
def translated(*rules):
    """Re-raise a library's exception as the engine's error.

    Each rule is (exception class, function of the exception returning a CaretakerError);
    the first class that matches wins and anything else passes through unchanged.
    """
    try:
        yield
    except Exception as exc:
        for kind, make in rules:
            if isinstance(exc, kind):
                raise make(exc) from None
        raise
