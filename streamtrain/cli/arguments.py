"""argparse generated from a command's options class, and the merge of defaults, config file and flags.

Each ``option`` field becomes one argument: its help text with its default
appended, its type, choices and metavar; booleans get ``--x/--no-x`` so a
flag can undo a config file. Deprecated spellings are hidden arguments that
print a one-line notice and set the new option. Every parser also takes the
common flags ``--config``, ``--print-config``, ``--quiet``, ``--verbose``
and ``--log-format``, and ends its help with the exit-code table. The common
flags are command-line flags only, not options a config file sets. With
``--log-format json`` a parse error raises ``UsageError`` (reported as one
JSON line) instead of argparse's usage and error lines.

Parsing leaves unset options out (``argparse.SUPPRESS``), so ``parse``
knows which values came from the command line: those win over the config
file, which wins over the options class's defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from streamtrain.cli import logs
from streamtrain.cli.config import load_config
from streamtrain.cli.exit_codes import help_text
from streamtrain.errors import UsageError
from streamtrain.options import Option, check_options, options_of

_DEPRECATED = "deprecated__"


@dataclass
class Common:
    """The flags every command has, which are not options of the library."""

    config: str | None = None
    print_config: bool = False
    verbosity: int = 1  # 0 --quiet, 1 default, 2 --verbose
    log_format: str = "text"  # --log-format: text or json lines on stderr


def _default_text(opt: Option) -> str:
    if opt.required:
        return "required"
    value = opt.default_value()
    if value is None or value == []:
        return "default: none"
    if isinstance(value, bool):
        return f"default: {'on' if value else 'off'}"
    if isinstance(value, list | tuple):
        value = " ".join(map(str, value))
    return f"default: {value}"


class _Parser(argparse.ArgumentParser):
    """argparse, except that with ``raise_errors`` a bad command line raises ``UsageError`` instead of exiting."""

    raise_errors = False

    def error(self, message: str) -> NoReturn:
        if self.raise_errors:
            raise UsageError(message)
        super().error(message)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; option help wrapped at 100 columns whatever the terminal."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)


def build_parser(prog: str, description: str, options: list[Option]) -> _Parser:
    """The argparse parser of one command: its options (``Spec.cli`` only) and the common flags.

    Unset options are left out of the parse's result (``argparse.SUPPRESS``); abbreviations are refused.

    Args:
        prog: "streamtrain COMMAND".
        description: the command's ``--help`` text.
        options: the command's options.

    Returns:
        The parser; its help ends with the exit-code table.
    """
    parser = _Parser(
        prog=prog,
        description=description,
        epilog=help_text(),
        formatter_class=_Formatter,
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,  # a new option must never change what an old crontab's abbreviation meant
    )
    for opt in options:
        if opt.spec.cli:
            _add(parser, opt)
    common = parser.add_argument_group("common options")
    common.add_argument("--config", metavar="FILE.toml", help="read option values from a TOML file; flags win over it")
    common.add_argument("--print-config", action="store_true", help="print the effective options as JSON and exit")
    noise = common.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors on stderr")
    noise.add_argument("--verbose", "-v", action="store_true", help="debug logs, and TensorFlow's own start-up lines")
    common.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help="stderr lines as text ([command] message; a progress bar at a terminal) or json (one object per line, "
        "with progress fields; no bar) (default: text)",
    )
    return parser


def _add(parser: argparse.ArgumentParser, opt: Option) -> None:
    spec = opt.spec
    base, many = opt.shape
    kw: dict[str, Any] = {"help": f"{spec.help} ({_default_text(opt)})"}
    if spec.choices is not None:
        kw["choices"] = spec.choices
    if base is bool:
        kw["action"] = argparse.BooleanOptionalAction
    else:
        kw["type"] = spec.parse or (base if base in (int, float) else str)
        kw["metavar"] = spec.metavar or (None if spec.choices else {int: "N", float: "X"}.get(base, opt.name.upper()))
    if spec.positional:
        kw["nargs"] = "*" if many else "?"
        parser.add_argument(opt.name, **kw)
        return
    if many:
        kw["action"] = "extend" if spec.nargs == "+" else "append"
        if spec.nargs:
            kw["nargs"] = spec.nargs
    parser.add_argument(opt.flag, dest=opt.name, **kw)
    if spec.deprecated:
        hidden = {k: v for k, v in kw.items() if k != "help"}
        parser.add_argument(spec.deprecated, dest=_DEPRECATED + opt.name, help=argparse.SUPPRESS, **hidden)


def to_argv(opts: Any) -> list[str]:
    """Command-line arguments that ``parse`` turns back into ``opts``: ``streamtrain train`` starts prepare with them.

    Args:
        opts: an options dataclass instance.

    Returns:
        The flags of the options that differ from their defaults (required ones always), then ``--`` and the
        positional values when there are any.

    Raises:
        UsageError: a value no flag can give (None for an option whose default is not None).
    """
    flags: list[str] = []
    positional: list[str] = []
    for opt in options_of(type(opts)):
        value = getattr(opts, opt.name)
        if not opt.spec.cli or (not opt.required and value == opt.default_value()):
            continue
        base, many = opt.shape
        if value is None:
            raise UsageError(f"{opt.flag} cannot be unset from the command line (its default is not empty)")
        if base is bool:
            flags.append(opt.flag if value else "--no-" + opt.flag[2:])
            continue
        values = [str(v) for v in (value if many else [value])]
        if opt.spec.positional:
            positional += values
        elif many and opt.spec.nargs == "+":
            flags += [opt.flag, *values] if values else []
        else:
            for v in values:
                flags += [opt.flag, v]
    return [*flags, "--", *positional] if positional else flags


def common_argv(common: Common) -> list[str]:
    """The common flags that carry ``common``'s verbosity and log format to another streamtrain command."""
    noise = {0: ["--quiet"], 2: ["--verbose"]}.get(common.verbosity, [])
    return [*noise, "--log-format", common.log_format]


