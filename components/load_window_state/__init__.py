"""window_state: the continuous-training pipeline's memory between scheduled runs."""
