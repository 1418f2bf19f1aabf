"""Batch scoring with the deployed model version (predict.py)."""
