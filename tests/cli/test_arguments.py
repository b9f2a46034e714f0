"""``cli.arguments``: argparse made from an options class, flags over the config file over the defaults, the
common flags, deprecated spellings, and ``to_argv`` (what ``train`` hands prepare) parsed back to the same options.
A small options class stands in for a command; the round trip is also checked on the real prepare and fit."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest

from streamtrain.cli.arguments import Common, build_parser, common_argv, parse, to_argv
from streamtrain.cli.exit_codes import help_text
from streamtrain.errors import UsageError
from streamtrain.options import FRACTION, POSITIVE, option, options_of

PROG = "streamtrain demo"


@dataclass(kw_only=True)
class Demo:
    inputs: list[str] = option(factory=list, positional=True, metavar="INPUT", path=True, help="input files")
    data: str = option(path=True, metavar="DIR", deprecated="--out", help="dataset directory")
    seed: int = option(0, help="seed")
    val_fraction: float = option(0.1, **FRACTION, help="validation share")
    epochs: int | None = option(None, **POSITIVE, help="epochs")
    shard_format: str = option("hdf5", choices=("hdf5", "parquet"), help="shard format")
    overwrite: bool = option(False, help="replace an existing dataset")
    shuffle: bool = option(True, help="shuffle the rows")
    test: list[str] = option(factory=list, nargs="+", metavar="FILE", help="test files")
    column: list[str] = option(factory=list, help="a column, once per flag")


def run(argv: list[str], tmp_path=None, config_text: str | None = None):
    if config_text is not None:
        path = tmp_path / "c.toml"
        path.write_text(config_text)
        argv = [*argv, "--config", str(path)]
    return parse("demo", PROG, "a demo command", Demo, argv, lambda: {"demo": options_of(Demo)})


def test_the_help_states_every_default_and_ends_with_the_exit_codes():
    text = build_parser(PROG, "a demo command", options_of(Demo)).format_help()
    assert "--data DIR" in text and "(required)" in text
    assert "seed (default: 0)" in text and "(default: none)" in text  # epochs, inputs
    assert "--overwrite, --no-overwrite" in text and "(default: off)" in text and "(default: on)" in text
    assert "{hdf5,parquet}" in text and "--out" not in text  # the old spelling is hidden
    assert text.rstrip().endswith(help_text().splitlines()[-1].strip())
    assert "common options" in text and "--log-format {text,json}" in text


def test_flags_win_over_the_config_file_which_wins_over_the_defaults(tmp_path):
    opts, common = run(["--data", "d", "--seed", "7"], tmp_path, "seed = 5\nval_fraction = 0.25\n")
    assert opts == Demo(data="d", seed=7, val_fraction=0.25)
    assert common.config == str(tmp_path / "c.toml")
    opts, _ = run([], tmp_path, 'data = "cfg"\n')
    assert opts.data == str(tmp_path / "cfg")  # a required option may come from the file


def test_each_kind_of_option_parses_from_its_flags():
    opts, common = run(["a.csv", "b.csv", "--data", "d", "--no-shuffle", "--overwrite", "--epochs", "3"])
    assert (opts.inputs, opts.shuffle, opts.overwrite, opts.epochs) == (["a.csv", "b.csv"], False, True, 3)
    opts, _ = run(["--data", "d", "--test", "t1", "t2", "--test", "t3", "--column", "x", "--column", "y"])
    assert opts.test == ["t1", "t2", "t3"] and opts.column == ["x", "y"]
    assert common == Common()


def test_a_missing_required_option_or_a_bad_value_is_a_usage_error():
    with pytest.raises(UsageError, match=r"missing --data \(give it on the command line or in --config\)"):
        run([])
    with pytest.raises(UsageError, match=r"--val-fraction must be a number in \[0, 1\), not 1\.5"):
        run(["--data", "d", "--val-fraction", "1.5"])
    with pytest.raises(UsageError, match="--epochs must be a positive integer, not 0"):
        run(["--data", "d", "--epochs", "0"])


def test_argparse_errors_exit_2_in_text_and_raise_in_json(capsys):
    for argv in (["--data", "d", "--se", "1"], ["--data", "d", "--shard-format", "csv"], ["--data", "d", "--seed"]):
        with pytest.raises(SystemExit) as caught:
            run(argv)
        assert caught.value.code == 2
        with pytest.raises(UsageError):
            run(["--log-format", "json", *argv])  # one JSON line instead of argparse's usage
    assert "usage: streamtrain demo" in capsys.readouterr().err


def test_a_deprecated_spelling_still_works_with_a_notice_but_not_beside_the_new_one(capsys):
    opts, _ = run(["--out", "old"])
    assert opts.data == "old"
    assert capsys.readouterr().err == "streamtrain demo: warning: --out is deprecated; use --data\n"
    opts, _ = run(["--out", "old", "--log-format", "json"])
    line = json.loads(capsys.readouterr().err)
    assert (line["level"], line["command"], line["message"]) == ("warning", "demo", "--out is deprecated; use --data")
    with pytest.raises(UsageError, match="give --data or its old spelling --out, not both"):
        run(["--out", "old", "--data", "new"])


def test_the_common_flags():
    assert run(["--data", "d", "-q"])[1].verbosity == 0
    assert run(["--data", "d", "--verbose"])[1].verbosity == 2
    _, common = run(["--data", "d", "--print-config", "--log-format", "json"])
    assert common == Common(None, True, 1, "json")
    with pytest.raises(SystemExit):
        run(["--data", "d", "--quiet", "--verbose"])


@pytest.mark.parametrize("common", [Common(verbosity=0), Common(), Common(verbosity=2, log_format="json")])
def test_common_argv_carries_the_verbosity_and_log_format(common):
    assert run(["--data", "d", *common_argv(common)])[1] == common


@pytest.mark.parametrize(
    "opts",
    [
        Demo(data="d"),
        Demo(
            inputs=["a.csv", "-x.csv"],
            data="d",
            seed=3,
            val_fraction=0.5,
            epochs=2,
            shard_format="parquet",
            overwrite=True,
            shuffle=False,
            test=["t1", "t2"],
            column=["c1", "c2"],
        ),
        Demo(inputs=["only.csv"], data="my data", seed=-1),
    ],
)
def test_to_argv_parses_back_to_the_same_options(opts):
    argv = to_argv(opts)
    assert run(argv)[0] == opts
    assert "--seed" not in argv or opts.seed != 0  # defaults are left out


def test_to_argv_refuses_a_value_no_flag_can_give():
    @dataclass
    class Limits:
        data: str = option(help="data")
        batch: int | None = option(128, help="rows per batch; no flag unsets it")

    with pytest.raises(UsageError, match="--batch cannot be unset from the command line"):
        to_argv(Limits("d", None))


def test_the_real_prepare_and_fit_options_round_trip():
    from streamtrain.dataset.prepare import PrepareOptions
    from streamtrain.train.fit import FitOptions

    prepare = PrepareOptions(inputs=["a.csv", "b.jsonl"], test=["t.csv"], data="d", overwrite=True, seed=3)
    fit = replace(FitOptions("d", "m"), epochs=2, learning_rate=0.01, retune=True, export=False, keep=2)
    for command, cls, opts in (("prepare", PrepareOptions, prepare), ("fit", FitOptions, fit)):
        parsed, _ = parse(command, f"streamtrain {command}", "", cls, to_argv(opts), lambda: {})
        assert parsed == opts
