#!/usr/bin/env python3
"""Write an N-times larger labelled text corpus from a real one, for scale benchmarks.

Streaming: the input is read row by row and the output written row by row; for
``--factor N`` the input is simply read N times (pass 0 is the original text,
passes 1..N-1 get token dropout), and every row goes through a bounded, seeded
shuffle buffer (``--buffer-size``, default 10,000 rows), so memory stays flat
whatever the input size.  The output order is only locally shuffled: rows more
than a buffer apart keep their relative order (for a directory tree the classes
are interleaved round-robin first; a tar archive or CSV keeps its own order).

Inputs (``--format auto`` picks by path):

* dir: a directory-per-class tree like aclImdb ``train/`` (``pos/``, ``neg/``
  holding one UTF-8 ``.txt`` file per document; label = subdirectory name);
* csv: a CSV (optionally ``.csv.gz``) such as AG News without header, label
  from ``--csv-label-col`` (default 0) and text from ``--csv-text-cols``
  (default: all other columns) joined with a space; ``--csv-header`` skips
  a header row;
* tar: a ``.tar.gz``/``.tgz`` of a directory-per-class tree, read as a
  stream (``tarfile`` mode ``r|gz``); members ``<--member-prefix><class>/<file>.txt``.

Output by extension: ``.jsonl`` / ``.jsonl.gz`` rows ``{"text": ..., "label": ...}``
or ``.csv`` / ``.csv.gz`` with header ``text,label``.  It is written to a
``.partial-<pid>`` file and renamed when complete.  Prints one summary line.

Examples::

    python tools/grow.py ../shared/datasets/ag_news/test.csv out/ag_x4.jsonl \\
        --factor 4 --csv-label-col 0 --csv-text-cols 1 2
    python tools/grow.py ../shared/datasets/imdb/aclImdb_labeled.tar.gz out/imdb_x2.csv.gz \\
        --factor 2 --member-prefix aclImdb/train/
    python tools/grow.py path/to/aclImdb/train out/imdb_x3.jsonl.gz --factor 3 --classes pos neg
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import random
import sys
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, TextIO

Row = tuple[str, str]  # (text, label)
RowSource = Callable[[], Iterator[Row]]  # called once per pass; each call re-reads

OUTPUT_EXTENSIONS = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz")
TAR_EXTENSIONS = (".tar.gz", ".tgz")


class GrowError(Exception):
    """A clear, user-facing failure (unreadable input, bad arguments)."""


class Summary(NamedTuple):
    """Counts reported at the end of a run."""

    rows_in: int
    rows_out: int
    bytes_out: int


# --------------------------------------------------------------------------
# Input readers.  Each yields (text, label) rows lazily.
# --------------------------------------------------------------------------
def _decode(data: bytes, where: str) -> str:
    """Decode UTF-8 ``data`` or fail naming ``where``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GrowError(f"cannot read {where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def _class_files(root: str, classes: Sequence[str] | None) -> dict[str, list[str]]:
    """Map each class subdirectory of ``root`` to its sorted ``.txt`` file paths."""
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir())
    except OSError as exc:
        raise GrowError(f"cannot read directory {root}: {exc.strerror or exc}") from exc
    if classes:
        missing = [c for c in classes if c not in names]
        if missing:
            raise GrowError(f"{root}: no class subdirectory {', '.join(missing)}")
        names = list(classes)
    files: dict[str, list[str]] = {}
    for name in names:
        sub = os.path.join(root, name)
        try:
            txt = sorted(f for f in os.listdir(sub) if f.endswith(".txt"))
        except OSError as exc:
            raise GrowError(f"cannot read directory {sub}: {exc.strerror or exc}") from exc
        if txt:
            files[name] = [os.path.join(sub, f) for f in txt]
    if not files:
        raise GrowError(f"{root}: no class subdirectories with .txt files")
    return files


def _round_robin(lists: Sequence[Sequence[str]]) -> Iterator[str]:
    """Yield items of ``lists`` interleaved: first of each, second of each, ..."""
    longest = max((len(x) for x in lists), default=0)
    for i in range(longest):
        for items in lists:
            if i < len(items):
                yield items[i]