def parse(
    command: str,
    prog: str,
    description: str,
    options_cls: type,
    argv: Sequence[str],
    all_options: Callable[[], dict[str, list[Option]]],
    borrow: tuple[str, ...] = (),
) -> tuple[Any, Common]:
    """The options (checked) and common flags of one command, from ``argv``, a config file and the defaults.

    Flags win over the config file, which wins over the options class's defaults. With ``--log-format json`` a
    bad command line raises ``UsageError`` instead of argparse's usage and exit.

    Args:
        command: the command's name (its config table).
        prog: "streamtrain COMMAND".
        description: the command's ``--help`` text.
        options_cls: the command's options dataclass.
        argv: its arguments.
        all_options: every command's options, by name (a config file is checked against them).
        borrow: commands whose config tables apply to this one too (``train``: ``[prepare]`` and ``[fit]``).

    Returns:
        (the options instance, the common flags).

    Raises:
        UsageError: a deprecated flag given with its new spelling, a required option missing, a value that breaks
            its check, or a bad config file.
        SystemExit: argparse printed its help (0) or its error (2).
    """
    options = options_of(options_cls)
    parser = build_parser(prog, description, options)
    parser.raise_errors = logs.format_in(argv) == "json"
    ns = vars(parser.parse_args(list(argv)))
    quiet, verbose = ns.pop("quiet", False), ns.pop("verbose", False)
    common = Common(
        ns.pop("config", None),
        ns.pop("print_config", False),
        0 if quiet else 2 if verbose else 1,
        ns.pop("log_format", "text"),
    )
    for key in [k for k in ns if k.startswith(_DEPRECATED)]:
        name = key[len(_DEPRECATED) :]
        opt = next(o for o in options if o.name == name)
        old = opt.spec.deprecated
        if name in ns:
            raise UsageError(f"give {opt.flag} or its old spelling {old}, not both")
        logs.line(prog, "warning", f"{old} is deprecated; use {opt.flag}", common.log_format)
        ns[name] = ns.pop(key)
    values = load_config(common.config, command, all_options(), borrow) if common.config else {}
    values.update(ns)
    missing = [o for o in options if o.required and o.name not in values]
    if missing:
        names = ", ".join(o.name if o.spec.positional else o.flag for o in missing)
        raise UsageError(f"missing {names} (give it on the command line or in --config)")
    opts = options_cls(**values)
    check_options(opts)
    return opts, common
