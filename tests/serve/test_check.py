"""The serving check's scratch directories: a killed fit's is removed by the next check (``serve.check``)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from streamtrain.serve.check import Checker


def test_a_killed_checks_scratch_is_swept_and_a_live_ones_is_kept():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is no longer running
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        root = Path(tempfile.gettempdir())
        dead = Path(tempfile.mkdtemp(dir=root, prefix=f"streamtrain-check-{gone.pid}-"))
        (dead / "texts.json").write_text("[]")
        live = Path(tempfile.mkdtemp(dir=root, prefix=f"streamtrain-check-{living.pid}-"))
        checker = Checker.start()
        checker.close()
        assert not dead.exists() and live.exists()
        assert not Path(checker.scratch.name).exists()  # its own, removed by close
    finally:
        living.kill()
        living.wait()
        if live.exists():
            live.rmdir()
