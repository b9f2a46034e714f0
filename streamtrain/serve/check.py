"""The serving check: a fresh process that imports only TensorFlow must reproduce the in-process probabilities.

Before ``current`` moves to a version, ``Checker`` hands that version's
SavedModel and a list of raw texts (plus ``PROBES``) to a child Python
started with ``-I`` (no ``PYTHONPATH``, no user site, not the working
directory; Keras made unimportable, as TensorFlow Serving has none), which
loads it with ``tf.saved_model.load`` and scores the texts through
``serving_default``. The check passes when the child ran, did not import
streamtrain, and every probability is within ``TOLERANCE`` of what
streamtrain's own vectorizer and model give in process. The child is started
early (``Checker.start``: its TensorFlow import overlaps the caller's work)
and scores while the caller goes on (``submit``); ``result`` waits
``TIMEOUT`` seconds at most, so an unattended run never hangs on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from streamtrain.fs.atomic import alive

TOLERANCE = 1e-5  # float32 rounding: the graph scores in float32, predict in float32 then float64
_SCRATCH = "streamtrain-check-"  # + the pid of the process that checks, + a random part: its scratch directory
TIMEOUT = 600.0  # seconds the child may take once handed the SavedModel
PROBES = (  # scored with every check besides the validation sample: the edges of the text graph
    "",
    "   ",
    "a",
    "Ünïcödé façade naïve café ½ ﬁne",
    "ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ σοφός",
    "東京都 中文 한국어 텍스트 🙂👍",
    "tab\tnew\nline\x00control\x1b",
)

_SCRIPT = r"""
import json, os, sys
sys.modules["keras"] = None  # TensorFlow Serving has no Keras: the artifact must load without it
import numpy as np
import tensorflow as tf
request = json.loads(sys.stdin.readline() or "null")
if request is None:
    sys.exit(0)
if any(name.split(".")[0] == "streamtrain" for name in sys.modules):
    sys.exit("streamtrain was imported")
with open(request["texts"], encoding="utf-8") as fh:
    texts = json.load(fh)
serve = tf.saved_model.load(request["saved_model"]).signatures["serving_default"]
parts = [serve(text=tf.constant(texts[i : i + 256], tf.string))["probabilities"].numpy()
         for i in range(0, len(texts), 256)]
np.save(request["out"], np.concatenate(parts))
sys.stderr.flush()
os._exit(0)  # the file is closed: TensorFlow's teardown at exit (about 0.45 s) is not waited for
"""


@dataclass
class CheckResult:
    """What the check found; ``record`` goes into ``promotion.json``.

    Attributes:
        passed: whether the SavedModel reproduced the probabilities.
        texts: how many texts were scored (probes included).
        max_difference: the largest absolute difference of a probability (None when none were compared).
        seconds: from ``submit`` to the result.
        problem: why it failed, one line; None when it passed.
    """

    passed: bool
    texts: int
    max_difference: float | None
    seconds: float
    problem: str | None = None

    def record(self) -> dict:
        """The result as a JSON object (its fields)."""
        return asdict(self)


class Checker:
    """One child process that checks one SavedModel: ``start``, ``submit``, then ``result`` (or ``close``).

    Args:
        process: the child, reading its one request on stdin.
        scratch: the child's working directory, removed by ``close``.
    """

    def __init__(self, process: subprocess.Popen, scratch: tempfile.TemporaryDirectory):
        self.process = process
        self.scratch = scratch
        self.submitted: float | None = None  # when ``submit`` handed the child its work
        self.texts = 0

    @classmethod
    def start(cls) -> Checker:
        """Start the child: it imports TensorFlow at once, then waits for ``submit`` to give it work.

        The scratch directories of checks whose process is gone are removed first.

        Returns:
            The checker.
        """
        _sweep()
        scratch = tempfile.TemporaryDirectory(prefix=f"{_SCRATCH}{os.getpid()}-")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        with open(Path(scratch.name) / "stderr.txt", "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-I", "-c", _SCRIPT],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                cwd=scratch.name,
            )
        return cls(process, scratch)

    def submit(self, saved_model: Path, texts: Sequence[str]) -> None:
        """Have the child score ``with_probes(texts)`` through ``saved_model``; returns at once.

        Args:
            saved_model: the SavedModel directory.
            texts: the texts to score besides the probes.
        """
        everything = with_probes(texts)
        self.texts = len(everything)
        folder = Path(self.scratch.name)
        (folder / "texts.json").write_text(json.dumps(everything), encoding="utf-8")
        request = {
            "saved_model": str(Path(saved_model).resolve()),
            "texts": str(folder / "texts.json"),
            "out": str(folder / "probabilities.npy"),
        }
        self.submitted = time.monotonic()
        try:
            assert self.process.stdin is not None
            self.process.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            self.process.stdin.close()
        except OSError:  # the child died before it was given work: ``result`` reports its exit
            pass

    def result(self, expected: np.ndarray) -> CheckResult:
        """Wait for the child (``TIMEOUT`` at most) and compare its probabilities with ``expected``; then ``close``.

        Args:
            expected: the in-process probabilities of ``with_probes(texts)``, one row per text.

        Returns:
            The result; a child that failed, timed out or wrote probabilities of another shape fails the check.
        """
        assert self.submitted is not None, "submit first"
        problem = self._wait()
        out = Path(self.scratch.name) / "probabilities.npy"
        got = np.load(out) if problem is None and out.exists() else None
        seconds = round(time.monotonic() - self.submitted, 3)
        self.close()
        if got is None:
            return CheckResult(False, self.texts, None, seconds, problem or "it wrote no probabilities")
        if got.shape != expected.shape:
            why = f"probabilities of shape {got.shape}, expected {expected.shape}"
            return CheckResult(False, self.texts, None, seconds, why)
        difference = float(np.abs(got.astype(np.float64) - expected).max(initial=0.0))
        if not difference <= TOLERANCE:  # NaN fails too
            why = f"probabilities differ from streamtrain's by up to {difference:.3g} (allowed {TOLERANCE:g})"
            return CheckResult(False, self.texts, difference, seconds, why)
        return CheckResult(True, self.texts, difference, seconds)

    def _wait(self) -> str | None:
        """None when the child exited 0, else what went wrong."""
        try:
            code = self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"a fresh TensorFlow process did not finish within {TIMEOUT:g} s"
        if code != 0:
            err = (Path(self.scratch.name) / "stderr.txt").read_text(encoding="utf-8", errors="replace")
            lines = err.strip().splitlines()
            last = lines[-1] if lines else f"exit status {code}"
            return f"a fresh TensorFlow process could not load and score it: {last}"
        return None

    def close(self) -> None:
        """Stop the child if it is still running (nothing to check, or the caller failed); remove its files."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        self.scratch.cleanup()


def _sweep() -> None:
    """Remove the scratch directories of checks whose process is gone (a fit killed with SIGKILL leaves its own)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_SCRATCH}*-*"):
        pid = path.name.removeprefix(_SCRATCH).split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def with_probes(texts: Sequence[str]) -> list[str]:
    """``texts`` followed by ``PROBES``: what ``Checker.submit`` has scored, in order."""
    return [*texts, *PROBES]
