"""Feature modules: each computes one feature table with compute_features_fn."""
