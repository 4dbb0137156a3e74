"""mnistnet sweep: plan a grid, run it as ordinary training runs, resume, print commands.

The runs are real subprocesses (``python -m mnistnet train-...``) on the
bundled sample, a few hundred images and a handful of hidden units each.
"""

import json
import os
import subprocess
import sys

import pytest
from helpers import run

from mnistnet import sweep
from mnistnet.errors import ConfigError

BASE = """\
dataset = "mnist-sample"
optimizer = "momentum"
reduction = "mean"
pixels = "unit"
init = "xavier"
dtype = "float32"
epochs = 2
samples_per_class = 20
hidden = 4
"""


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base.toml"
    path.write_text(BASE)
    return path


# --- planning -----------------------------------------------------------------------------


def test_the_grid_keeps_each_value_as_written_and_checks_it():
    grid = sweep.parse_grid(["lr=0.05, 0.1", "samples-per-class=all,10"])
    assert grid == {"lr": ["0.05", "0.1"], "samples_per_class": ["all", "10"]}


@pytest.mark.parametrize(
    "text,message",
    [
        ("lr", "write SETTING=VALUE"),
        ("learning_rate=0.1", "unknown setting 'learning_rate'"),
        ("lr=0.1,", "an empty value"),
        ("lr=0.1,fast", "--grid lr: 'fast' is not a number > 0"),
        ("hidden=0", "--grid hidden: '0' is not a whole number from 1 to 65536"),
        ("out=a,b", "out cannot vary in a sweep"),
        ("threads=1,2", "threads cannot vary in a sweep"),
    ],
)
def test_a_bad_grid_is_an_error_naming_it(text, message):
    with pytest.raises(ConfigError, match=message):
        sweep.parse_grid([text])


def test_a_setting_given_twice_is_an_error():
    with pytest.raises(ConfigError, match="lr is given twice"):
        sweep.parse_grid(["lr=0.1", "lr=0.2"])


def test_every_combination_and_seed_is_one_run_in_its_own_folder():
    grid = sweep.parse_grid(["lr=0.05,0.1,0.2", "hidden=128,256"])
    runs = sweep.plan_sweep({"seed": 5, "optimizer": "sgd"}, grid, 2, "out")
    assert len(runs) == 12
    assert runs[0].name == "lr-0.05_hidden-128_seed-5"
    assert runs[1].name == "lr-0.05_hidden-128_seed-6"
    assert runs[2].name == "lr-0.05_hidden-256_seed-5"
    assert len({r.out for r in runs}) == 12
    last = runs[-1].config
    assert (last.task, last.lr, last.hidden, last.seed, last.optimizer) == (
        "multiclass", 0.2, 256, 6, "sgd"
    )  # fmt: skip
    assert last.out_dir == os.path.join("out", "lr-0.2_hidden-256_seed-6")


def test_a_config_with_digits_sweeps_train_binary_from_its_default_seed():
    runs = sweep.plan_sweep({"digits": (3, 7)}, {}, 3, "out")
    assert [r.config.task for r in runs] == ["binary"] * 3
    assert [r.config.seed for r in runs] == [3, 4, 5]  # train-binary's default seed is 3
    assert sweep.train_command(runs[0], 2, "b.toml") == [
        "mnistnet", "train-binary", "--config", "b.toml", "--seed", "3", "--threads", "2",
        "--out", os.path.join("out", "seed-3"),
    ]  # fmt: skip


def test_a_combination_training_would_refuse_fails_before_any_run():
    grid = sweep.parse_grid(["batch_size=32,64"])
    with pytest.raises(ConfigError, match="run batch_size-32_seed-29: --batch-size: .*'gd'"):
        sweep.plan_sweep({}, grid, 1, "out")


def test_jobs_share_out_the_cores():
    assert sweep.jobs_and_threads(None, None, 12, cores=2) == (2, 1)
    assert sweep.jobs_and_threads(None, None, 3, cores=16) == (3, 5)
    assert sweep.jobs_and_threads(4, None, 12, cores=2) == (4, 1)
    assert sweep.jobs_and_threads(1, 3, 12, cores=16) == (1, 3)


# --- running ------------------------------------------------------------------------------


def _folders(out):
    return sorted(p.name for p in out.iterdir() if p.is_dir())


