"""What reaches the terminal: file strings shown literally, strict JSON on stdout."""

import io

import pytest
from helpers import run, strict_json
from rich.console import Console

from mnistnet.console import escape_control, literal, print_json

CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))] + ["\u202e", "\u2066", "\u2028"]


@pytest.mark.parametrize("char", CONTROLS)
def test_every_control_character_is_spelled_out(char):
    shown = escape_control(f"a{char}b")
    assert shown.startswith("a\\") and shown.endswith("b") and char not in shown


def test_printable_text_is_kept_and_newlines_on_request():
    text = "Ankle boot → 5 (0.97) é … [x] \\"
    assert escape_control(text) == text
    assert escape_control("\x1b[2J") == "\\x1b[2J"
    assert escape_control("a\nb\tc", keep="\n") == "a\nb\\tc"


@pytest.mark.parametrize("text", ["[bold red]5", "8[/]", "a[/]b", "[link=x]y", "end\\", "\x1b[2Jz"])
def test_literal_prints_what_it_was_given(text):
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(literal(text))  # never raises
    assert out.getvalue() == escape_control(text) + "\n"


def test_print_json_is_strict_json(capsys):
    print_json({"loss": float("nan"), "bounds": [float("inf"), -float("inf"), 0.5], "n": 3})
    doc = strict_json(capsys.readouterr().out)
    assert doc == {"loss": "NaN", "bounds": ["Infinity", "-Infinity", 0.5], "n": 3}
    print_json({"a": 1, "b": [float("nan")]}, one_line=True)
    assert capsys.readouterr().out == '{"a": 1, "b": ["NaN"]}\n'


# --- every command ------------------------------------------------------------------------


def test_train_prints_its_out_folder_literally(tmp_path, idx_dataset):
    out = tmp_path / "a[/]b" / "[red]x"  # a MarkupError, then a wrong path, before
    result = run(
        "train-multiclass", "--dataset", "idx", "--data-dir", idx_dataset, "--out", out,
        "--hidden", "4", "--epochs", "1", "--no-plots", env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert str(out / "model.npz") in result.stderr


def test_download_prints_its_folder_literally(tmp_path, make_idx_dataset):
    folder = make_idx_dataset(tmp_path / "[red]x")
    result = run("download", "--dataset", "idx", "--data-dir", folder)
    assert result.exit_code == 0, result.output
    assert f"idx: {folder}" in result.stdout
    assert str(folder / "t10k-labels-idx1-ubyte.gz") in result.stdout


def test_error_messages_never_carry_control_characters(tmp_path):
    result = run("info", tmp_path / "\x1b[2Jm.npz")
    assert result.exit_code == 1
    assert result.stderr == f"Error: model file {tmp_path}/\\x1b[2Jm.npz: no such file\n"


@pytest.mark.parametrize(
    "args",
    [
        ["download", "--dataset", "mnist-sample", "--json"],
        ["train-binary", "--digits", "5", "8", "--dataset", "idx", "--data-dir", "DATA",
         "--hidden", "4", "--epochs", "2", "--no-plots", "--json", "--jsonl", "--out", "OUT"],
    ],
)  # fmt: skip
def test_json_output_is_strict_json(args, idx_dataset, tmp_path):
    args = [{"DATA": idx_dataset, "OUT": tmp_path / "o"}.get(a, a) for a in args]
    result = run(*args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines() if "--jsonl" in args else [result.stdout]
    assert all(isinstance(strict_json(line), dict) for line in lines)
    assert len(lines) == (3 if "--jsonl" in args else 1)  # two epochs and the summary
