"""kfp.Client's real HTTP calls, made by kfpkit.submit.kubeflow, received on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kfpkit import cli
from kfpkit.submit import kubeflow
from kfpkit.testing.pipeline_servers import KubeflowTestServer

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "compiled" / "training.yaml"
REQUIRED = [
    "project=p",
    "source_table=p.d.t",
    "destination_dataset=d",
    "serving_model_uri=gs://b/models/employment",
]
CREATES = (
    "/pipelines/upload",
    "/pipelines/upload_version",
    "/experiments",
    "/runs",
    "/recurringruns",
)


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeflowTestServer]:
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.delenv(kubeflow.TOKEN_ENV, raising=False)
    with KubeflowTestServer() as s:
        yield s


def _creates(server: KubeflowTestServer) -> list[str]:
    return [r.path for r in server.requests if r.method == "POST"]


def test_submit_and_schedule_wire_format(server: KubeflowTestServer) -> None:
    target = kubeflow.Kubeflow(host=server.url, token="secret-token")
    result = kubeflow.submit(
        TRAINING,
        target,
        cli_params=[*REQUIRED, "tuning_trials=0", "min_auc=0.75"],
        experiment="nightly",
        run_name="first",
        pipeline_root="gs://b/root",
        service_account="pipeline-runner",
        cron="TZ=UTC */30 2-4 * * MON-FRI",
        max_concurrency=2,
    )
    assert all(r.headers["authorization"] == "Bearer secret-token" for r in server.requests)

    # the pipeline's spec, uploaded as it was compiled, then a version named by its content
    upload, version = server.calls("POST", "/pipelines/upload")
    assert upload.query == {"name": "kfpkit-training"}
    assert yaml.safe_load(upload.multipart_file()) == yaml.safe_load(TRAINING.read_text())
    assert version.path.endswith("/upload_version")
    assert version.query["pipelineid"] == result.pipeline_id
    digest = hashlib.sha256(TRAINING.read_bytes()).hexdigest()
    assert version.query["name"] == result.version_name == f"kfpkit-training-{digest[:12]}"
    assert version.multipart_file() == TRAINING.read_bytes()

    (experiment,) = server.calls("POST", "/experiments")
    assert experiment.json()["display_name"] == "nightly"

    (run,) = server.calls("POST", "/apis/v2beta1/runs")
    body = run.json()
    assert body["display_name"] == "first"
    assert body["experiment_id"] == result.experiment_id
    assert body["service_account"] == "pipeline-runner"
    assert body["pipeline_version_reference"] == {
        "pipeline_id": result.pipeline_id,
        "pipeline_version_id": result.version_id,
    }
    assert body["runtime_config"]["pipeline_root"] == "gs://b/root"
    params = body["runtime_config"]["parameters"]
    assert params["tuning_trials"] == 0 and params["min_auc"] == 0.75
    assert params["project"] == "p" and len(params) == 6

    (recurring,) = server.calls("POST", "/recurringruns")
    job = recurring.json()
    assert job["trigger"] == {"cron_schedule": {"cron": "0 */30 2-4 * * 1-5"}}
    assert job["max_concurrency"] == 2
    assert job["no_catchup"] is True
    assert job["mode"] == "ENABLE"
    assert job["runtime_config"]["parameters"] == params
    assert job["pipeline_version_reference"] == body["pipeline_version_reference"]
    assert result.run_id and result.recurring_run_id


def test_resubmitting_reuses_the_pipeline_and_its_version(server: KubeflowTestServer) -> None:
    target = kubeflow.Kubeflow(host=server.url)
    first = kubeflow.submit(TRAINING, target, cli_params=REQUIRED)
    second = kubeflow.submit(TRAINING, target, cli_params=REQUIRED)
    assert (second.pipeline_id, second.version_id) == (first.pipeline_id, first.version_id)
    assert second.experiment_id == first.experiment_id
    assert len(server.calls("POST", "/pipelines/upload")) == 2  # the pipeline + one version
    assert len(server.calls("POST", "/experiments")) == 1
    assert len(server.calls("POST", "/apis/v2beta1/runs")) == 2


def test_a_changed_pipeline_gets_a_new_version_of_the_same_pipeline(
    server: KubeflowTestServer,
) -> None:
    target = kubeflow.Kubeflow(host=server.url)
    first = kubeflow.submit(TRAINING, target, cli_params=REQUIRED)
    uncached = kubeflow.submit(TRAINING, target, cli_params=REQUIRED, enable_caching=False)
    assert uncached.pipeline_id == first.pipeline_id
    assert uncached.version_id != first.version_id
    last_upload = server.calls("POST", "/upload_version")[-1]
    tasks = yaml.safe_load(last_upload.multipart_file())["root"]["dag"]["tasks"]
    assert {t["cachingOptions"]["enableCache"] for t in tasks.values()} == {False}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cli_params": [*REQUIRED, "tuning_trails=1"]}, ValueError, "tuning_trails"),
        ({"cli_params": [*REQUIRED, "tuning_trials=x"]}, ValueError, "NUMBER_INTEGER; 'x'"),
        ({"cli_params": REQUIRED[:1]}, ValueError, "needs a value for 'serving_model_uri'"),
        ({"cli_params": REQUIRED, "cron": "61 * * * *"}, ValueError, "'61'"),
        ({"cli_params": REQUIRED, "cron": "TZ=Europe/Paris 0 6 * * *"}, ValueError, "UTC"),
        ({"cli_params": REQUIRED, "max_concurrency": 0}, ValueError, "max_concurrency"),
    ],
)
def test_bad_input_creates_nothing(
    server: KubeflowTestServer, kwargs: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        kubeflow.submit(TRAINING, kubeflow.Kubeflow(host=server.url), **kwargs)
    assert server.requests == []


def test_not_a_pipeline_creates_nothing(server: KubeflowTestServer, tmp_path: Path) -> None:
    component = tmp_path / "component.yaml"
    component.write_text("name: x\ninputs: []\nimplementation: {container: {image: a}}\n")
    with pytest.raises(ValueError, match="not a compiled KFP pipeline spec"):
        kubeflow.submit(component, kubeflow.Kubeflow(host=server.url))
    assert server.requests == []


def test_unreachable_host_is_named_quickly(server: KubeflowTestServer) -> None:
    port = server.port
    server.close()  # nothing listens there any more
    with pytest.raises(
        RuntimeError, match=f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}"
    ):
        kubeflow.submit(
            TRAINING, kubeflow.Kubeflow(host=f"http://127.0.0.1:{port}"), cli_params=REQUIRED
        )


def test_a_server_that_is_not_kfp_is_refused_before_any_create(
    server: KubeflowTestServer,
) -> None:
    with pytest.raises(RuntimeError, match="HTTP 404"):
        kubeflow.submit(
            TRAINING, kubeflow.Kubeflow(host=server.url + "/not-kfp"), cli_params=REQUIRED
        )
    assert _creates(server) == []


def test_cli_schedule_params_file_token_env_and_runs(
    server: KubeflowTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = tmp_path / "params.json"
    params.write_text(
        json.dumps(
            {
                "project": "p",
                "source_table": "p.d.t",
                "destination_dataset": "d",
                "serving_model_uri": "gs://b/m",
            }
        )
    )
    monkeypatch.setenv("KF_PIPELINES_ENDPOINT", server.url)
    monkeypatch.setenv(kubeflow.TOKEN_ENV, "env-token")
    rc = cli.main(
        [
            "schedule",
            str(TRAINING),
            "--target",
            "kubeflow",
            "--params",
            str(params),
            "--param",
            "tuning_trials=1",
            "--cron",
            "@daily",
            "--run-now",
            "--experiment",
            "cli",
        ]
    )
    assert rc == 0
    (recurring,) = server.calls("POST", "/recurringruns")
    assert recurring.json()["trigger"]["cron_schedule"]["cron"] == "0 0 0 * * *"
    assert recurring.json()["runtime_config"]["parameters"]["tuning_trials"] == 1
    assert server.requests[0].headers["authorization"] == "Bearer env-token"
    assert cli.main(["runs", "--target", "kubeflow", "--experiment", "cli"]) == 0
    out = capsys.readouterr().out
    assert "cron '0 0 0 * * *' (UTC)" in out
    assert "PENDING" in out and "run-" in out

    rc = cli.main(
        [
            "schedule",
            str(TRAINING),
            "--target",
            "kubeflow",
            "--params",
            str(params),
            "--cron",
            "0 0 * * 8",
        ]
    )
    assert rc != 0
    assert "day of week '8'" in capsys.readouterr().err
    assert len(server.calls("POST", "/recurringruns")) == 1


def test_a_repeated_schedule_is_found_not_doubled(server: KubeflowTestServer) -> None:
    target = kubeflow.Kubeflow(host=server.url)
    first = kubeflow.submit(TRAINING, target, cli_params=REQUIRED, cron="0 3 * * *", run=False)
    again = kubeflow.submit(TRAINING, target, cli_params=REQUIRED, cron="0 3 * * *", run=False)
    assert again.recurring_run_id == first.recurring_run_id
    assert len(server.calls("POST", "/recurringruns")) == 1
    with pytest.raises(ValueError, match="already exists"):
        kubeflow.submit(TRAINING, target, cli_params=REQUIRED, cron="0 4 * * *", run=False)
    assert len(server.calls("POST", "/recurringruns")) == 1
