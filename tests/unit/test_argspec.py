import pytest
from caretaker.foundation.argspec import redact, validate
from caretaker.foundation.errors import ConfigError

SPEC = {
    "name": {"type": "str", "required": True},
    "count": {"type": "int", "default": 3},
    "enabled": {"type": "bool", "default": True},
    "mode": {"type": "str", "choices": ["fast", "safe"], "default": "safe"},
    "tags": {"type": "list", "elements": "str", "default": []},
    "auth": {"type": "dict", "options": {"user": {"type": "str"}, "password": {"type": "str", "no_log": True}}},
}


def test_defaults_and_conversion():
    result = validate(SPEC, {"name": "x", "count": "5", "enabled": "no", "tags": "a, b"})
    assert result == {"name": "x", "count": 5, "enabled": False, "mode": "safe", "tags": ["a", "b"], "auth": None}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({}, "name", "is required"),
        ({"name": "x", "count": "many"}, "count", "not an integer"),
        ({"name": "x", "mode": "reckless"}, "mode", "must be one of fast, safe"),
        ({"name": "x", "auth": {"user": "u", "token": "t"}}, "auth", "unsupported option(s) token"),
        ({"name": "x", "tags": [["nested"]]}, "tags[0]", "expected a string"),
    ],
)
def test_errors_name_the_field(params, field, message):
    with pytest.raises(ConfigError) as error:
        validate(SPEC, params, source="job.yml")
    assert error.value.field == field
    assert message in error.value.message
    assert error.value.message.startswith("job.yml: ")


def test_redact_hides_no_log_values():
    params = validate(SPEC, {"name": "x", "auth": {"user": "u", "password": "hunter2"}})
    assert "hunter2" not in repr(redact(SPEC, params))
    assert redact(SPEC, params)["auth"]["user"] == "u"
