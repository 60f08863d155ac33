"""evaluate: scores a SavedModel on a test split, per slice, against a baseline (train image)."""
