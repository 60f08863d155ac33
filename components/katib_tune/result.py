"""What a tuning run found, the same for both backends (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUCCEEDED, PRUNED, FAILED = "succeeded", "pruned", "failed"
STATES = (SUCCEEDED, PRUNED, FAILED)


@dataclass
class TrialRecord:
    number: int
    params: dict[str, Any]  # the tuned values, as the trainer takes them
    state: str = SUCCEEDED
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # printed name -> final value
    intermediate: list[tuple[int, float]] = field(default_factory=list)  # (epoch, objective)
    seconds: float = 0.0
    error: str = ""
    name: str = ""  # Katib's trial name


@dataclass
class TuneResult:
    backend: str
    best_hyperparameters: dict[str, Any]
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    notes: list[str] = field(default_factory=list)
    experiment: str = ""  # Katib: namespace/name

    def counts(self) -> dict[str, int]:
        out = {state: 0 for state in STATES}
        for trial in self.trials:
            out[trial.state] = out.get(trial.state, 0) + 1
        return out

    def metrics(self, objective_metric: str) -> dict[str, Any]:
        """Flat values for the step's Metrics artifact."""
        counts = self.counts()
        out: dict[str, Any] = {
            "backend": self.backend,
            "trials": len(self.trials),
            **{f"trials_{state}": n for state, n in counts.items()},
        }
        if self.best is not None:
            out[f"best_{objective_metric}"] = self.best.objective
            out["best_trial"] = self.best.name or self.best.number
            for key, value in self.best.params.items():
                out[f"best_param_{key}"] = value if isinstance(value, int | float) else str(value)
        if self.experiment:
            out["experiment"] = self.experiment
        return out
