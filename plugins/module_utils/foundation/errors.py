"""The errors every part of the engine raises, and the exit codes they map to."""

from __future__ import annotations

import contextlib
import sys

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


# The caretaker runtime's interpreter: the roles install every optional package there.
RUNTIME_PYTHON = "/opt/caretaker/bin/python3"

# Python packages the engine imports only where it needs them:
# import name -> (package to install, the runtime_features entry that installs it)
LIBRARIES = {
    "psycopg": ("psycopg", "postgresql"),
    "zstandard": ("zstandard", "postgresql"),
    "cryptography": ("cryptography", "postgresql or checks"),
    "boto3": ("boto3", "s3"),
    "botocore": ("boto3", "s3"),
    "redis": ("redis", "redis"),
    "rq": ("rq", "redis"),
    "yaml": ("PyYAML", None),
}


class MissingLibrary(CaretakerError):
    """A task needs a Python package this interpreter cannot import."""

    def __init__(self, package: str, feature: str | None = None):
        python = sys.executable or "this Python"
        if python.startswith(RUNTIME_PYTHON.rsplit("/bin/", 1)[0] + "/"):
            hint = f"install it with the runtime role (runtime_features: [{feature}])" if feature else "reinstall the runtime role"
        else:
            hint = f"use the caretaker runtime's Python {RUNTIME_PYTHON} (for a module, set ansible_python_interpreter on the task)"
        super().__init__(f"needs the Python package {package}, which {python} cannot import: {hint}",
                         details={"missing_package": package, "python": python})
        self.package = package


def missing_library(exc: ImportError) -> MissingLibrary | None:
    """The MissingLibrary an import failure means, or None when it is not an optional package."""
    if not isinstance(exc, ModuleNotFoundError):
        return None  # the package is there but broken or too old: its own message says more
    known = LIBRARIES.get((exc.name or "").split(".")[0])
    return MissingLibrary(*known) if known else None
