"""save_window_state: records a window, or the model now in production."""
