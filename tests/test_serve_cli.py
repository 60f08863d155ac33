"""``kfpkit serve`` from the SDK environment (no TensorFlow, no kserve in this process): the
server runs in the train environment, answers real requests, and the SDK stays TF-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfpkit.cli import main
from kfpkit.serve import ServeOptions, command

ROOT = Path(__file__).resolve().parent.parent
TRAIN_PYTHON = ROOT / ".venvs" / "train" / "bin" / "python"


def test_serve_smoke_test_answers_from_the_sdk_without_tensorflow(candidate, tmp_path, capsys):
    from kfpkit.testing.serving import candidate_probability

    data = tmp_path / "rows.parquet"
    ages, sexes = [23.0, 41.0, 67.0], ["1", "2", "1"]
    pq.write_table(pa.table({"AGEP": ages, "SEX": sexes, "other": [1, 2, 3]}), data)
    logs = tmp_path / "logs"
    code = main(["serve", str(candidate), "--runner", "python", "--python", str(TRAIN_PYTHON),
                 "--port", "0", "--smoke-test", "3", "--data", str(data),
                 "--log-dir", str(logs)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    expected = candidate_probability(np.array(ages), np.array(sexes))
    for i, p in enumerate(expected):
        assert f"row {i} (AGEP={ages[i]}, SEX={sexes[i]}, ...): V1 {p:.4f}, V2 {p:.4f}" in out
    assert "v1: 3 requests of 1 row: p50" in out and "v2: 3 requests" in out
    assert "request log: 8 rows in" in out  # 3 rows each over V1 and V2, 1 warm-up each
    assert len(list((logs / "candidate").glob("*.parquet"))) >= 1
    assert "tensorflow" not in sys.modules and "kserve" not in sys.modules


def test_docker_runner_uses_the_train_image_host_network_and_read_only_model(tmp_path):
    model = tmp_path / "model"
    (model / "1").mkdir(parents=True)
    # a SavedModel's wire format as far as the pre-start check reads it: version 1, a MetaGraph
    (model / "1" / "saved_model.pb").write_bytes(b"\x08\x01\x12\x00")
    cmd = command(ServeOptions(str(model), log_dir=str(tmp_path / "logs"), port=9000))
    assert cmd[:5] == ["docker", "run", "--rm", "--network", "host"]
    assert f"{model}:{model}:ro" in cmd and f"{tmp_path / 'logs'}:{tmp_path / 'logs'}" in cmd
    assert any(part.endswith("/train:0.1.0") or "/train:" in part for part in cmd)
    assert cmd[cmd.index("--port") + 1] == "9000"


def test_bad_arguments_fail_with_a_clear_message(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nowhere"), "--runner", "python"]) == 2  # a user error
    assert "MODEL_DIR" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    assert main(["serve", str(tmp_path / "m"), "--runner", "python"]) == 2
    assert "--python PATH" in capsys.readouterr().err


@pytest.mark.docker
def test_serve_in_the_train_image_with_docker(candidate, tmp_path, capsys):
    """The default runner: the built train image (``python images/build.py train``)."""
    from kfpkit import images

    ref = images.image("train")
    probe = subprocess.run(["docker", "image", "inspect", ref], capture_output=True)
    assert probe.returncode == 0, f"{ref} not built: run `python images/build.py train`"
    data = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"AGEP": [30.0, 50.0], "SEX": ["1", "2"]}), data)
    code = main(["serve", str(candidate), "--port", "0", "--smoke-test", "2",
                 "--data", str(data)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "docker run --rm --network host" in out and "v2: 2 requests of 1 row" in out


@pytest.mark.docker
def test_kserve_push_launcher_validates_in_the_train_image(candidate, tmp_path):
    """The component as KFP runs it: its launcher in the train image, default networking."""
    import json
    import os

    from kfpkit import images
    from kfpkit.testing import executor_input

    test = tmp_path / "test"
    test.mkdir()
    pq.write_table(pa.table({"AGEP": [30.0, 50.0, 70.0], "SEX": ["1", "2", "1"]}),
                   test / "data-000000000000.parquet")  # fmt: skip
    outputs = {"deployment": "system.Artifact", "infra_validation": "system.Metrics",
               "summary": "system.Markdown"}  # fmt: skip
    doc = executor_input(
        tmp_path / "out", {"model_name": "candidate"}, outputs,
        {"model": ("system.Model", str(candidate)), "test_data": ("system.Dataset", str(test))},
        output_params=["endpoint_url"],
    )  # fmt: skip
    mounts = ["-v", f"{tmp_path}:{tmp_path}", "-v", f"{candidate}:{candidate}:ro"]
    done = subprocess.run(
        ["docker", "run", "--rm", *mounts, "-u", f"{os.getuid()}:{os.getgid()}",
         images.image("train"), "python3", "-m", "kfpkit.components.kserve_push.launcher",
         "--executor_input", json.dumps(doc)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    metrics = out["artifacts"]["infra_validation"]["artifacts"][0]["metadata"]
    assert metrics["infra_validation_passed"] == 1.0 and metrics["v2_max_abs_difference"] <= 1e-5


def test_serve_in_the_foreground_until_ctrl_c(candidate, tmp_path):
    import json
    import re
    import signal
    import urllib.request

    logs = tmp_path / "logs"
    cli = subprocess.Popen(
        [sys.executable, "-m", "kfpkit.cli", "serve", str(candidate), "--runner", "python",
         "--python", str(TRAIN_PYTHON), "--port", "0", "--log-dir", str(logs)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert cli.stdout is not None
        for line in cli.stdout:
            found = re.search(r"ready in .*: (http://127\.0\.0\.1:\d+)/v1/models/candidate", line)
            if found:
                break
        assert found, "the CLI never said it was ready"
        body = json.dumps({"instances": [{"AGEP": 33.0, "SEX": "2"}]}).encode()
        request = urllib.request.Request(f"{found.group(1)}/v1/models/candidate:predict", body,
                                         {"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert len(json.loads(answer.read())["predictions"]) == 1
        cli.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, rest
    assert "request log: 1 rows in 1 file(s)" in rest


def test_serve_variants_with_a_routing_policy_from_the_sdk(candidate, tmp_path, capsys):
    data = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"AGEP": [23.0, 41.0], "SEX": ["1", "2"]}), data)
    logs = tmp_path / "logs"
    code = main(["serve", "--variant", f"a={candidate}:3", "--variant", f"b={candidate}",
                 "--routing", "bandit", "--bandit", "epsilon-greedy", "--epsilon", "0.2",
                 "--name", "employment", "--runner", "python", "--python", str(TRAIN_PYTHON),
                 "--port", "0", "--smoke-test", "2", "--data", str(data),
                 "--log-dir", str(logs)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "request log: 6 rows in" in out
    policy = (logs / "employment" / "policy.json").read_text()
    assert '"bandit": "epsilon-greedy"' in policy and '"epsilon": 0.2' in policy


def test_variant_arguments_are_checked_and_mounted(tmp_path, capsys):
    model = tmp_path / "model"
    (model / "1").mkdir(parents=True)
    (model / "1" / "saved_model.pb").write_bytes(b"\x08\x01\x12\x00")
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "AGEP" type: FLOAT }')
    flags = ("--routing", "ab", "--unit-field", "id")
    variants = (f"a={model}", f"b={model}:3")
    cmd = command(ServeOptions("", variants=variants, schema=str(schema), experiment_flags=flags))
    assert "--model-dir" not in cmd and f"{model}:{model}:ro" in cmd
    assert f"{schema}:{schema}:ro" in cmd
    joined = " ".join(cmd)
    assert f"--variant a={model}:1.0 --variant b={model}:3.0" in joined
    assert "--routing ab --unit-field id" in joined and f"--schema {schema}" in joined
    for argv, words in (
        (["serve", str(model), "--variant", f"a={model}"], "MODEL_DIR or --variant"),
        (["serve", "--variant", f"a={tmp_path / 'none'}"], "--variant a"),
        (["serve", "--variant", f"a={model}", "--variant", f"a={model}"], "given more than once"),
    ):
        assert main([*argv, "--runner", "python", "--python", "python3"]) == 2
        assert words in capsys.readouterr().err


def test_the_explain_baseline_reaches_the_server_mounted_read_only(tmp_path):
    model = tmp_path / "model"
    (model / "1").mkdir(parents=True)
    (model / "1" / "saved_model.pb").write_bytes(b"\x08\x01\x12\x00")
    baseline = tmp_path / "explanation.json"
    baseline.write_text('{"baseline": {}}')
    options = ServeOptions(str(model), explain_baseline=str(baseline), explain_method="auto")
    cmd = command(options)
    assert f"{baseline}:{baseline}:ro" in cmd
    assert cmd[cmd.index("--explain-baseline") + 1] == str(baseline)
    assert cmd[cmd.index("--explain-method") + 1] == "auto"
    with pytest.raises(ValueError, match="--explain-baseline 'nowhere.json' does not exist"):
        command(ServeOptions(str(model), explain_baseline="nowhere.json"))
