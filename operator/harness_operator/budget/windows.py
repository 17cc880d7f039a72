"""Budget windows: when the current one began and when it resets (pure, UTC).

Calendar windows follow the calendar (`hour`: the top of the hour, `day`: midnight, `month`:
the 1st), as providers' own limits do; a duration window (`10m`) is aligned to multiples of
its length since the Unix epoch, so every operator replica agrees on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness_operator.api.types import parse_duration


def window_bounds(window: str, now: datetime) -> tuple[datetime, datetime]:
    """(start, reset) of the window of kind `window` that contains `now`."""
    now = now.astimezone(UTC)
    if window == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    if window == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if window == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (start + timedelta(days=32)).replace(day=1)
        return start, following
    length = parse_duration(window)
    epoch = now.timestamp()
    begin = epoch - epoch % length
    start = datetime.fromtimestamp(begin, UTC)
    return start, start + timedelta(seconds=length)
