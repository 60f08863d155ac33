"""kfpkit's exit codes, one rule for every command: 2 for the user's error (a bad argument or
input: ValueError, and argparse's own usage errors), 1 for a system error (RuntimeError: a
service that does not answer, a failed run), 0 for success."""

from __future__ import annotations

import pytest

from kfpkit.cli import main

ROOT_ARGS = ["--pipeline-root", "unused-root"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "training", "--local", "--param", "noequals", *ROOT_ARGS], "name=value"),
        (["run", "training", *ROOT_ARGS], "Only --local runs"),
        (["run", "training", "--local", "--window", "2016", *ROOT_ARGS], "add --emulator"),
        (["compile", "--target", "nowhere", "--out", "unused-out"], "nowhere"),
    ],
)
def test_a_user_error_exits_2_naming_the_bad_value(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run"])  # argparse: the pipeline is missing
    assert e.value.code == 2


def test_a_service_that_does_not_answer_exits_1(capsys, monkeypatch):
    monkeypatch.setenv("KF_PIPELINES_TOKEN", "token")
    argv = ["runs", "--target", "kubeflow", "--host", "http://127.0.0.1:9"]
    assert main(argv) == 1
    assert "127.0.0.1:9" in capsys.readouterr().err
