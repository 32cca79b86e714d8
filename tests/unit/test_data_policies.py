"""The pure parts of pg_purge and job_retry: cutoff parsing, backoff schedules, the retry verdict."""

import datetime as dt
import random

import pytest
from caretaker.data.job_retry import JOB_RETRY, Policy, requeue_delay
from caretaker.data.pg_purge import BatchSizer, parse_cutoff
from caretaker.foundation import argspec
from caretaker.foundation.errors import ConfigError

SIDEKIQ = {"shape": "sidekiq", "base": 15.0, "factor": 2.0, "jitter": 10.0, "max_delay": 7 * 86400.0}
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_sidekiq_schedule_shape_and_cap():
    no_jitter = {**SIDEKIQ, "jitter": 0.0}
    assert [requeue_delay(n, no_jitter) for n in (1, 2, 3, 5)] == [15, 16, 31, 271]
    rng = random.Random(7)
    delays = [requeue_delay(3, SIDEKIQ, rng) for _draw in range(200)]
    assert min(delays) >= 31 and max(delays) <= 31 + 10 * 3  # jitter grows with the retry count
    assert max(delays) - min(delays) > 10
    assert requeue_delay(40, {**SIDEKIQ, "max_delay": 3600}) == 3600


def test_exponential_shape():
    shape = {**SIDEKIQ, "shape": "exponential", "base": 2.0, "factor": 3.0, "jitter": 0.0, "max_delay": 100.0}
    assert [requeue_delay(n, shape) for n in (1, 2, 3, 4, 5, 6)] == [2, 6, 18, 54, 100, 100]


def test_parse_cutoff_ages_and_timestamps():
    now = NOW
    assert parse_cutoff("7d", now, "f") == dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
    assert parse_cutoff("12h", now, "f") == dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)
    assert parse_cutoff("2w", now, "f") == dt.datetime(2026, 11, 9, 12, 0, tzinfo=dt.UTC)
    assert parse_cutoff("2026-01-01", now, "f") == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_cutoff("2026-01-01T05:00:00+02:00", now, "f") == dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", ["2026-11-23T12:00:01Z", "tomorrow", "7 days", "-3d", "0h", ""])
def test_parse_cutoff_refuses_the_future_zero_and_nonsense(text):
    with pytest.raises(ConfigError) as raised:
        parse_cutoff(text, NOW, "tables[0].older_than")
    assert raised.value.field == "tables[0].older_than"


def test_policy_verdicts():
    args = argspec.validate(JOB_RETRY.argument_spec, {"backend": "rq", "max_attempts": 3, "never_retry": ["^Validation", "quota exceeded"]})
    policy = Policy(args, rng=random.Random(1))
    assert policy.decide("a", 1, "Timeout").verdict == "requeue"
    assert policy.decide("b", 3, "Timeout").verdict == "dead"
    assert policy.decide("c", 1, "ValidationError: x").reason.startswith("error matches never_retry")
    assert policy.decide("d", 1, "503: quota exceeded today").verdict == "dead"
    assert policy.decide("e", 2, None).verdict == "requeue"


def test_batch_size_starts_small_grows_to_the_cap_and_shrinks_when_slow():
    sizer = BatchSizer(50000, 0.5)
    assert sizer.size == 1000
    sizer.observe(1000, 0.01)  # fast: at most fourfold
    assert sizer.size == 4000
    sizer.observe(4000, 0.01)
    sizer.observe(16000, 0.01)
    assert sizer.size == 50000  # never above the cap
    sizer.observe(50000, 2.0)  # four times too slow
    assert sizer.size == 12500
    sizer.observe(100, 9.0)  # a short last batch says nothing about speed
    assert sizer.size == 12500
    assert BatchSizer(300, 0.5).size == 300
    fixed = BatchSizer(7000, 0)
    fixed.observe(7000, 60.0)
    assert fixed.size == 7000
