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


def test_h_step_spreads_the_offset_and_keeps_the_interval():
    offsets = set()
    for index in range(50):
        minute = spread("H/5 * * * *", f"web{index}/health").split()[0]
        start, step = minute.split("/")
        assert step == "5" and start.endswith("-59") and 0 <= int(start.split("-")[0]) <= 4
        due = [next_due(f"{minute} * * * *", datetime.datetime(2026, 11, 23, 10, 0, 30) + datetime.timedelta(minutes=k)) for k in (0, 5)]
        assert due[1] - due[0] == datetime.timedelta(minutes=5)
        offsets.add(int(start.split("-")[0]))
    assert offsets == {0, 1, 2, 3, 4}  # fifty hosts use every offset
    assert spread("0 H/6 * * *", "db1/backup").split()[1] in {f"{hour}-23/6" for hour in range(6)}
    assert to_oncalendar(spread("H/20 * * * *", "web1/health")).startswith("*-*-* *:")
    for bad in ("H/0 * * * *", "H/x * * * *", "H/61 * * * *", "0 H/25 * * *"):
        with pytest.raises(ConfigError, match="H/N needs N from 1") as error:
            spread(bad, "web1/health")
        assert error.value.field == "schedule"


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
