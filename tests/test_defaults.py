"""One default per parameter: what a compiled component declares as a parameter's default is
what its runtime applies when the parameter is left out.

The compiled side is the component's pipeline spec (what ``kfpkit compile`` writes). The
runtime side is read in the component's image family (TFDV, TensorFlow, Optuna are not in the
SDK environment): the runtime dataclass's field default and, where the launcher builds that
dataclass, what the launcher builds from an executor input without the parameter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from kfpkit import catalog
from kfpkit.components.register_model import launcher as register_model_launcher
from kfpkit.runtime.executor import EXIT_USER_ERROR, FAILURE_RECORD, launch
from kfpkit.testing.launcher_input import executor_input

ROOT = Path(__file__).resolve().parent.parent
FAMILY_PYTHON = {
    "core": Path(sys.executable),
    "tfdv": ROOT / ".venvs" / "tfdv" / "bin" / "python",
    "train": ROOT / ".venvs" / "train" / "bin" / "python",
}
# Runs one case's setup, then prints parameter -> the value of each of its expressions.
_PROBE = """
import json, sys
case = json.loads(sys.argv[1])
scope = {}
exec(case["setup"], scope)
print(json.dumps({p: [eval(e, scope) for e in exprs] for p, exprs in case["defaults"].items()}))
"""


@dataclass(frozen=True)
class Case:
    component: str
    setup: str  # Python run in the component's family: defines what the expressions read
    defaults: dict[str, tuple[str, ...]]  # parameter -> expressions of the runtime's default


def _dataclass_and_launcher(path: str) -> tuple[str, str]:
    return f"runtime.{path}", f"launched.{path}"


_MONITOR_THRESHOLDS = {
    f"default_{kind_of_feature}_{kind}_threshold": f"{kind}.{kind_of_feature}"
    for kind in ("drift", "skew")
    for kind_of_feature in ("categorical", "numeric")
} | {f"{kind}_thresholds": f"{kind}.per_feature" for kind in ("drift", "skew")}
_MONITOR_SETTINGS = ("metric", "max_decay", "min_labelled_rows")
_EXPERIMENT_SETTINGS = ("metric", "alpha", "min_labelled_rows", "mixture_sd", "threshold",
                        "max_latency_p99_ms", "max_error_rate", "confidence")  # fmt: skip
_SERVING_SETTINGS = ("runtime", "deployment_mode", "cpu", "memory", "gpu", "min_replicas",
                     "max_replicas", "scale_target", "logger_mode")  # fmt: skip
_PUSH_REQUEST = ("canary_traffic_percent", "mirror_percent", "timeout_seconds",
                 "infra_validation_rows", "sticky", "bandit_floor")  # fmt: skip

CASES = [
    Case(
        "monitor_serving",
        "from kfpkit.components.monitor_serving.launcher import settings_from\n"
        "from kfpkit.components.monitor_serving.monitor import Settings\n"
        "from kfpkit.runtime.executor import Executor\n"
        "runtime, launched = Settings(), settings_from(Executor({}))\n",
        {
            **{p: _dataclass_and_launcher(path) for p, path in _MONITOR_THRESHOLDS.items()},
            **{p: _dataclass_and_launcher(p) for p in _MONITOR_SETTINGS},
        },
    ),
    Case(
        "online_experiment",
        "from kfpkit.components.online_experiment.analysis import Settings\n"
        "from kfpkit.components.online_experiment.launcher import settings_from\n"
        "from kfpkit.runtime.executor import Executor\n"
        "runtime = Settings(control='a')\n"
        "launched = settings_from(Executor({'inputs': {'parameterValues': "
        "{'control_variant': 'a'}}}))\n",
        {p: _dataclass_and_launcher(p) for p in _EXPERIMENT_SETTINGS},
    ),
    Case(
        "kserve_push",
        "from kfpkit.components.kserve_push.isvc import ServingSettings\n"
        "from kfpkit.components.kserve_push.launcher import request_from\n"
        "from kfpkit.components.kserve_push.runner import PushRequest\n"
        "from kfpkit.runtime.executor import Executor\n"
        "launched = request_from(Executor({'inputs': {'parameterValues': "
        "{'model_name': 'm'}}}))\n",
        {
            **{p: (f"ServingSettings.{p}", f"launched.settings.{p}") for p in _SERVING_SETTINGS},
            **{p: (f"PushRequest.{p}", f"launched.{p}") for p in _PUSH_REQUEST},
            # no dataclass default: the launcher's, from the defaults module
            "namespace": ("launched.settings.namespace",),
            "action": ("launched.action",),
            "backend": ("launched.backend",),
        },
    ),
    Case(
        "katib_tune",
        "import inspect\n"
        "from kfpkit.components.katib_tune import local\n"
        "tune = inspect.signature(local.tune).parameters\n",
        {"seed": ("tune['seed'].default",)},
    ),
    Case(
        "train",
        "from kfpkit.training.trainer import TrainRequest\n",
        {"mixed_precision": ("TrainRequest.mixed_precision",)},
    ),
    Case(
        "trigger_pipeline",
        "import inspect\n"
        "from kfpkit.components.trigger_pipeline.trigger import Target, trigger\n"
        "keywords = inspect.signature(trigger).parameters\n",
        {
            "enabled": ("keywords['enabled'].default",),
            "target": ("Target.kind",),
            "location": ("Target.location",),
        },
    ),
]


def compiled_defaults(component: str) -> dict[str, Any]:
    """Parameter -> ``defaultValue`` of the component's compiled pipeline spec."""
    spec = json_format.MessageToDict(catalog.load_component(component).pipeline_spec)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    return {name: p["defaultValue"] for name, p in parameters.items() if "defaultValue" in p}


def runtime_defaults(case: Case) -> dict[str, list[Any]]:
    python = FAMILY_PYTHON[catalog.component(case.component).family]
    if not python.exists():
        pytest.skip(f"{python} is missing (make setup)")
    doc = json.dumps({"setup": case.setup, "defaults": case.defaults})
    done = subprocess.run([str(python), "-c", _PROBE, doc], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES, ids=[c.component for c in CASES])
def test_the_compiled_default_is_the_runtime_default(case):
    declared = compiled_defaults(case.component)
    applied = runtime_defaults(case)
    assert set(case.defaults) <= set(declared), "every parameter checked has a compiled default"
    differing = {
        f"{name}: {expression}": (declared[name], value)
        for name, values in applied.items()
        for expression, value in zip(case.defaults[name], values, strict=True)
        if value != declared[name] or isinstance(value, bool) != isinstance(declared[name], bool)
    }
    assert differing == {}, "parameter: runtime -> (compiled default, runtime default)"


def test_register_model_takes_blessed_from_the_executor_input_only(tmp_path):
    """``blessed`` has one default, the component's (KFP passes it): the registration has none
    and the launcher none of its own, so an input without it is refused, naming it."""
    assert compiled_defaults("register_model")["blessed"] is False
    doc = executor_input(
        tmp_path,
        {"model_name": "employment", "backend": "mlflow"},
        {"registered_model": "system.Artifact"},
        inputs={
            "model": ("system.Model", str(tmp_path / "model")),
            "metrics": ("system.Metrics", str(tmp_path / "metrics")),
        },
        output_params=["registered_version"],
    )
    code = launch(register_model_launcher.run, ["--executor_input", json.dumps(doc)])
    assert code == EXIT_USER_ERROR
    failure = json.loads((tmp_path / FAILURE_RECORD).read_text())
    assert failure["error"] == "ValueError: blessed must be true or false, not None"
