"""train: trains and exports a binary classifier on tabular Parquet splits (train image)."""
