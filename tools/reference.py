#!/usr/bin/env python3
"""The generated parts of the docs, rendered from the code that declares them.

Who owns what:
- the options: each command's options class (``streamtrain/options.py``
  fields, listed by ``cli/commands.COMMANDS``) and the common flags of
  ``cli/arguments.build_parser``, the same declarations ``streamtrain CMD
  --help`` renders -> the block ``options`` of ``docs/reference.md``;
- the module map: each module's docstring, its first sentence -> the block
  ``layout`` of ``docs/reference.md``;
- the exit codes: ``cli/exit_codes.TABLE`` (code and meaning, as ``--help``
  ends) plus what an operator does about each (``OPERATOR``, here: the one
  thing the code does not say) -> the block ``exit-codes`` of ``README.md``.

A block sits between ``<!-- begin generated: NAME -->`` and ``<!-- end
generated: NAME -->``; nothing outside the markers is touched. ``check``
names the blocks that differ from what this renders (``tests/test_docs.py``
runs it, so a changed option, exit code or module docstring fails the tests
until this tool is run again)::

    python tools/reference.py           # rewrite the blocks
    python tools/reference.py --check   # exit 1 naming each block that is out of date
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's streamtrain, also when run as a script

from streamtrain.cli.arguments import build_parser  # noqa: E402
from streamtrain.cli.commands import COMMANDS  # noqa: E402
from streamtrain.cli.exit_codes import TABLE  # noqa: E402
from streamtrain.options import Option, options_of  # noqa: E402

README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"

# What the operator does about each exit code; the meaning itself is the code's (cli/exit_codes.TABLE).
OPERATOR = {
    0: "nothing. For fit, the new version is `current`; rows prepare rejected, if any, are listed in "
    "`rejected.jsonl` and summarised on stderr",
    1: "a non-finite loss: lower `--learning-rate`; a lost worker: rerun the same command (fit resumes); "
    "a traceback: report it",
    2: "fix the command or the config file. Also: `--overwrite` of something streamtrain did not write (or of `.`, "
    "a parent directory, a symlink), a model directory holding files streamtrain did not write, a lock file that is "
    "a symlink, a `--warm-start` that cannot apply, a `--serving-dir` version that cannot be exported",
    3: "nothing urgent: yesterday's model still serves. `promotion.json` says why: worse than current by more than "
    "`--max-regression`, not above the validation split's majority-class rate, or the SavedModel failed the serving "
    "check. Look at the data if it repeats; `--force` promotes anyway",
    65: "read the message. A damaged dataset or model: `streamtrain verify DIR`; a `current` fit cannot load: "
    "`streamtrain promote M VERSION`; an input already ingested whose bytes changed: `prepare --refit`; "
    "too many rejected rows: `rejected.jsonl`",
    73: "make the directory writable, free space, or point `--data` / `--model-dir` elsewhere",
    74: "free space or raise the quota, then rerun (a fit resumes from its checkpoint)",
    75: "nothing: the next night runs again (or give `--wait SECONDS`); if it repeats, look for a stuck job",
    130: "rerun (a fit resumes)",
    141: "nothing: the reader (head, a closed socket) stopped reading before the end",
    143: "rerun (a fit resumes)",
}

_BEGIN = "<!-- begin generated: {name} (python tools/{tool}.py) -->"
_END = "<!-- end generated: {name} -->"


# ---------------------------------------------------------------------------------------------------------------
# Markers: shared with tools/walkthrough.py.


def block(text: str, name: str) -> str:
    """The body between ``name``'s markers in ``text``; ``KeyError`` when they are missing."""
    match = _pattern(name).search(text)
    if match is None:
        raise KeyError(f"no generated block {name!r}")
    return match.group("body")


def replace_block(text: str, name: str, body: str, tool: str = "reference") -> str:
    """``text`` with the body of block ``name`` replaced (markers rewritten, naming ``tool``)."""
    begin, end = _BEGIN.format(name=name, tool=tool), _END.format(name=name)
    new = f"{begin}\n{body.rstrip()}\n{end}"
    text, count = _pattern(name).subn(lambda _: new, text)
    if count != 1:
        raise KeyError(f"no generated block {name!r}")
    return text


def _pattern(name: str) -> re.Pattern[str]:
    begin = re.escape("<!-- begin generated: " + name + " ") + r"\(python tools/\w+\.py\) -->"
    return re.compile(begin + r"\n(?P<body>.*?)\n?" + re.escape(_END.format(name=name)), re.S)


# ---------------------------------------------------------------------------------------------------------------
# The options reference.


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(opt: Option) -> str:
    """The default as ``--help`` states it."""
    if opt.required:
        return "required"
    value = opt.default_value()
    if value is None or value == []:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


