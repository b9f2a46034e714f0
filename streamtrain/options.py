"""Command options as dataclass fields: each option's default, help text and check, written once.

Every command's options are one dataclass (``PrepareOptions``, ``FitOptions``,
``PredictOptions``, ...) whose fields are made by ``option``. The field's
default is the library's default; its metadata (``Spec``) carries the help
text, the allowed choices, the check and any deprecated spelling.
``check_options`` validates a library call exactly as the command line is
validated, and ``streamtrain.cli`` generates argparse and reads ``--config``
files from the same fields. Nothing here parses arguments or exits.

Names: a field's name is its option's name, in the library, on the command
line (``top_k`` is ``--top-k``) and in a config file (``top_k`` or
``top-k``).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamtrain.errors import UsageError


@dataclass(frozen=True)
class Spec:
    """What the command line and config files need to know about one option."""

    help: str
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], bool] | None = None
    rule: str = ""  # what ``check`` demands, in words: "a positive integer"
    positional: bool = False  # a positional argument rather than a --flag
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # str -> value, when the type alone does not say
    nargs: str | None = None  # "+": a list option takes several values after one flag
    deprecated: str | None = None  # the old flag spelling, still accepted with a one-line notice
    path: bool = False  # a file or directory: relative paths in a config file are relative to that file
    cli: bool = True  # False: a library-only knob, not on the command line or in config files


def option(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, **spec: Any) -> Any:
    """A dataclass field that is a command option.

    Args:
        default: the library's default; left out, the option is required.
        factory: makes the default instead (a list option's ``[]``).
        **spec: ``Spec``'s fields: ``help`` and any others.

    Returns:
        The ``dataclasses.field``, its ``Spec`` under ``metadata["spec"]``.
    """
    metadata = {"spec": Spec(**spec)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def positive(value: int) -> bool:
    """Whether ``value`` >= 1 (``POSITIVE``'s check)."""
    return value >= 1


def non_negative(value: float) -> bool:
    """Whether ``value`` >= 0 (``NON_NEGATIVE``'s and ``SECONDS``' check)."""
    return value >= 0


def fraction(value: float) -> bool:
    """Whether ``value`` is in [0, 1) (``FRACTION``'s check)."""
    return 0.0 <= value < 1.0


POSITIVE: dict[str, Any] = {"check": positive, "rule": "a positive integer"}
NON_NEGATIVE: dict[str, Any] = {"check": non_negative, "rule": "an integer >= 0"}
FRACTION: dict[str, Any] = {"check": fraction, "rule": "a number in [0, 1)"}
SHARE: dict[str, Any] = {"check": lambda v: 0.0 <= v <= 1.0, "rule": "a number in [0, 1]"}
SECONDS: dict[str, Any] = {"check": non_negative, "rule": "a number of seconds >= 0"}


@dataclass(frozen=True)
class Option:
    """One field of an options class, resolved: name, type, default and ``Spec``."""

    name: str
    type: Any  # the resolved annotation
    default: Any  # dataclasses.MISSING when required
    spec: Spec

    @property
    def flag(self) -> str:
        """Its command-line flag: ``--`` and the name, dashes for underscores."""
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        """Whether it has no default."""
        return self.default is dataclasses.MISSING

    def default_value(self) -> Any:
        """The default itself (a factory's product, a new one each call)."""
        return self.default() if callable(self.default) else self.default

    @property
    def shape(self) -> tuple[Any, bool]:
        """(element type, is a list): ``list[X]``: (X, True), ``X | None``: (X, False), ``A | B``: ((A, B), False).

        The type of one value, for argparse and config files.
        """
        tp, many = self.type, typing.get_origin(self.type) is list
        if many:
            tp = typing.get_args(tp)[0]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if args:
            tp = args[0] if len(args) == 1 else tuple(args)
        return tp, many


def options_of(cls: type) -> list[Option]:
    """The options of a dataclass of ``option`` fields, in declaration order (other fields left out)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("spec")
        if spec is None:
            continue
        default = f.default_factory if f.default_factory is not dataclasses.MISSING else f.default
        out.append(Option(f.name, hints[f.name], default, spec))
    return out


def check_options(opts: Any) -> None:
    """Check every option's value (each element of a list; None passes) against its choices and check.

    Args:
        opts: an options dataclass instance.

    Raises:
        UsageError: naming the first option whose value breaks its choices or check.
    """
    for opt in options_of(type(opts)):
        value = getattr(opts, opt.name)
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if v is None:
                continue
            if opt.spec.choices is not None and v not in opt.spec.choices:
                allowed = ", ".join(map(str, opt.spec.choices))
                raise UsageError(f"{opt.flag} must be one of {allowed}, not {v!r}")
            if opt.spec.check is not None and not opt.spec.check(v):
                raise UsageError(f"{opt.flag} must be {opt.spec.rule}, not {v!r}")


def effective(opts: Any) -> dict[str, Any]:
    """The options that the command line and config files set, as a JSON-ready dict (paths as strings).

    Args:
        opts: an options dataclass instance.

    Returns:
        Option name -> value, for every option with ``Spec.cli``.
    """
    return {opt.name: _plain(getattr(opts, opt.name)) for opt in options_of(type(opts)) if opt.spec.cli}


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else value
