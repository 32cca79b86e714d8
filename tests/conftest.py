"""Shared test setup: the engine importable as `caretaker`, as it is on a host, and fixtures.

Every file in tests/fixtures/ is a pytest plugin: put a new real service (PostgreSQL, S3,
an alert receiver) there and every test can use it.
"""

import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENGINE_LINK = ROOT / ".build" / "engine" / "caretaker"

if not ENGINE_LINK.exists():
    ENGINE_LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT / "plugins" / "module_utils", ENGINE_LINK)
sys.path.insert(0, str(ENGINE_LINK.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

# fixtures import each other (ports); rewrite the whole package, not only the plugins pytest loads first.
pytest.register_assert_rewrite("fixtures")
pytest_plugins = sorted(f"fixtures.{path.stem}" for path in (ROOT / "tests" / "fixtures").glob("*.py") if path.stem != "__init__")


def pytest_configure(config):
    # A failed assert in a helper thread only warns; make it fail the test that started the thread.
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")
