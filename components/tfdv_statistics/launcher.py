"""Launcher of tfdv_statistics: parses the executor input, computes statistics, writes outputs.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_statistics.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import os

from kfpkit.runtime.executor import Executor, main, write_text_artifact
from kfpkit.tfdv import artifacts, data_files, report
from kfpkit.tfdv.statistics import compute_statistics


def run(executor: Executor) -> None:
    data = executor.required_input("data")
    files = data_files.find_data_files(data.path, "data")
    statistics = executor.output("statistics")
    os.makedirs(statistics.path, exist_ok=True)
    stats = compute_statistics(
        files,
        os.path.join(statistics.path, artifacts.STATISTICS_FILE),
        slice_features=executor.string_list_param("slice_features"),
        beam_args=executor.string_list_param("beam_pipeline_args"),
    )
    statistics.metadata.update(artifacts.statistics_metadata(stats, files.format))
    title = f"Statistics of {data.metadata.get('split') or os.path.basename(data.path)}"
    write_text_artifact(executor.output("report").path, report.statistics_html(stats, title))


if __name__ == "__main__":
    main(run)
