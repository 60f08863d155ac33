"""load_window_state: what a continuous-training run compares the new window with."""