def _flag(opt: Option) -> str:
    spec, (base, many) = opt.spec, opt.shape
    if spec.positional:
        name = spec.metavar or opt.name.upper()
        return f"`{name}{'...' if many else ''}`"
    if base is bool:
        return f"`{opt.flag}`, `--no-{opt.flag[2:]}`"
    if spec.choices is not None:
        return f"`{opt.flag} {'|'.join(map(str, spec.choices))}`"
    metavar = spec.metavar or {int: "N", float: "X"}.get(base, opt.name.upper())
    return f"`{opt.flag} {metavar}{'...' if spec.nargs == '+' else ''}`"


def _row(opt: Option) -> str:
    what = opt.spec.help
    if opt.spec.deprecated:
        what += f"; the old spelling `{opt.spec.deprecated}` still works, with a notice"
    return f"| {_cell(_flag(opt))} | {_cell(_default(opt))} | {_cell(what)} |"


def _table(options: Sequence[Option]) -> list[str]:
    return ["| option | default | meaning |", "|---|---|---|", *(_row(o) for o in options if o.spec.cli)]


def _command(name: str) -> list[str]:
    command = COMMANDS[name]
    lines = [f"### `streamtrain {name}`", "", command.summary + ".", "", " ".join(command.description.split()), ""]
    options = options_of(command.options())
    if command.borrow:
        return lines + _borrowed(command.borrow, options)
    return [*lines, *_table(options), ""]


def _borrowed(borrow: tuple[str, ...], options: list[Option]) -> list[str]:
    """A command made of other commands' options (``train``): which, and those that mean something of their own."""
    own: dict[str, Option] = {}
    for name in borrow:
        for opt in options_of(COMMANDS[name].options()):
            own.setdefault(opt.name, opt)
    changed = [o for o in options if o.name in own and o.spec.help != own[o.name].spec.help]
    dropped = sorted({o.name for n in borrow for o in options_of(COMMANDS[n].options())} - {o.name for o in options})
    names = " and ".join(f"`{n}`" for n in borrow)
    lines = [f"Every option of {names} (the tables above), each given once."]
    if dropped:
        lines[0] += " Not: " + ", ".join(f"`--{d.replace('_', '-')}`" for d in dropped) + "."
    return [*lines, "Those that serve both commands:", "", *_table(changed), ""]


def _common() -> list[str]:
    parser = build_parser("streamtrain COMMAND", "", [])
    group = next(g for g in parser._action_groups if g.title == "common options")
    lines = ["| option | meaning |", "|---|---|"]
    for action in group._group_actions:
        flags = ", ".join(f"`{s}`" for s in action.option_strings)
        if action.choices:
            flags = ", ".join(f"`{s} {'|'.join(map(str, action.choices))}`" for s in action.option_strings)
        elif action.metavar:
            flags = ", ".join(f"`{s} {action.metavar}`" for s in action.option_strings)
        lines.append(f"| {_cell(flags)} | {_cell(action.help or '')} |")
    return lines


def options_block() -> str:
    lines = [f"`streamtrain COMMAND --help` prints the same. Commands: {', '.join(f'`{n}`' for n in COMMANDS)}.", ""]
    for name in COMMANDS:
        lines += _command(name)
    lines += ["### Every command", "", *_common()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The module map and the exit codes.


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first.replace("``", "`") or "-"


def layout_block() -> str:
    lines = ["| module | what it owns (its docstring's first paragraph) |", "|---|---|"]
    for folder in ("streamtrain", "tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "__init__.py" and path.stat().st_size == 0:
                continue
            lines.append(f"| `{path.relative_to(ROOT).as_posix()}` | {_cell(_summary(path))} |")
    return "\n".join(lines)


def exit_codes_block() -> str:
    missing = sorted({code for code, _ in TABLE} - set(OPERATOR))
    if missing:
        raise KeyError(f"tools/reference.py: OPERATOR says nothing about exit code(s) {missing}")
    lines = ["| code | meaning | what the operator does |", "|---|---|---|"]
    lines += [f"| {code} | {_cell(meaning)} | {_cell(OPERATOR[code])} |" for code, meaning in TABLE]
    return "\n".join(lines)


BLOCKS: dict[Path, dict[str, Callable[[], str]]] = {
    README: {"exit-codes": exit_codes_block},
    REFERENCE: {"options": options_block, "layout": layout_block},
}


def stale() -> list[str]:
    """The blocks whose text differs from what the code renders now, as ``FILE: NAME``."""
    out = []
    for path, blocks in BLOCKS.items():
        text = path.read_text(encoding="utf-8")
        for name, render in blocks.items():
            if block(text, name).strip() != render().strip():
                out.append(f"{path.relative_to(ROOT)}: {name}")
    return out


def write() -> None:
    for path, blocks in BLOCKS.items():
        text = path.read_text(encoding="utf-8")
        for name, render in blocks.items():
            text = replace_block(text, name, render())
        path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 naming each block that is out of date")
    args: Any = parser.parse_args(argv)
    if args.check:
        out = stale()
        for name in out:
            print(f"out of date: {name} (run python tools/reference.py)", file=sys.stderr)
        return 1 if out else 0
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
