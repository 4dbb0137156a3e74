"""Settings: defaults, TOML file, flags, and errors that name the key."""

import json

import pytest

from mnistnet.config import read_config_file, resolve_config
from mnistnet.errors import ConfigError


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
    ],
)
def test_bad_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        read_config_file(path)
        resolve_config("binary", read_config_file(path), {})
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
    }
    for f in files:
        values = read_config_file(f)
        task = "binary" if "digits" in values else "multiclass"
        resolve_config(task, values, {})
