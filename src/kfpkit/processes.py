"""Start a process and poll until it is ready; stop it: the one loop behind the BigQuery
emulator, the local model server and the test kube-apiserver (stdlib only)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence


def wait_ready(
    processes: Sequence[subprocess.Popen],
    ready: Callable[[], bool],
    timeout: float,
    exited: Callable[[subprocess.Popen], BaseException],
    not_ready: Callable[[], BaseException],
    interval: float = 0.25,
) -> float:
    """Polls ``ready()`` every ``interval`` seconds until it is true; returns the seconds it
    took. Raises ``exited(process)`` as soon as one of ``processes`` exits, and
    ``not_ready()`` after ``timeout`` seconds. ``ready`` answers False while it cannot tell
    (connection refused and the like)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        for process in processes:
            if process.poll() is not None:
                raise exited(process)
        if ready():
            return time.monotonic() - start
        time.sleep(interval)
    raise not_ready()


def stop(process: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGTERM, SIGKILL after ``timeout`` seconds (or when interrupted while waiting: the
    process is never left running); returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        except BaseException:
            process.kill()
            raise
    return process.returncode
