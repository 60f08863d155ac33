"""retrain_decision: whether a continuous-training run retrains, and why."""
