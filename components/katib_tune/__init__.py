"""katib_tune: hyperparameter tuning of train, on Katib or locally with Optuna (train image)."""
