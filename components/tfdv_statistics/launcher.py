"""Launcher of tfdv_statistics: parses the executor input, computes statistics, writes outputs.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_statistics.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import os

from kfpkit.components._runtime.executor import Executor, main
from kfpkit.components._tfdv import artifacts, data_files, report
from kfpkit.components.tfdv_statistics.statistics import compute_statistics


def _string_list(executor: Executor, name: str) -> list[str]:
    value = executor.json_param(name, []) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    return value


def run(executor: Executor) -> None:
    data = executor.input("data")
    if data is None:
        raise ValueError("data: no input Dataset given")
    files = data_files.find_data_files(data.path, "data")
    statistics = executor.output("statistics")
    os.makedirs(statistics.path, exist_ok=True)
    stats = compute_statistics(
        files,
        os.path.join(statistics.path, artifacts.STATISTICS_FILE),
        slice_features=_string_list(executor, "slice_features"),
        beam_args=_string_list(executor, "beam_pipeline_args"),
    )
    overall = stats.datasets[0]
    statistics.metadata.update(
        {
            "file": artifacts.STATISTICS_FILE,
            "num_examples": overall.num_examples,
            "num_features": len(overall.features),
            "slices": [d.name for d in stats.datasets],
            "source_format": files.format,
        }
    )
    title = f"Statistics of {data.metadata.get('split') or os.path.basename(data.path)}"
    artifacts.write_text(executor.output("report").path, report.statistics_html(stats, title))


if __name__ == "__main__":
    main(run)
