"""Feature computation for the feature tables, and the time windows behind it."""
