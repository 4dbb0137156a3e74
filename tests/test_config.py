"""Settings: defaults, TOML file, flags, and errors that name the key."""

import dataclasses
import json
import math
import pathlib
import re

import pytest

from mnistnet import data, datasets, model, optimizers
from mnistnet.cli.train import train_binary, train_multiclass
from mnistnet.config import MAX_SEED, SETTINGS, TrainConfig, read_config_file, resolve_config
from mnistnet.errors import ConfigError
from mnistnet.tasks import TASKS


def test_defaults_are_the_notebook():
    b = resolve_config("binary", {}, {"digits": (5, 8)})
    assert (b.epochs, b.lr, b.seed, b.optimizer, b.batch_size) == (100, 1e-5, 3, "gd", None)
    assert (b.hidden, b.reduction, b.pixels, b.init, b.samples_per_class) == (
        256,
        "sum",
        "raw",
        "notebook",
        1000,
    )
    assert b.classes == (5, 8) and b.out_dir == "runs/binary-5-8"
    m = resolve_config("multiclass")
    assert (m.epochs, m.lr, m.seed) == (200, 1.7e-5, 29)
    assert m.classes == tuple(range(10)) and m.out_dir == "runs/multiclass"
    assert m.log_interval == 20


def test_file_then_flags(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('lr = 0.1\nepochs = 7\noptimizer = "adam"\nsamples_per_class = "all"\n')
    values = read_config_file(path)
    cfg = resolve_config("multiclass", values, {"epochs": 3, "lr": None})
    assert cfg.lr == 0.1 and cfg.epochs == 3 and cfg.optimizer == "adam"
    assert cfg.samples_per_class is None and cfg.batch_size == 128


@pytest.mark.parametrize(
    "text,message",
    [
        ("learning_rate = 0.1", "unknown key 'learning_rate'"),
        ('epochs = "ten"', "'epochs' must be a whole number"),
        ("lr = -1.0", "'lr' must be a number > 0"),
        ('optimizer = "rmsprop"', "'optimizer' must be one of"),
        ("digits = [5, 5]", "two different digits"),
        ("batch_size = 0", "'batch_size' must be"),
        ("lr = [", "not valid TOML"),
        ("ema = true", "'ema' must be a number in \\[0, 1\\), got true$"),  # TOML's spelling
    ],
)
def test_bad_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        read_config_file(path)
    assert str(path) in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read"):
        read_config_file("/nonexistent/c.toml")


def test_cross_setting_rules():
    with pytest.raises(ConfigError, match="--digits"):
        resolve_config("binary", {}, {})
    with pytest.raises(ConfigError, match="full-batch"):
        resolve_config("multiclass", {}, {"batch_size": 32})
    with pytest.raises(ConfigError, match="train-binary"):
        resolve_config("multiclass", {"digits": (1, 2)}, {})
    assert (
        resolve_config("multiclass", {}, {"optimizer": "sgd", "batch_size": "full"}).batch_size
        is None
    )


def test_to_dict_is_the_resolved_config_and_reads_back(tmp_path):
    cfg = resolve_config("binary", {}, {"digits": (3, 7), "samples_per_class": "all"})
    d = cfg.to_dict()
    assert d["digits"] == [3, 7] and d["samples_per_class"] == "all"
    assert d["batch_size"] == "full" and d["out"] == "runs/binary-3-7" and d["log_every"] == 10
    path = tmp_path / "again.toml"
    lines = [f"{k} = {json.dumps(v)}" for k, v in d.items() if k != "task" and v is not None]
    path.write_text("\n".join(lines) + "\n")
    again = resolve_config("binary", read_config_file(path), {}, config_path=path)
    assert again.to_dict() == d


def test_errors_name_where_the_value_came_from(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("batch_size = 32\n")
    with pytest.raises(ConfigError, match=f"config file {path}: 'batch_size'"):
        resolve_config("multiclass", read_config_file(path), {}, config_path=path)
    with pytest.raises(ConfigError, match="^--batch-size"):
        resolve_config("multiclass", {}, {"batch_size": 32})
    with pytest.raises(ConfigError, match="'idx' needs --data-dir"):
        resolve_config("multiclass", {}, {"dataset": "idx"})


def test_words_in_files_are_case_insensitive(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('samples_per_class = "ALL"\nbatch_size = "Full"\n')
    assert read_config_file(path) == {"samples_per_class": None, "batch_size": None}


def test_encodings(tmp_path):
    bom = tmp_path / "bom.toml"
    bom.write_bytes("\ufeffepochs = 3\n".encode())
    assert read_config_file(bom) == {"epochs": 3}
    utf16 = tmp_path / "u16.toml"
    utf16.write_bytes("epochs = 3\n".encode("utf-16"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config_file(utf16)


def test_repo_configs_are_valid():
    import pathlib

    folder = pathlib.Path(__file__).parent.parent / "configs"
    files = sorted(folder.glob("*.toml"))
    assert {f.name for f in files} >= {
        "binary-5-8-notebook.toml",
        "multiclass-notebook.toml",
        "binary-fast.toml",
        "multiclass-fast.toml",
        "multiclass-best.toml",
        "multiclass-quick.toml",
        "binary-best.toml",
        "fashion-best.toml",
    }
    for f in files:
        values = read_config_file(f)
        task = "binary" if "digits" in values else "multiclass"
        resolve_config(task, values, {})


# --- The table of settings: everything else is derived from it ---------------


def test_trainconfig_is_made_from_the_table():
    fields = dataclasses.fields(TrainConfig)
    assert [f.name for f in fields] == ["task", *SETTINGS]
    for f in fields[1:]:
        setting = SETTINGS[f.name]
        if isinstance(setting.default, dict):  # per task: filled in for the task
            for task in TASKS:
                assert getattr(TrainConfig(task=task), f.name) == setting.default[task]
        else:
            assert f.default == setting.default
    assert TrainConfig(task="multiclass").to_dict() == resolve_config("multiclass").to_dict()


def test_allowed_values_come_from_the_modules_that_own_them():
    assert SETTINGS["optimizer"].kind.choices is optimizers.OPTIMIZERS
    assert SETTINGS["lr_schedule"].kind.choices is optimizers.SCHEDULES
    assert SETTINGS["pixels"].kind.choices is data.PIXEL_SCALINGS
    assert SETTINGS["init"].kind.choices is model.INIT_METHODS
    assert SETTINGS["dataset"].kind.choices == tuple(datasets.DATASETS)
    assert SETTINGS["seed"].kind.high == MAX_SEED == 2**32 - 1


def _readme_settings_table():
    """{first flag of the row: [cells]} of the README's table of training options."""
    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Options and defaults", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `-"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[re.search(r"`(--[a-z-]+)", cells[0])[1]] = cells
    return rows


def test_readme_documents_every_setting():
    rows = _readme_settings_table()
    for setting in SETTINGS.values():
        assert setting.flag in rows, f"the README's options table lacks {setting.flag}"
        _, default, values, meaning = rows[setting.flag]
        shown = "; ".join(dict.fromkeys(setting.default_text(t) for t in setting.tasks))
        assert default.replace("`", "") == shown, setting.name
        assert values == setting.kind.values, setting.name
        assert meaning
    switches = {
        opt
        for command in (train_binary, train_multiclass)
        for param in command.params
        for opt in param.opts
    }
    assert set(rows) <= switches  # no row for an option that does not exist


# --- Values a real run cannot use: one-line errors, never a traceback ---------

DEEP = "x = " + "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    "text,message",
    [
        (f"hidden = {2**63 - 1}", "'hidden' must be a whole number from 1 to 65536"),
        ("hidden = 65537", "'hidden' must be a whole number from 1 to 65536"),
        (f"epochs = {2**63 - 1}", "'epochs' must be a whole number from 1 to 100000"),
        ("batch_size = 1000001", "'batch_size' must be a whole number from 1 to 1000000"),
        ("samples_per_class = 1000001", "'samples_per_class' must be a whole number from 1"),
        ("log_every = 100001", "'log_every' must be a whole number from 1 to 100000"),
        (f"seed = {2**32}", "'seed' must be a whole number from 0 to 4294967295"),
        ("lr = nan", "'lr' must be a number > 0, got nan"),
        ("lr = inf", "'lr' must be a number > 0, got inf"),
        ("momentum = nan", r"'momentum' must be a number in \[0, 1\)"),
        ("weight_decay = inf", "'weight_decay' must be a number >= 0"),
        ("weight_decay = " + "9" * 400, "'weight_decay' must be a number >= 0"),
        ('out = "runs/a\\u0000b"', "'out' must be a path without NUL characters"),
        ('data_dir = "d\\u0000"', "'data_dir' must be a path without NUL characters"),
        (DEEP, "nested too deeply"),
    ],
)
def test_impossible_values_in_files(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        read_config_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_upper_limits_themselves_are_accepted(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("hidden = 65536\nepochs = 100000\nbatch_size = 1000000\nseed = 4294967295\n")
    assert read_config_file(path) == {
        "hidden": 65536,
        "epochs": 100000,
        "batch_size": 1000000,
        "seed": MAX_SEED,
    }


def test_values_from_a_file_are_shown_short_and_escaped(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(f'dataset = "{"x" * 10000}"\n')
    with pytest.raises(ConfigError, match="'dataset' must be one of") as info:
        read_config_file(path)
    assert len(str(info.value)) < 300
    path.write_text('"\\u001b[2J" = 1\n')
    with pytest.raises(ConfigError, match="unknown key") as info:
        read_config_file(path)
    assert "\x1b" not in str(info.value) and "\\x1b[2J" in str(info.value)


def test_flag_values_get_the_same_checks():
    with pytest.raises(ConfigError, match="^--hidden: 'hidden' must be a whole number from 1"):
        resolve_config("multiclass", {}, {"hidden": 10**9})
    with pytest.raises(ConfigError, match="^--lr: 'lr' must be a number > 0, got nan") as info:
        resolve_config("multiclass", {}, {"lr": math.nan})
    assert info.value.setting == "lr"
    with pytest.raises(ConfigError, match="NUL"):
        resolve_config("multiclass", {}, {"out": "a\0b"})


def test_a_path_that_is_a_file_is_refused(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ConfigError, match="'out' must be a folder, got"):
        resolve_config("multiclass", {}, {"out": str(afile)})
