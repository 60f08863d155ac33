"""The Vertex AI SDK's real REST requests, made by kfpkit.submit.vertex, received on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials

from kfpkit.cli import main
from kfpkit.submit import vertex
from kfpkit.testing.pipeline_servers import VertexTestServer

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "compiled" / "training.yaml"
REQUIRED = [
    "project=p",
    "source_table=p.d.t",
    "destination_dataset=d",
    "serving_model_uri=gs://b/models/employment",
]
PARENT = "/v1/projects/proj/locations/europe-west4"


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[VertexTestServer]:
    from google.cloud.aiplatform import initializer

    # aiplatform.init is process-wide: leave the config as it was before the test
    saved = dict(vars(initializer.global_config))
    with VertexTestServer() as s:
        # the SDK's pipeline-root bucket check goes to the same local server
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", s.url)
        yield s
    vars(initializer.global_config).clear()
    vars(initializer.global_config).update(saved)


def _target(endpoint: str) -> vertex.Vertex:
    return vertex.Vertex(
        project="proj",
        location="europe-west4",
        api_endpoint=endpoint,
        credentials=AnonymousCredentials(),
        api_transport="rest",
    )


def test_a_bare_host_port_endpoint_is_https_to_the_sdk(server: VertexTestServer) -> None:
    """``api_endpoint="127.0.0.1:PORT"`` makes the REST transport speak TLS: a plain-HTTP
    test server needs ``http://`` in the endpoint."""
    with pytest.raises(Exception, match="SSL"):
        vertex.submit(
            TRAINING,
            _target(f"127.0.0.1:{server.port}"),
            pipeline_root="gs://bucket/r",
            cli_params=REQUIRED,
            service_account="a@b.c",
        )
    assert server.calls("POST", "/pipelineJobs") == []


def test_job_and_schedule_wire_format(server: VertexTestServer) -> None:
    result = vertex.submit(
        TRAINING,
        _target(server.url),
        pipeline_root="gs://bucket/root",
        cli_params=[*REQUIRED, "tuning_trials=0", 'key_columns=["id"]'],
        display_name="nightly",
        enable_caching=False,
        labels={"team": "ml", "env": "test"},
        service_account="runner@proj.iam.gserviceaccount.com",
        network="projects/12345/global/networks/vpc",
        cron="TZ=Europe/Paris 0 6 * * MON-FRI",
        max_concurrent_run_count=2,
        max_run_count=30,
    )
    (job_post,) = server.calls("POST", f"{PARENT}/pipelineJobs")
    job = job_post.json()
    compiled = yaml.safe_load(TRAINING.read_text())
    assert job["pipelineSpec"]["pipelineInfo"] == compiled["pipelineInfo"]
    assert job["pipelineSpec"]["root"]["inputDefinitions"] == compiled["root"]["inputDefinitions"]
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {t["cachingOptions"].get("enableCache", False) for t in tasks.values()} == {False}
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
    values = job["runtimeConfig"]["parameterValues"]
    assert values["project"] == "p" and values["key_columns"] == ["id"]
    assert values["tuning_trials"] == 0
    assert job["serviceAccount"] == "runner@proj.iam.gserviceaccount.com"
    assert job["network"] == "projects/12345/global/networks/vpc"
    assert job["labels"] == {"team": "ml", "env": "test"}
    assert job["displayName"] == "nightly"

    (schedule_post,) = server.calls("POST", f"{PARENT}/schedules")
    schedule = schedule_post.json()
    assert schedule["cron"] == "TZ=Europe/Paris 0 6 * * 1-5"
    assert int(schedule["maxConcurrentRunCount"]) == 2
    assert int(schedule["maxRunCount"]) == 30
    scheduled = schedule["createPipelineJobRequest"]["pipelineJob"]
    assert schedule["createPipelineJobRequest"]["parent"] == PARENT[len("/v1/") :]
    assert scheduled["runtimeConfig"] == job["runtimeConfig"]
    assert scheduled["serviceAccount"] == job["serviceAccount"]
    assert scheduled["network"] == job["network"]
    assert result.job_name.startswith(PARENT[len("/v1/") :] + "/pipelineJobs/")
    assert result.schedule_name.startswith(PARENT[len("/v1/") :] + "/schedules/")
    # Cloud Storage saw nothing: the template was read from the local file, and the SDK's
    # set-up of the pipeline root's bucket (create, grant IAM, Resource Manager) is skipped
    assert [r.path for r in server.requests if r.path.startswith("/storage/")] == []


