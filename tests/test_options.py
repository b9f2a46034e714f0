"""``streamtrain.options``: command options as dataclass fields (default, help, check written once), their resolved
types for argparse and config files, ``check_options`` (a library call checked as the command line is) and the
effective options printed by ``--print-config``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streamtrain.errors import UsageError
from streamtrain.options import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    SHARE,
    Spec,
    check_options,
    effective,
    fraction,
    non_negative,
    option,
    options_of,
    positive,
)


@dataclass(kw_only=True)
class Opts:
    data: str = option(path=True, help="dataset")
    inputs: list[str] = option(factory=list, positional=True, help="inputs")
    batch_size: int = option(128, **POSITIVE, help="rows per batch")
    epochs: int | None = option(None, **POSITIVE, help="epochs")
    column: str | int = option("text", help="by name or position")
    val_fraction: float = option(0.1, **FRACTION, help="validation share")
    share: float = option(1.0, **SHARE, help="a share")
    patience: int = option(0, **NON_NEGATIVE, help="rounds")
    fmt: str = option("hdf5", choices=("hdf5", "parquet"), help="format")
    sizes: list[int] = option(factory=list, **POSITIVE, help="sizes")
    out: Path = option(Path("o"), path=True, help="a path")
    pair: tuple[int, int] = option((1, 2), help="a pair")
    knob: int = option(5, cli=False, help="library only")
    internal: int = field(default=0)  # not an option


def test_the_checks_and_their_boundaries():
    assert positive(1) and not positive(0) and not positive(-3)
    assert non_negative(0) and non_negative(0.5) and not non_negative(-1e-9)
    assert fraction(0.0) and fraction(0.999) and not fraction(1.0) and not fraction(-0.1)
    assert SHARE["check"](1.0) and SHARE["check"](0.0) and not SHARE["check"](1.01)


def test_an_option_is_a_field_with_its_spec():
    fields = {f.name: f for f in dataclasses.fields(Opts)}
    spec = fields["batch_size"].metadata["spec"]
    assert isinstance(spec, Spec) and spec.help == "rows per batch" and spec.rule == "a positive integer"
    assert fields["batch_size"].default == 128
    assert fields["inputs"].default_factory is list
    assert fields["data"].default is dataclasses.MISSING  # required
    assert "spec" not in fields["internal"].metadata


def test_options_are_listed_in_declaration_order_without_other_fields():
    names = [o.name for o in options_of(Opts)]
    assert names == [f.name for f in dataclasses.fields(Opts) if f.name != "internal"]


def test_a_resolved_option_knows_its_flag_default_and_shape():
    by_name = {o.name: o for o in options_of(Opts)}
    assert by_name["batch_size"].flag == "--batch-size" and by_name["val_fraction"].flag == "--val-fraction"
    assert by_name["data"].required and not by_name["inputs"].required
    first, second = by_name["inputs"].default_value(), by_name["inputs"].default_value()
    assert first == [] and first is not second  # a factory makes a new list each time
    assert by_name["batch_size"].default_value() == 128
    assert by_name["inputs"].shape == (str, True)
    assert by_name["sizes"].shape == (int, True)
    assert by_name["epochs"].shape == (int, False)  # X | None: X
    assert by_name["column"].shape == ((str, int), False)  # A | B: either
    assert by_name["batch_size"].shape == (int, False)
    assert by_name["out"].shape == (Path, False)


def test_valid_values_pass_and_none_always_does():
    check_options(Opts(data="d"))
    check_options(Opts(data="d", epochs=None, batch_size=1, val_fraction=0.0, share=1.0, sizes=[1, 2], fmt="parquet"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "--batch-size must be a positive integer, not 0"),
        ({"epochs": -1}, "--epochs must be a positive integer, not -1"),
        ({"val_fraction": 1.0}, r"--val-fraction must be a number in \[0, 1\), not 1.0"),
        ({"share": 1.5}, r"--share must be a number in \[0, 1\], not 1.5"),
        ({"patience": -2}, "--patience must be an integer >= 0, not -2"),
        ({"fmt": "csv"}, "--fmt must be one of hdf5, parquet, not 'csv'"),
        ({"sizes": [3, 0, 4]}, "--sizes must be a positive integer, not 0"),  # each element
        ({"batch_size": 0, "epochs": 0}, "--batch-size"),  # the first in declaration order
    ],
)
def test_the_first_value_that_breaks_its_check_is_named(changes, message):
    with pytest.raises(UsageError, match=message):
        check_options(Opts(data="d", **changes))


def test_the_effective_options_are_the_command_line_s_as_plain_json_values():
    opts = Opts(data="d", inputs=["a.csv"], out=Path("/x/y"), pair=(3, 4))
    got = effective(opts)
    assert list(got) == [o.name for o in options_of(Opts) if o.spec.cli]  # the library-only knob left out
    assert "knob" not in got and "internal" not in got
    assert got["out"] == "/x/y" and got["pair"] == [3, 4] and got["inputs"] == ["a.csv"]
    assert got["epochs"] is None and got["batch_size"] == 128
