"""online_experiment: variants of a served model against a control, on served traffic,
decided by an always-valid sequential test. See README.md."""
