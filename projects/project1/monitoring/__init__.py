"""Monitoring: when to retrain from the quality monitor's metrics (metric_check.py)."""
