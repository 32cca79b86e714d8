import datetime

import pytest
from caretaker.foundation.errors import ConfigError
from caretaker.foundation.schedule import next_due, spread, to_oncalendar


def test_spread_is_stable_per_seed_and_differs_across_hosts():
    first = spread("H H * * *", "web1/backup")
    assert first == spread("H H * * *", "web1/backup")
    minute, hour = map(int, first.split()[:2])
    assert 0 <= minute <= 59 and 0 <= hour <= 23
    minutes = {spread("H 3 * * *", f"web{index}/backup").split()[0] for index in range(50)}
    assert len(minutes) > 20


def test_next_due_steps_and_lists():
    now = datetime.datetime(2026, 11, 23, 10, 7, 30)
    assert next_due("*/15 * * * *", now) == datetime.datetime(2026, 11, 23, 10, 15)
    assert next_due("0 3 * * *", now) == datetime.datetime(2026, 11, 24, 3, 0)
    assert next_due("30 2 1 * *", now) == datetime.datetime(2026, 12, 1, 2, 30)
    assert next_due("0 0 * * 0", now) == datetime.datetime(2026, 11, 29, 0, 0)  # Sunday
    assert next_due("@hourly", now) == datetime.datetime(2026, 11, 23, 11, 0)
    # cron ORs day-of-month with day-of-week when both are restricted
    assert next_due("0 0 1 * 1", now) == datetime.datetime(2026, 11, 30, 0, 0)


def test_oncalendar_translation():
    assert to_oncalendar("*/20 * * * *") == "*-*-* *:00,20,40:00"
    assert to_oncalendar("17 3 * * *") == "*-*-* 03:17:00"
    assert to_oncalendar("0 4 * * 1-5") == "Mon,Tue,Wed,Thu,Fri *-*-* 04:00:00"
    with pytest.raises(ConfigError):
        to_oncalendar("0 0 1 * 1")


@pytest.mark.parametrize("expr", ["* * * *", "60 * * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"])
def test_bad_expressions(expr):
    with pytest.raises(ConfigError) as error:
        next_due(expr, datetime.datetime.now())
    assert error.value.field == "schedule"
