"""What every command shares: errors become one line that names the flag."""

import click
import pytest
from click.testing import CliRunner

from mnistnet.cli._common import handle_errors
from mnistnet.errors import MnistnetError


def _command(error):
    @click.command()
    @click.option("--lr", type=float)
    @click.option("--data-dir", "data_dir")
    @handle_errors
    def command(**options):
        raise error

    return command


@pytest.mark.parametrize(
    "error,line",
    [
        (MnistnetError("the learning rate is too large", setting="lr"),
         "the learning rate is too large (--lr)"),
        (MnistnetError("no such folder", setting="data_dir"), "no such folder (--data-dir)"),
        (MnistnetError("try a smaller --lr", setting="lr"), "try a smaller --lr"),
        (MnistnetError("the seed is odd", setting="seed"), "the seed is odd"),  # no such flag
        (MnistnetError("nothing to name"), "nothing to name"),
    ],
)  # fmt: skip
def test_errors_name_the_flag_of_their_setting(error, line):
    result = CliRunner().invoke(_command(error), [])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {line}\n"
