"""The one timestamp format of events, JSON output, manifests and alerts: ISO 8601 in UTC,
written with a `Z` (`2026-11-29T22:04:38Z`; events add milliseconds)."""

from __future__ import annotations

import datetime
import time


def iso(moment=None, *, milliseconds=False):
    """A datetime or a Unix time as ISO 8601 UTC; None stays None, no argument means now."""
    if moment is None:
        return None
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    text = moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds" if milliseconds else "seconds")
    return text.replace("+00:00", "Z")


def now_iso(*, milliseconds=False):
    return iso(time.time(), milliseconds=milliseconds)


def parse_iso(text):
    """Read a timestamp this engine wrote (or any ISO 8601 with a zone) as an aware datetime."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def epoch(text):
    """A timestamp this engine wrote as a Unix time; None stays None."""
    return parse_iso(text).timestamp() if text else None
