"""Unit tests of the plain parts of deployment/batch_inference/predict.py."""

import pytest

from deployment.batch_inference.predict import check_table_name, output_columns


def test_output_columns_keep_features_label_and_monitoring_columns():
    columns = ["vendor_id", "trip_distance", "pickup_zip", "dropoff_zip", "fare_amount"]
    assert output_columns(columns) == [
        "trip_distance",
        "pickup_zip",
        "dropoff_zip",
        "fare_amount",
        "prediction",
        "model_id",
        "timestamp",
    ]


def test_output_columns_without_label():
    assert "fare_amount" not in output_columns(["trip_distance", "pickup_zip", "dropoff_zip"])


def test_output_columns_need_the_model_inputs():
    with pytest.raises(ValueError, match="no column 'dropoff_zip'"):
        output_columns(["trip_distance", "pickup_zip"])


def test_output_table_must_be_three_level():
    assert check_table_name("main.sales.predictions") == "main.sales.predictions"
    for bad in ("predictions", "sales.predictions", "a..b", "a.b.c.d"):
        with pytest.raises(ValueError, match="three-level"):
            check_table_name(bad)
