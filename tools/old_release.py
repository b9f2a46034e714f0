"""Write tests/fixtures/streamtrain-0.9.tar.gz: a dataset and a model directory made by streamtrain 0.9.0 itself.

Reads the 0.9.0 release's sources out of git (``git archive``, commit db21d73 "version 0.9.0") into a scratch
directory and runs them with this Python, on the first 800 training and 200 test rows of the demo corpus (small,
so the fixture stays small): an n-gram dataset in HDF5 and a sequence dataset in Parquet, each with a model
directory of one promoted version. ``tests/test_old_formats.py`` reads, verifies and trains on them with today's code.

    python tools/old_release.py            # rewrites the fixture (needs the git history)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASE, COMMIT = "0.9", "db21d73"
FIXTURE = REPO / "tests" / "fixtures" / f"streamtrain-{RELEASE}.tar.gz"


def run(src: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "streamtrain", *args, "--quiet"]
    subprocess.run(command, check=True, env=env, cwd=src, stdout=subprocess.DEVNULL)  # cwd: -m puts it first


def head(source: Path, target: Path, lines: int) -> Path:
    with source.open(encoding="utf-8") as f:
        target.write_text("".join(line for _, line in zip(range(lines), f)), encoding="utf-8")
    return target


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        src = t / "src"
        src.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", COMMIT, "streamtrain"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
        train = head(REPO / "data" / "tickets_train.csv", t / "train.csv", 801)
        test = head(REPO / "data" / "tickets_test.csv", t / "test.csv", 201)
        out = t / f"streamtrain-{RELEASE}"
        common = [str(train), "--test", str(test), "--top-k", "1000"]
        run(src, "prepare", *common, "--data", f"{out}/ngram", "--vectorizer", "ngram")
        run(
            src,
            "prepare",
            *common,
            "--data",
            f"{out}/sequence",
            "--format",
            "parquet",
            "--vectorizer",
            "sequence",
            "--max-length",
            "32",
        )
        run(src, "fit", "--data", f"{out}/ngram", "--model-dir", f"{out}/model-ngram", "--epochs", "2", "--force")
        run(
            src,
            "fit",
            "--data",
            f"{out}/sequence",
            "--model-dir",
            f"{out}/model-sequence",
            "--epochs",
            "1",
            "--embedding-dim",
            "8",
            "--filters",
            "8",
            "--force",
        )
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(FIXTURE, "w:gz") as tar:
            tar.add(out, arcname=out.name)
    print(f"{FIXTURE.relative_to(REPO)}: {FIXTURE.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
