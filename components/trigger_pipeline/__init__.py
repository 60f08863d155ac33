"""trigger_pipeline: a step that starts a run of another compiled pipeline."""
