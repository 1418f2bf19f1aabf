"""Unit tests of feature_engineering/windows.py: rounding and windows of the features."""

from datetime import date, datetime, timedelta, timezone

import pytest

from feature_engineering.features import dropoff_features, pickup_features
from feature_engineering.windows import (
    PICKUP_SLIDE_MINUTES,
    PICKUP_WINDOW_MINUTES,
    date_range,
    lookup_time,
    parse_date,
    round_down_epoch,
    window_ends,
)

UTC = timezone.utc


def test_round_down_epoch():
    assert round_down_epoch(0, 15) == 0
    assert round_down_epoch(899, 15) == 0
    assert round_down_epoch(900, 15) == 900
    assert round_down_epoch(1799.5, 15) == 900
    with pytest.raises(ValueError, match="must be positive"):
        round_down_epoch(10, 0)


def test_lookup_time_is_the_last_closed_window():
    assert lookup_time(datetime(2016, 2, 1, 10, 5), 15) == datetime(2016, 2, 1, 10, 0, tzinfo=UTC)
    assert lookup_time(datetime(2016, 2, 1, 10, 15, tzinfo=UTC), 15) == datetime(
        2016, 2, 1, 10, 15, tzinfo=UTC
    )
    assert lookup_time(datetime(2016, 2, 1, 10, 59, 59), 30) == datetime(
        2016, 2, 1, 10, 30, tzinfo=UTC
    )


def test_a_trip_never_reads_features_built_from_itself():
    trip = datetime(2016, 2, 1, 10, 5, tzinfo=UTC)
    ends = window_ends(trip, PICKUP_WINDOW_MINUTES, PICKUP_SLIDE_MINUTES)
    assert ends[0] == datetime(2016, 2, 1, 10, 15, tzinfo=UTC)
    assert len(ends) == PICKUP_WINDOW_MINUTES // PICKUP_SLIDE_MINUTES
    assert all(
        b - a == timedelta(minutes=PICKUP_SLIDE_MINUTES)
        for a, b in zip(ends, ends[1:], strict=False)
    )
    assert all(end > lookup_time(trip, PICKUP_SLIDE_MINUTES) for end in ends)


def test_windows_must_be_a_multiple_of_the_slide():
    with pytest.raises(ValueError, match="multiple of the slide"):
        window_ends(datetime(2016, 2, 1, tzinfo=UTC), 50, 15)


def test_date_parameters():
    assert parse_date("") is None
    assert parse_date(" 2016-02-01 ") == date(2016, 2, 1)
    assert date_range("2016-02-01", "") == (date(2016, 2, 1), None)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date("01/02/2016")
    with pytest.raises(ValueError, match="must come before"):
        date_range("2016-02-02", "2016-02-01")


def test_feature_names_do_not_collide():
    names = [*pickup_features.FEATURE_NAMES, *dropoff_features.FEATURE_NAMES]
    assert len(set(names)) == len(names) == 4


def test_dropoff_weekend_flag():
    assert dropoff_features.is_weekend(date(2016, 2, 6))  # a Saturday
    assert not dropoff_features.is_weekend(datetime(2016, 2, 8, 9, 30))  # a Monday
