"""The one duration grammar, and the argument specs that use it."""

import pytest
from caretaker.foundation import durations
from caretaker.foundation.argspec import validate
from caretaker.foundation.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (2.5, 2.5), ("90", 90.0), ("45s", 45.0), ("30m", 1800.0), ("12h", 43200.0), ("1.5d", 129600.0),
     ("2w", 1209600.0), (" 7 d ", 604800.0), (".5h", 1800.0), (0, 0.0)],
)
def test_the_grammar(text, seconds):
    assert durations.parse(text) == seconds


@pytest.mark.parametrize(
    ("text", "words"),
    [("2W", "units are lower case"), ("6M", "units are lower case"), ("3y", "unknown unit 'y'"), ("-5", "is not a duration"),
     (-5, "not negative"), ("soon", "is not a duration"), ("1d2h", "is not a duration"), (True, "is not a duration"),
     ([1], "is not a duration"), (float("inf"), "finite"), ("", "is not a duration")],
)
def test_what_it_refuses(text, words):
    with pytest.raises(ValueError, match=words):
        durations.parse(text)


@pytest.mark.parametrize(("seconds", "text"), [(86400, "1d"), (1209600, "2w"), (90, "90s"), (5400, "90m"), (1.5, "1.5s")])
def test_text_is_the_shortest_exact_form(seconds, text):
    assert durations.text(seconds) == text
    assert durations.parse(text) == seconds


SPEC = {
    "timeout": durations.option(default="1h"),
    "stages": durations.durations(default=["30d", 7]),
    "nested": {"type": "dict", "default": {}, "options": {"window": durations.option()}},
    "remind": durations.option(),
    "remind_hours": durations.renamed("remind", "h"),
}


def test_specs_convert_durations_everywhere():
    args = validate(SPEC, {"nested": {"window": "5m"}, "remind_hours": 1.5})
    assert args == {"timeout": 3600.0, "stages": [2592000.0, 7.0], "nested": {"window": 300.0}, "remind": 5400.0,
                    "remind_hours": None}


def test_a_bad_duration_names_its_field():
    with pytest.raises(ConfigError) as caught:
        validate(SPEC, {"stages": ["30d", "a fortnight"]}, source="job.yml")
    assert caught.value.field == "stages[1]"
    assert "'a fortnight' is not a duration" in caught.value.message
