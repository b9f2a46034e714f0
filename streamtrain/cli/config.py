"""``--config FILE.toml``: option values from a file, for crontabs that should not carry twenty flags.

A config file may set any option of any command, by its name (``top_k`` or
``top-k``):

- top-level keys apply to every command that has that option (``seed = 1``
  sets prepare's and fit's seed);
- a table named after a command (``[prepare]``, ``[fit]``, ...) applies to
  that command only, and wins over the top level;
- ``train`` (prepare, then fit) reads the ``[prepare]`` and ``[fit]`` tables
  too, and its own ``[train]`` table over them.

A key that names no option, or a table that names no command, is an error
(exit 2), so a typo never passes silently. Relative paths are relative to
the config file's directory, so a crontab works from any working directory.
Values on the command line win over the file; the file wins over the
defaults.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from streamtrain.errors import UsageError
from streamtrain.options import Option


def _key(name: str) -> str:
    return name.replace("-", "_")


def load_config(
    path: str, command: str, options: dict[str, list[Option]], borrow: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The values ``path`` sets for ``command``, checked against every command's ``options``.

    Args:
        path: the TOML file.
        command: the command being run.
        options: every command's options, by command name.
        borrow: commands whose tables apply too, over the top level and under ``command``'s own table
            (``train``: prepare and fit).

    Returns:
        Option name -> value (relative paths resolved against the file's directory).

    Raises:
        UsageError: the file is missing or not TOML; a key names no option or a table no command; a value has the
            wrong type; or two borrowed tables set one option differently and ``command``'s own does not settle
            it.
    """
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a readable TOML file: {exc}") from exc
    known = {name: {o.name: o for o in opts if o.spec.cli} for name, opts in options.items()}
    everywhere = {n for opts in known.values() for n in opts}
    values: dict[str, Any] = {}
    section: dict[str, Any] = {}
    borrowed: dict[str, tuple[str, Any]] = {}  # option -> (the table that set it, its value)
    clashes: list[tuple[str, str]] = []  # (option, what the file says of it)
    for key, value in doc.items():
        if isinstance(value, dict):
            if key not in known:
                raise UsageError(f"{path}: [{key}] is not a command; tables are {', '.join(f'[{c}]' for c in known)}")
            for sub, sub_value in value.items():
                if _key(sub) not in known[key]:
                    raise UsageError(f"{path}: [{key}] {sub}: {key} has no such option")
                if key == command:
                    section[_key(sub)] = sub_value
                elif key in borrow and _key(sub) in known[command]:
                    other = borrowed.setdefault(_key(sub), (key, sub_value))
                    if other[1] != sub_value:
                        clashes.append((_key(sub), f"[{other[0]}] and [{key}] set {sub} differently"))
        elif _key(key) not in everywhere:
            raise UsageError(f"{path}: {key}: no command has such an option")
        elif _key(key) in known[command]:
            values[_key(key)] = value
    clashes = [(name, what) for name, what in clashes if name not in section]  # its own table settles it
    if clashes:
        raise UsageError(f"{path}: {clashes[0][1]}; {command} takes one value: set it in [{command}]")
    values.update({name: value for name, (_, value) in borrowed.items() if name not in section})
    values.update(section)
    mine = known[command]
    return {name: _coerce(mine[name], value, file) for name, value in values.items()}


def _coerce(opt: Option, value: Any, file: Path) -> Any:
    """Check a TOML value against the option's type; resolve relative paths against ``file``'s directory."""
    base, many = opt.shape
    items = value if isinstance(value, list) else [value]
    if many != isinstance(value, list):
        raise UsageError(f"{file}: {opt.name} must be {'a list' if many else 'a single value'}, not {value!r}")
    out = []
    for item in items:
        if opt.spec.parse is not None and isinstance(item, str):
            item = opt.spec.parse(item)
        if not _fits(base, item):
            raise UsageError(f"{file}: {opt.name} = {item!r} is not {_type_name(base)}")
        if opt.spec.path and isinstance(item, str) and item != "-" and not Path(item).is_absolute():
            item = str(file.resolve().parent / item)
        out.append(float(item) if base is float else item)
    return out if many else out[0]


def _fits(base: Any, value: Any) -> bool:
    if isinstance(base, tuple):
        return any(_fits(b, value) for b in base)
    if base is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


def _type_name(base: Any) -> str:
    if isinstance(base, tuple):
        return " or ".join(_type_name(b) for b in base)
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(base, str(base))
