"""``mnistnet download`` through click's CliRunner: output, JSON, exit codes."""

import json

import pytest
from click.testing import CliRunner
from helpers import serve

from mnistnet import datasets
from mnistnet.cli import main
from mnistnet.datasets import DatasetSpec


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def fake_mnist(monkeypatch, pinned_idx_dataset):
    """Replace the registry's mnist by a tiny dataset; returns its payload and a setter."""
    payload, files = pinned_idx_dataset

    def with_mirrors(*mirrors):
        spec = DatasetSpec(name="mnist", files=files, mirrors=tuple(mirrors))
        monkeypatch.setitem(datasets.DATASETS, "mnist", spec)

    with_mirrors()
    return payload, with_mirrors


@pytest.mark.parametrize("command", [[], *([name] for name in main.commands)])
def test_help(runner, command):
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_download_help_lists_the_options(runner):
    result = runner.invoke(main, ["download", "-h"])
    for option in ("--dataset", "mnist-sample", "--data-dir", "--mirror", "--json", "--quiet"):
        assert option in result.output


def test_mnist_sample_table(runner):
    result = runner.invoke(main, ["download", "--dataset", "mnist-sample"])
    assert result.exit_code == 0, result.output
    assert "train-images-idx3-ubyte.gz" in result.stdout and "1,609,526" in result.stdout
    assert "yes" in result.stdout
    assert result.stderr == ""


def test_table_on_a_pipe_has_no_trailing_blanks(runner):
    result = runner.invoke(main, ["download", "--dataset", "mnist-sample"])
    lines = result.stdout.splitlines()
    assert lines[0] == f"mnist-sample: {datasets.resolve_data_dir('mnist-sample')}"
    assert [line for line in lines if line != line.rstrip()] == []
    rows = [line.split() for line in lines if "idx" in line]
    assert [row[:3] for row in rows] == [
        ["train-images-idx3-ubyte.gz", "1,609,526", "yes"],
        ["train-labels-idx1-ubyte.gz", "4,997", "yes"],
    ]


def test_mnist_sample_json(runner):
    result = runner.invoke(main, ["download", "--dataset", "mnist-sample", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dataset"] == "mnist-sample"
    assert [f["role"] for f in doc["files"]] == ["train-images", "train-labels"]
    assert all(f["verified"] for f in doc["files"])
    assert doc["files"][1]["size"] == 4997


def test_data_dir_is_ignored_for_the_bundled_sample(runner, tmp_path):
    args = ["download", "--dataset", "mnist-sample", "--data-dir", str(tmp_path / "x")]
    result = runner.invoke(main, args)
    assert result.exit_code == 0
    assert "--data-dir is ignored" in result.stderr
    assert not (tmp_path / "x").exists()


def test_quiet_prints_nothing(runner):
    result = runner.invoke(main, ["download", "--dataset", "mnist-sample", "--quiet"])
    assert result.exit_code == 0 and result.output == ""


def test_idx_without_data_dir_is_a_usage_error(runner):
    result = runner.invoke(main, ["download", "--dataset", "idx"])
    assert result.exit_code == 2
    assert "--dataset idx needs --data-dir" in result.stderr


def test_unknown_dataset_is_a_usage_error(runner):
    result = runner.invoke(main, ["download", "--dataset", "emnist"])
    assert result.exit_code == 2


def test_idx_json_reports_computed_hashes(runner, make_idx_dataset, tmp_path):
    directory = make_idx_dataset(tmp_path / "mine", gz=False)
    result = runner.invoke(main, ["download", "--dataset", "idx", "--data-dir", str(directory)])
    assert result.exit_code == 0, result.output
    assert "not pinned" in result.stdout
    result = runner.invoke(
        main, ["download", "--dataset", "idx", "--data-dir", str(directory), "--json"]
    )
    doc = json.loads(result.stdout)
    assert doc["data_dir"] == str(directory)
    assert [f["name"] for f in doc["files"]] == [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    assert not any(f["verified"] for f in doc["files"])


def test_garbage_file_is_a_one_line_error(runner, make_idx_dataset, tmp_path):
    directory = make_idx_dataset(tmp_path / "mine")
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    result = runner.invoke(main, ["download", "--dataset", "idx", "--data-dir", str(directory)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "corrupt gzip data" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_all_mirrors_down_exits_1_with_the_listing(runner, fake_mnist, dead_url, tmp_path):
    _, with_mirrors = fake_mnist
    with_mirrors(dead_url)
    other = dead_url.replace("/mnist/", "/other/")
    result = runner.invoke(main, ["download", "--mirror", other, "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[:4] == [
        f"Downloading {other}train-images-idx3-ubyte.gz",
        "  failed: connection refused",
        f"Downloading {dead_url}train-images-idx3-ubyte.gz",
        "  failed: connection refused",
    ]
    lines = lines[4:]
    assert lines[0].startswith("Error: could not download train-images-idx3-ubyte.gz of mnist")
    assert lines[1:3] == [f"  {other}: connection refused", f"  {dead_url}: connection refused"]
    assert "the mnist-sample dataset" in lines[3]
    assert not (tmp_path / "d").exists()


def test_mirror_option_and_data_dir(runner, fake_mnist, server, tmp_path):
    payload, _ = fake_mnist
    mirror = serve(server, "/m/", payload)
    target = tmp_path / "target"
    args = ["download", "--mirror", mirror, "--data-dir", str(target), "--json"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f["path"] for f in doc["files"]] == [str(target / name) for name in payload]
    assert all(f["verified"] for f in doc["files"])
    assert len(server.log) == 4
    assert result.stderr.count("Downloading http://127.0.0.1") == 4  # no terminal: plain lines
    # Second run: verified from disk, nothing downloaded.
    assert runner.invoke(main, args).exit_code == 0
    assert len(server.log) == 4


def test_environment_data_dir_and_mirror(runner, fake_mnist, server, tmp_path, monkeypatch):
    payload, _ = fake_mnist
    monkeypatch.setenv("MNISTNET_DATA_DIR", str(tmp_path / "env-cache"))
    monkeypatch.setenv("MNISTNET_MIRROR", serve(server, "/env/", payload))
    result = runner.invoke(main, ["download", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["data_dir"] == str(tmp_path / "env-cache" / "mnist")
    assert sorted(p.name for p in (tmp_path / "env-cache" / "mnist").iterdir()) == sorted(payload)


def test_terminal_gets_a_bar_per_file_not_plain_lines(
    runner, fake_mnist, server, dead_url, tmp_path, monkeypatch
):
    """On a terminal the command hands the data layer a rich bar; a failed attempt's goes."""
    from mnistnet.cli import progress

    payload, with_mirrors = fake_mnist
    good = serve(server, "/m/", payload)
    with_mirrors(dead_url, good)
    monkeypatch.setattr(progress, "is_interactive", lambda console: True)
    result = runner.invoke(main, ["download", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    good_host, dead_host = good.split("/")[2], dead_url.split("/")[2]
    assert [line.split()[:2] for line in result.stderr.splitlines()] == [
        [name, good_host] for name in payload
    ]
    assert dead_host not in result.stderr and "Downloading" not in result.stderr
    assert json.loads(result.stdout)["dataset"] == "mnist"