def test_schedule_without_a_run_and_list_runs(server: VertexTestServer) -> None:
    target = _target(server.url)
    sa = "runner@proj.iam.gserviceaccount.com"
    vertex.submit(
        TRAINING,
        target,
        pipeline_root="gs://bucket/r",
        cli_params=REQUIRED,
        cron="@hourly",
        run=False,
        service_account=sa,
    )
    assert server.calls("POST", "/pipelineJobs") == []
    assert server.calls("POST", "/schedules")[0].json()["cron"] == "0 * * * *"
    vertex.submit(
        TRAINING, target, pipeline_root="gs://bucket/r", cli_params=REQUIRED, service_account=sa
    )
    (run,) = vertex.list_runs(target)
    assert run["state"] == "PIPELINE_STATE_PENDING" and run["name"] == "kfpkit-training"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cli_params": [*REQUIRED, "colour=red"]}, "no parameter 'colour'"),
        ({"cli_params": [*REQUIRED, "min_auc=[1]"]}, r"'min_auc' is NUMBER_DOUBLE; \[1\]"),
        ({"cli_params": REQUIRED, "cron": "0 6 * *"}, "4 fields"),
        ({"cli_params": REQUIRED, "cron": "TZ=Europe/Pariss 0 6 * * *"}, "'Europe/Pariss'"),
        ({"cli_params": REQUIRED, "pipeline_root": "/tmp/root"}, "gs:// pipeline_root"),
        ({"cli_params": REQUIRED, "labels": {"Team": "ml"}}, "label Team"),
    ],
)
def test_bad_input_sends_nothing(server: VertexTestServer, kwargs: dict, message: str) -> None:
    arguments = {"pipeline_root": "gs://bucket/r", **kwargs}
    with pytest.raises(ValueError, match=message):
        vertex.submit(TRAINING, _target(server.url), **arguments)
    assert server.requests == []


def test_not_a_pipeline_sends_nothing(server: VertexTestServer, tmp_path: Path) -> None:
    other = tmp_path / "deployment.yaml"
    other.write_text("apiVersion: apps/v1\nkind: Deployment\n")
    with pytest.raises(ValueError, match="not a compiled KFP pipeline spec"):
        vertex.submit(other, _target(server.url), pipeline_root="gs://bucket/r")
    assert server.requests == []


def test_unreachable_endpoint_is_named(server: VertexTestServer) -> None:
    url = server.url
    server.close()
    with pytest.raises(RuntimeError, match=f"cannot reach Vertex AI at {url}"):
        vertex.submit(TRAINING, _target(url), pipeline_root="gs://bucket/r", cli_params=REQUIRED)


def test_without_the_vertex_extra_the_error_names_it() -> None:
    """Plain kfpkit imports without aiplatform; using Vertex AI then says what to install."""
    code = (
        "import sys; sys.modules['google.cloud.aiplatform'] = None\n"
        "import kfpkit.cli, kfpkit.submit.vertex as v\n"
        "try:\n    v.aiplatform()\nexcept RuntimeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'kfpkit[vertex]'" in out.stdout


def test_cli_schedule_and_runs(
    server: VertexTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # credentials the SDK already holds (a notebook's aiplatform.init): the CLI's own
    # init keeps them; real users have Application Default Credentials instead
    vertex.aiplatform().init(credentials=AnonymousCredentials())
    args = [
        "schedule",
        str(TRAINING),
        "--target",
        "vertex",
        "--project",
        "proj",
        "--location",
        "europe-west4",
        "--api-endpoint",
        server.url,
        "--pipeline-root",
        "gs://bucket/r",
        "--service-account",
        "a@proj.iam.gserviceaccount.com",
        "--cron",
        "CRON_TZ=Asia/Tokyo 0 9 * * *",
        "--max-runs",
        "5",
        "--label",
        "team=ml",
        *[f"--param={p}" for p in REQUIRED],
    ]
    assert main(args) == 0
    schedule = server.calls("POST", "/schedules")[0]
    assert schedule.json()["cron"] == "TZ=Asia/Tokyo 0 9 * * *"
    assert int(schedule.json()["maxRunCount"]) == 5
    assert server.calls("POST", "/pipelineJobs") == []
    assert "schedule projects/proj/locations/europe-west4/schedules/" in capsys.readouterr().out
    assert (
        main(
            [
                "runs",
                "--target",
                "vertex",
                "--project",
                "proj",
                "--location",
                "europe-west4",
                "--api-endpoint",
                server.url,
            ]
        )
        == 0
    )
    assert "no runs" in capsys.readouterr().out