def _read_text_file(path: str) -> str:
    """Return the UTF-8 text of ``path`` or fail naming it."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise GrowError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return _decode(data, path)


def iter_dir_tree(root: str, classes: Sequence[str] | None = None) -> Iterator[Row]:
    """Yield ``(text, class)`` for every ``<root>/<class>/*.txt``, classes interleaved."""
    files = _class_files(root, classes)
    label_of = {p: label for label, paths in files.items() for p in paths}
    for path in _round_robin(list(files.values())):
        yield _read_text_file(path), label_of[path]


def _open_text(path: str) -> TextIO:
    """Open ``path`` (optionally gzip-compressed) as UTF-8 text for the csv module."""
    try:
        if path.endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        return open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise GrowError(f"cannot read {path}: {exc.strerror or exc}") from exc


def iter_csv(
    path: str, label_col: int = 0, text_cols: Sequence[int] | None = None, header: bool = False
) -> Iterator[Row]:
    """Yield ``(text, label)`` from a CSV: label from ``label_col``, text = ``text_cols`` joined by a space.

    ``text_cols`` of ``None`` means every column but the label.  Blank lines are
    skipped; a short row, bad UTF-8 or bad gzip fails naming the file and line.
    """
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            for record, fields in enumerate(reader):
                if (header and record == 0) or not fields:
                    continue
                cols = text_cols if text_cols is not None else [i for i in range(len(fields)) if i != label_col]
                need = max([label_col, *cols]) + 1
                if len(fields) < need:
                    raise GrowError(f"{path}:{reader.line_num}: expected at least {need} columns, got {len(fields)}")
                yield " ".join(fields[i] for i in cols), fields[label_col]
        except UnicodeDecodeError as exc:
            raise GrowError(f"cannot read {path}: not valid UTF-8 near line {reader.line_num + 1}") from exc
        except (csv.Error, OSError, EOFError, zlib.error) as exc:
            raise GrowError(f"cannot read {path}: line {reader.line_num}: {exc}") from exc


def _member_class(name: str, prefix: str) -> str | None:
    """Return the class of tar member ``name`` if it is ``<prefix><class>/<file>.txt``."""
    if name.startswith("./"):
        name = name[2:]
    if not name.startswith(prefix):
        return None
    parts = name[len(prefix) :].split("/")
    if len(parts) != 2 or not parts[0] or not parts[1].endswith(".txt"):
        return None
    return parts[0]


def iter_tar(path: str, prefix: str, classes: Sequence[str] | None = None) -> Iterator[Row]:
    """Stream ``(text, class)`` from a tar.gz for members ``<prefix><class>/<file>.txt``."""
    if prefix.startswith("./"):
        prefix = prefix[2:]
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        with tarfile.open(path, mode="r|gz") as archive:
            for member in archive:
                label = _member_class(member.name, prefix) if member.isfile() else None
                if label is None or (classes and label not in classes):
                    continue
                fh = archive.extractfile(member)
                data = fh.read() if fh is not None else b""
                yield _decode(data, f"{path}:{member.name}"), label
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise GrowError(f"cannot read archive {path}: {exc}") from exc


def detect_format(path: str, fmt: str = "auto") -> str:
    """Return ``dir``, ``csv`` or ``tar`` for ``path`` (``fmt`` other than auto wins)."""
    if fmt != "auto":
        return fmt
    if os.path.isdir(path):
        return "dir"
    if not os.path.exists(path):
        raise GrowError(f"cannot read {path}: no such file or directory")
    lower = path.lower()
    if lower.endswith(TAR_EXTENSIONS):
        return "tar"
    if lower.endswith((".csv", ".csv.gz")):
        return "csv"
    raise GrowError(f"cannot tell the input format of {path}: use --format dir|csv|tar")


def make_source(args: argparse.Namespace) -> RowSource:
    """Return a factory that opens the input afresh on every call."""
    fmt = detect_format(args.input, args.format)
    if fmt == "dir":
        return lambda: iter_dir_tree(args.input, args.classes)
    if fmt == "csv":
        return lambda: iter_csv(args.input, args.csv_label_col, args.csv_text_cols, args.csv_header)
    if args.member_prefix is None:
        raise GrowError("a tar input needs --member-prefix (e.g. aclImdb/train/)")
    return lambda: iter_tar(args.input, args.member_prefix, args.classes)


# --------------------------------------------------------------------------
# Copies, perturbation, shuffling.
# --------------------------------------------------------------------------
def token_dropout(text: str, rate: float, rng: random.Random) -> str:
    """Drop each whitespace token with probability ``rate``; keep one if all would go.

    The kept tokens are joined by single spaces; if none was dropped (always so
    at ``rate`` 0) the text comes back unchanged, whitespace included.
    """
    tokens = text.split()
    if not tokens or rate <= 0.0:
        return text
    kept = [t for t in tokens if rng.random() >= rate]
    if len(kept) == len(tokens):
        return text
    return " ".join(kept) if kept else rng.choice(tokens)


class PassCounter:
    """Counts the rows of each pass and checks that every pass has as many."""

    def __init__(self) -> None:
        """Start with nothing counted."""
        self.rows_in: int | None = None

    def finish_pass(self, index: int, rows: int, name: str) -> None:
        """Record pass ``index``; fail if its row count differs from pass 0."""
        if self.rows_in is None:
            self.rows_in = rows
            if rows == 0:
                raise GrowError(f"{name}: no rows read (check --format, --member-prefix, --classes)")
        elif rows != self.rows_in:
            raise GrowError(f"{name}: pass {index} read {rows} rows, pass 0 read {self.rows_in}; did the input change?")


def copies(
    source: RowSource, factor: int, rate: float, rng: random.Random, counter: PassCounter, name: str
) -> Iterator[Row]:
    """Yield ``factor`` passes over ``source``: pass 0 as is, later passes with token dropout."""
    for index in range(factor):
        rows = 0
        for text, label in source():
            rows += 1
            yield (text if index == 0 else token_dropout(text, rate, rng)), label
        counter.finish_pass(index, rows, name)


def shuffle_buffer(rows: Iterable[Row], size: int, rng: random.Random) -> Iterator[Row]:
    """Yield ``rows`` in a locally shuffled order using a buffer of at most ``size`` rows."""
    buffer: list[Row] = []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        i = rng.randrange(size)
        yield buffer[i]
        buffer[i] = row
    rng.shuffle(buffer)
    yield from buffer


# --------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------
def output_kind(path: str) -> tuple[str, bool]:
    """Return (``jsonl`` or ``csv``, gzipped?) for output ``path``, or fail."""
    lower = path.lower()
    for ext in OUTPUT_EXTENSIONS:
        if lower.endswith(ext):
            return ext.split(".")[1], ext.endswith(".gz")
    raise GrowError(f"output {path}: extension must be one of {', '.join(OUTPUT_EXTENSIONS)}")


class RowWriter:
    """Writes rows as JSONL or CSV, optionally gzip (mtime 0, so bytes are reproducible)."""

    def __init__(self, path: str, format_path: str | None = None) -> None:
        """Open ``path`` for writing in the format named by the extension of ``format_path`` (default ``path``)."""
        self.kind, gz = output_kind(format_path or path)
        self._raw = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0) if gz else None
        self._text = io.TextIOWrapper(self._gz or self._raw, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text, lineterminator="\n") if self.kind == "csv" else None
        if self._csv is not None:
            self._csv.writerow(("text", "label"))

    def write(self, row: Row) -> None:
        """Append one ``(text, label)`` row."""
        if self._csv is not None:
            self._csv.writerow(row)
        else:
            self._text.write(json.dumps({"text": row[0], "label": row[1]}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush and close every layer."""
        self._text.close()  # closes the gzip layer, which leaves the raw file open
        self._raw.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def grow(source: RowSource, output: str, factor: int, rate: float, seed: int, buffer_size: int, name: str) -> Summary:
    """Write ``factor`` shuffled copies of ``source`` to ``output``; return the counts."""
    output_kind(output)
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    partial = f"{output}.partial-{os.getpid()}"
    counter = PassCounter()
    rows_out = 0
    try:
        with RowWriter(partial, output) as writer:
            rows = copies(source, factor, rate, random.Random(f"grow/{seed}/dropout"), counter, name)
            for row in shuffle_buffer(rows, buffer_size, random.Random(f"grow/{seed}/shuffle")):
                writer.write(row)
                rows_out += 1
        os.replace(partial, output)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    return Summary(counter.rows_in or 0, rows_out, os.path.getsize(output))


# --------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------
def _int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum``."""

    def parse(value: str) -> int:
        number = int(value)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return number

    return parse


def _rate(value: str) -> float:
    """argparse type: a probability in [0, 1)."""
    number = float(value)
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Write an N-times larger, locally shuffled labelled corpus (JSONL or CSV) from a real one."
    )
    parser.add_argument("input", help="class-per-directory tree, CSV(.gz), or .tar.gz/.tgz archive")
    parser.add_argument("output", help="output file: .jsonl, .jsonl.gz, .csv or .csv.gz")
    parser.add_argument("--factor", type=_int_at_least(1), default=1, help="number of copies (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--dropout", type=_rate, default=0.1, help="token drop probability for copies after the first (default 0.1)"
    )
    parser.add_argument(
        "--buffer-size", type=_int_at_least(1), default=10_000, help="shuffle buffer, in rows (default 10000)"
    )
    parser.add_argument(
        "--format", choices=("auto", "dir", "csv", "tar"), default="auto", help="input format (default: by path)"
    )
    parser.add_argument("--csv-label-col", type=_int_at_least(0), default=0, help="CSV label column (default 0)")
    parser.add_argument(
        "--csv-text-cols",
        type=_int_at_least(0),
        nargs="+",
        default=None,
        help="CSV text columns, joined with a space (default: all but the label)",
    )
    parser.add_argument("--csv-header", action="store_true", help="the CSV has a header row to skip")
    parser.add_argument(
        "--member-prefix", default=None, help="tar input: path prefix of the class directories, e.g. aclImdb/train/"
    )
    parser.add_argument(
        "--classes", nargs="+", default=None, help="dir/tar input: only these class names (default: all found)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; return the process exit code (2 on a clear input/argument error)."""
    args = parse_args(argv)
    try:
        source = make_source(args)
        summary = grow(source, args.output, args.factor, args.dropout, args.seed, args.buffer_size, args.input)
    except GrowError as exc:
        print(f"grow.py: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"grow: {args.input} -> {args.output}: rows in {summary.rows_in}, "
        f"rows out {summary.rows_out}, bytes out {summary.bytes_out} "
        f"(factor {args.factor}, dropout {args.dropout}, seed {args.seed})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
