"""Time maths of the taxi features: the windows features are aggregated over and the rounding
that lets a trip find the feature row of its time.

Features are computed per window (start inclusive, end exclusive) and stamped with the window's
end. A trip looks features up at its time rounded DOWN to the window step: a trip at 10:05 reads
the row stamped 10:00, built only from trips before it. Rounding up would hand the model
features computed from its own fare and from later trips (leakage). The pure functions here are
what the unit tests cover; :func:`add_rounded_timestamps` applies the same rounding in Spark.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

# (window length, slide) of each feature family, in minutes.
PICKUP_WINDOW_MINUTES = 60
PICKUP_SLIDE_MINUTES = 15
DROPOFF_WINDOW_MINUTES = 30
DROPOFF_SLIDE_MINUTES = 30

PICKUP_LOOKUP_COLUMN = "rounded_pickup_datetime"
DROPOFF_LOOKUP_COLUMN = "rounded_dropoff_datetime"


def round_down_epoch(seconds: float, minutes: int) -> int:
    """``seconds`` since the epoch rounded down to a multiple of ``minutes`` minutes."""
    if minutes <= 0:
        raise ValueError(f"the rounding step must be positive, got {minutes} minutes")
    step = minutes * 60
    return int(seconds // step) * step


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def lookup_time(moment: datetime, slide_minutes: int) -> datetime:
    """End of the latest window that closed at or before ``moment`` (naive values are UTC)."""
    seconds = round_down_epoch(_utc(moment).timestamp(), slide_minutes)
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def window_ends(moment: datetime, window_minutes: int, slide_minutes: int) -> list[datetime]:
    """Ends of every sliding window that contains ``moment``, oldest first: the feature rows
    one trip contributes to. All of them are later than ``moment``, so a trip never sees
    itself through :func:`lookup_time`."""
    if slide_minutes <= 0 or window_minutes % slide_minutes:
        raise ValueError("the window length must be a positive multiple of the slide")
    first = lookup_time(moment, slide_minutes) + timedelta(minutes=slide_minutes)
    count = window_minutes // slide_minutes
    return [first + timedelta(minutes=slide_minutes * i) for i in range(count)]


def parse_date(text: str) -> date | None:
    """A ``YYYY-MM-DD`` job parameter; empty means no bound."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def date_range(start: str, end: str) -> tuple[date | None, date | None]:
    """The inclusive start / exclusive end the feature job filters its input on."""
    first, last = parse_date(start), parse_date(end)
    if first is not None and last is not None and first >= last:
        raise ValueError(f"the start date {first} must come before the end date {last}")
    return first, last


def add_rounded_timestamps(df: Any) -> Any:
    """The trips with the two lookup columns the feature lookups use."""
    from pyspark.sql import functions as F

    def rounded(column: str, minutes: int) -> Any:
        step = minutes * 60
        seconds = F.unix_timestamp(F.col(column))
        return (F.floor(seconds / step) * step).cast("timestamp")

    return df.withColumn(
        PICKUP_LOOKUP_COLUMN, rounded("tpep_pickup_datetime", PICKUP_SLIDE_MINUTES)
    ).withColumn(DROPOFF_LOOKUP_COLUMN, rounded("tpep_dropoff_datetime", DROPOFF_SLIDE_MINUTES))