def test_a_sweep_runs_every_combination_reports_failures_and_resumes(base, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    args = ["sweep", "--config", base, "--grid", "lr=0.05,0.1,1e30", "--jobs", "2", "--out", out]
    result = run(*args, "--no-plots", "--json")
    assert result.exit_code == 1, result.output  # the lr of 1e30 diverges
    assert "1 of 3 runs failed; the first, lr-1e30_seed-29: training diverged" in (result.stderr)
    assert _folders(out) == ["lr-0.05_seed-29", "lr-0.1_seed-29"]  # the failed run: nothing
    good = out / "lr-0.1_seed-29"
    assert {"model.npz", "history.csv", "metrics.json"} <= set(os.listdir(good))
    metrics = json.loads((good / "metrics.json").read_text())
    assert metrics["threads"] == min(sweep.jobs_and_threads(2, None, 3)[1], 4)  # cores/jobs
    document = json.loads(result.stdout)
    assert document["metric"] == "test_acc"
    rows = {r["run"]: r for r in document["runs"]}
    assert rows["lr-0.1_seed-29"]["status"] == "done"
    assert rows["lr-0.1_seed-29"]["final"] == metrics["last_epoch"]["test_acc"]
    assert rows["lr-0.1_seed-29"]["epochs"] == 2
    assert rows["lr-1e30_seed-29"]["status"] == "failed"
    assert rows["lr-1e30_seed-29"]["final"] is None
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0] == "run,lr,seed,status,metric,final,best,best_epoch,epochs,seconds,out,error"
    assert len(lines) == 4
    assert document["picture"] is None  # --no-plots

    # Rerun: the finished runs are skipped, only the failed one starts again.
    started = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(
        sweep.subprocess, "Popen", lambda cmd, **kw: started.append(cmd) or real_popen(cmd, **kw)
    )
    before = (good / "model.npz").stat().st_mtime_ns
    again = run(*args)
    assert again.exit_code == 1
    assert "2 of 3 runs already finished" in again.stderr
    assert [c[c.index("--out") + 1] for c in started] == [str(out / "lr-1e30_seed-29")]
    assert (good / "model.npz").stat().st_mtime_ns == before
    assert "0.05" in again.stdout and "2/2" not in again.stdout  # the table: a row per lr
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # compare's picture

    # Other settings in the base config: the finished run is not taken for the new one.
    base.write_text(BASE.replace("epochs = 2", "epochs = 3"))
    changed = run(*args, "--no-plots")
    assert changed.exit_code == 1
    assert "holds a run with other settings (epochs 2 instead of 3)" in changed.stderr


def test_seeds_are_grouped_in_the_table():
    rows = [
        {"lr": lr, "seed": seed, "final": final, "best": final and final + 0.01, "seconds": 2.0}
        for lr, seed, final in (("0.1", 1, 0.5), ("0.1", 2, 0.7), ("0.2", 1, None))
    ]
    groups = sweep.group_by_setting(rows, ["lr"])
    assert groups[0] == {"lr": "0.1", "runs": 2, "done": 2, "final": pytest.approx(0.6),
                         "final_sd": pytest.approx(0.1414213), "best": pytest.approx(0.61),
                         "seconds": 2.0}  # fmt: skip
    assert groups[1]["done"] == 0 and groups[1]["final"] is None


def test_printed_commands_run_as_they_are(base, tmp_path):
    out = tmp_path / "sweep"
    printed = run("sweep", "--config", base, "--grid", "hidden=3", "--jobs", "1", "--out", out,
                  "--no-plots", "--print-commands")  # fmt: skip
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert lines == [
        f"mnistnet train-multiclass --config {base} --hidden 3 --seed 29 --threads "
        f"{sweep.jobs_and_threads(1, None, 1)[1]} --out {out / 'hidden-3_seed-29'} --no-plots"
    ]
    assert not out.exists()  # printing runs nothing
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    subprocess.run(lines[0], shell=True, check=True, env=env, capture_output=True)
    assert (out / "hidden-3_seed-29" / "metrics.json").is_file()
    again = run("sweep", "--config", base, "--grid", "hidden=3", "--out", out, "--no-plots",
                "--print-commands")  # fmt: skip
    assert again.stdout == ""
    assert "1 of 1 runs already finished" in again.stderr


def test_bad_sweep_options_are_usage_errors(base, tmp_path):
    result = run("sweep", "--config", base, "--grid", "lr=fast", "--out", tmp_path)
    assert result.exit_code == 2
    assert "--grid lr: 'fast' is not a number > 0" in result.stderr
    result = run("sweep", "--config", base, "--jobs", "0", "--out", tmp_path)
    assert result.exit_code == 2
    assert "'0' is not a whole number from 1 to 1024 or 'auto'" in result.stderr


def test_a_single_run_is_summarised_and_quiet_prints_nothing(base, tmp_path):
    out = tmp_path / "one"
    result = run("sweep", "--config", base, "--out", out, "--no-plots", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["runs"]
    assert row["status"] == "done" and row["final"] is not None and row["epochs"] == 2
    again = run("sweep", "--config", base, "--out", out, "--no-plots", "--quiet")
    assert again.exit_code == 0 and again.stdout == "" and again.stderr == ""


def test_an_interrupted_sweep_says_what_it_kept(base, tmp_path, monkeypatch):
    out = tmp_path / "stopped"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_all", interrupted)
    result = run("sweep", "--config", base, "--grid", "lr=0.05,0.1", "--out", out)
    assert result.exit_code == 130
    assert "0 of 2 runs are finished" in result.stderr and "the same command runs the rest" in (
        result.stderr
    )
