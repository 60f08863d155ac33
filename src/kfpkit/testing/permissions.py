"""Test helper: a command that file permissions stop, even where the tests run as root.

Root reads a file of mode 000 (the capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH skip
the permission bits), so a chmod alone tests nothing in a container or CI job running as root.
Under util-linux's ``setpriv`` with both capabilities dropped from the bounding and inheritable
sets, root's child obeys the bits like any user (it stays root: its files stay its own).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

_DROPPED = "-dac_override,-dac_read_search"


def unprivileged(argv: Sequence[str]) -> list[str] | None:
    """``argv`` as a command that file permissions apply to: itself for a user other than
    root; for root, under ``setpriv`` without the two capabilities. None where root cannot
    drop them (no ``setpriv``, or no CAP_SETPCAP to change the bounding set)."""
    if os.geteuid() != 0:
        return list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    command = [setpriv, f"--inh-caps={_DROPPED}", f"--bounding-set={_DROPPED}"]
    if subprocess.run([*command, "true"], capture_output=True).returncode != 0:
        return None
    return [*command, *argv]
