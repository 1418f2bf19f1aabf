"""Model validation: what a new model version must achieve (validation.py)."""
