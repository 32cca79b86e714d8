"""The retention planner's guarantees over random histories (hypothesis)."""

import datetime

import pytest
from caretaker.backup.retention import POLICY_SPEC, Backup, check_policy, plan
from caretaker.foundation.errors import ConfigError
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
DEFAULTS = {name: rules.get("default") for name, rules in POLICY_SPEC.items()}

policies = st.fixed_dictionaries(
    {
        "keep_last": st.integers(0, 10),
        "keep_daily": st.integers(0, 10),
        "keep_weekly": st.integers(0, 6),
        "keep_monthly": st.integers(0, 6),
        "keep_yearly": st.integers(0, 3),
        "max_age_days": st.none() | st.integers(1, 800),
        "min_keep": st.integers(1, 8),
        "stale_upload_hours": st.just(24.0),
    }
).filter(lambda policy: policy["keep_last"] or policy["keep_daily"] or policy["keep_weekly"] or policy["keep_monthly"] or policy["keep_yearly"])


@st.composite
def histories(draw):
    ages = draw(st.lists(st.integers(0, 3 * 365 * 24 * 60), max_size=60, unique=True))
    verified = draw(st.lists(st.booleans(), min_size=len(ages), max_size=len(ages)))
    return [
        Backup(f"{index:04d}", NOW - datetime.timedelta(minutes=age), flag)
        for index, (age, flag) in enumerate(zip(ages, verified, strict=True))
    ]


@settings(max_examples=400, deadline=None)
@given(histories(), policies)
def test_invariants_hold_for_any_history(backups, policy):
    check_policy(policy)
    decided = plan(backups, policy, NOW)
    ids = {backup.id for backup in backups}
    # every backup is either kept or deleted, never both, never one we don't have
    assert set(decided.keep) | set(decided.delete) == ids
    assert not set(decided.keep) & set(decided.delete)
    assert len(decided.delete) == len(set(decided.delete))
    if backups:
        newest = max(backups, key=lambda backup: (backup.time, backup.id))
        assert newest.id in decided.keep
    verified = [backup for backup in backups if backup.verified]
    if verified:
        assert max(verified, key=lambda backup: (backup.time, backup.id)).id in decided.keep
    assert len(decided.keep) >= min(policy["min_keep"], len(backups))
    # the plan does not depend on the order the store listed the backups in
    assert plan(list(reversed(backups)), policy, NOW) == decided
    # keep_last alone: exactly the newest N are kept (plus the guarantees)
    newest_first = sorted(backups, key=lambda backup: (backup.time, backup.id), reverse=True)
    if policy["max_age_days"] is None:
        assert {backup.id for backup in newest_first[: policy["keep_last"]]} <= set(decided.keep)


@settings(max_examples=200, deadline=None)
@given(histories(), policies)
def test_max_age_only_keeps_old_backups_for_the_guarantees(backups, policy):
    decided = plan(backups, policy, NOW)
    if policy["max_age_days"] is None:
        return
    limit = NOW - datetime.timedelta(days=policy["max_age_days"])
    for backup in backups:
        if backup.time < limit and backup.id in decided.keep:
            assert set(decided.keep[backup.id]) <= {"newest", "newest_verified", "min_keep"}


def test_tiers_keep_one_per_period():
    backups = [Backup(f"{day:03d}-{hour}", NOW - datetime.timedelta(days=day, hours=hour)) for day in range(60) for hour in (0, 6)]
    decided = plan(backups, {**DEFAULTS, "keep_last": 0, "keep_daily": 3, "keep_weekly": 0, "keep_monthly": 0, "min_keep": 1}, NOW)
    assert sorted(decided.keep) == ["000-0", "001-0", "002-0"]
    assert len(decided.delete) == 117


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0}, "keep_last"),
        ({"min_keep": 0}, "min_keep"),
        ({"keep_daily": -1}, "keep_daily"),
        ({"max_age_days": 0}, "max_age_days"),
    ],
)
def test_policies_that_keep_nothing_are_refused(change, field):
    with pytest.raises(ConfigError) as error:
        check_policy({**DEFAULTS, **change})
    assert error.value.field == field
