"""``--config FILE.toml`` (``cli.config.load_config``): top-level keys for every command that has the option, a
command's table over them, ``train``'s borrowed tables, typos refused, values type-checked, and relative paths
resolved against the file's directory. Two small options classes stand in for the commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from streamtrain.cli.config import load_config
from streamtrain.errors import UsageError
from streamtrain.options import FRACTION, POSITIVE, option, options_of


@dataclass
class Prep:
    inputs: list[str] = option(factory=list, positional=True, path=True, help="input files")
    data: str = option("data", path=True, help="dataset directory")
    seed: int = option(0, help="seed")
    val_fraction: float = option(0.1, **FRACTION, help="validation share")
    shard_format: str = option("hdf5", choices=("hdf5", "parquet"), help="shard format")
    overwrite: bool = option(False, help="replace")
    library_only: int = option(3, cli=False, help="not a flag")


@dataclass
class Fit:
    data: str = option("data", path=True, help="dataset directory")
    seed: int = option(0, help="seed")
    epochs: int | None = option(None, **POSITIVE, help="epochs")
    learning_rate: float | None = option(None, help="learning rate")
    column: str | int = option("text", help="a column by name or position")


@dataclass
class Train:
    inputs: list[str] = option(factory=list, positional=True, path=True, help="input files")
    data: str = option("data", path=True, help="dataset directory")
    seed: int = option(0, help="seed")
    epochs: int | None = option(None, **POSITIVE, help="epochs")
    val_fraction: float = option(0.1, **FRACTION, help="validation share")


OPTIONS = {"prepare": options_of(Prep), "fit": options_of(Fit), "train": options_of(Train)}


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "conf" / "streamtrain.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_top_level_keys_set_every_command_that_has_the_option(tmp_path):
    path = config(tmp_path, "seed = 7\nepochs = 3\nval-fraction = 0.25\n")
    assert load_config(path, "prepare", OPTIONS) == {"seed": 7, "val_fraction": 0.25}  # prepare has no epochs
    assert load_config(path, "fit", OPTIONS) == {"seed": 7, "epochs": 3}


def test_a_command_s_table_wins_over_the_top_level_and_applies_to_it_alone(tmp_path):
    path = config(tmp_path, 'seed = 7\n[fit]\nseed = 11\n[prepare]\nshard_format = "parquet"\n')
    assert load_config(path, "fit", OPTIONS) == {"seed": 11}
    assert load_config(path, "prepare", OPTIONS) == {"seed": 7, "shard_format": "parquet"}


def test_train_reads_the_prepare_and_fit_tables_and_its_own_over_them(tmp_path):
    text = "seed = 1\nval_fraction = 0.2\n[prepare]\nval_fraction = 0.3\n[fit]\nepochs = 4\n"
    borrow = ("prepare", "fit")
    assert load_config(config(tmp_path, text), "train", OPTIONS, borrow) == {
        "seed": 1,
        "val_fraction": 0.3,
        "epochs": 4,
    }
    own = text + "[train]\nepochs = 9\n"
    assert load_config(config(tmp_path, own), "train", OPTIONS, borrow)["epochs"] == 9
    assert load_config(config(tmp_path, text), "train", OPTIONS) == {"seed": 1, "val_fraction": 0.2}  # no borrow


def test_two_borrowed_tables_that_disagree_must_be_settled_by_the_command_s_own(tmp_path):
    text = "[prepare]\nseed = 1\n[fit]\nseed = 2\n"
    with pytest.raises(UsageError, match=r"\[prepare\] and \[fit\] set seed differently; train takes one value"):
        load_config(config(tmp_path, text), "train", OPTIONS, ("prepare", "fit"))
    settled = config(tmp_path, text + "[train]\nseed = 3\n")
    assert load_config(settled, "train", OPTIONS, ("prepare", "fit")) == {"seed": 3}
    agreeing = config(tmp_path, "[prepare]\nseed = 5\n[fit]\nseed = 5\n")
    assert load_config(agreeing, "train", OPTIONS, ("prepare", "fit")) == {"seed": 5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sede = 1\n", "sede: no command has such an option"),
        ("library_only = 1\n", "library_only: no command has such an option"),  # not a command-line option
        ("[evaluate]\nseed = 1\n", r"\[evaluate\] is not a command; tables are \[prepare\], \[fit\], \[train\]"),
        ("[prepare]\nepochs = 1\n", r"\[prepare\] epochs: prepare has no such option"),
    ],
)
def test_a_typo_is_an_error_not_a_silent_default(tmp_path, text, message):
    path = config(tmp_path, text)
    with pytest.raises(UsageError, match=message) as caught:
        load_config(path, "fit", OPTIONS)
    assert str(caught.value).startswith(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('seed = "7"\n', "seed = '7' is not an integer"),
        ("seed = true\n", "seed = True is not an integer"),  # a bool is not a number here
        ("seed = 1.5\n", "seed = 1.5 is not an integer"),
        ('[prepare]\nval_fraction = "a"\n', "val_fraction = 'a' is not a number"),
        ('[prepare]\ninputs = "a.csv"\n', "inputs must be a list, not 'a.csv'"),
        ("[fit]\nepochs = [1, 2]\n", r"epochs must be a single value, not \[1, 2\]"),
        ("[fit]\ncolumn = 1.5\n", "column = 1.5 is not a string or an integer"),
    ],
)
def test_values_are_checked_against_the_option_s_type(tmp_path, text, message):
    command = "prepare" if "[prepare]" in text else "fit"
    with pytest.raises(UsageError, match=message):
        load_config(config(tmp_path, text), command, OPTIONS)


def test_numbers_and_unions_take_what_their_type_allows(tmp_path):
    path = config(tmp_path, "[fit]\nlearning_rate = 1\ncolumn = 2\nepochs = 5\n")
    values = load_config(path, "fit", OPTIONS)
    assert values == {"learning_rate": 1.0, "column": 2, "epochs": 5}
    assert isinstance(values["learning_rate"], float)  # an integer where a float belongs: a float


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    path = config(tmp_path, '[prepare]\ninputs = ["a.csv", "/abs/b.csv", "-"]\ndata = "../out/data"\n')
    here = (tmp_path / "conf").resolve()
    values = load_config(path, "prepare", OPTIONS)
    assert values["inputs"] == [str(here / "a.csv"), "/abs/b.csv", "-"]  # "-" is standard input, not a file
    assert values["data"] == str(here / "../out/data")


def test_a_missing_or_broken_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="config file not found: "):
        load_config(str(tmp_path / "absent.toml"), "fit", OPTIONS)
    with pytest.raises(UsageError, match="not a readable TOML file"):
        load_config(config(tmp_path, "seed = = 1\n"), "fit", OPTIONS)
    (tmp_path / "latin1.toml").write_bytes(b"seed = 1 # caf\xe9\n")
    with pytest.raises(UsageError, match="not a readable TOML file"):
        load_config(str(tmp_path / "latin1.toml"), "fit", OPTIONS)
