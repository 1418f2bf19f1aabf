"""Promotion of validated model versions (deploy.py)."""
