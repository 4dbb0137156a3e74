"""The ``mnistnet`` command line: a click group and its commands.

Each command lives in its own module and imports the heavy parts (NumPy
math, matplotlib) inside its function, so ``mnistnet --help`` stays fast.
"""

import click

from mnistnet import __version__
from mnistnet.cli.compare import compare
from mnistnet.cli.download import download
from mnistnet.cli.evaluate import evaluate, info
from mnistnet.cli.lr_find import lr_find
from mnistnet.cli.predict import predict
from mnistnet.cli.serve import serve
from mnistnet.cli.sweep import sweep
from mnistnet.cli.train import train_binary, train_multiclass


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="mnistnet")
def main():
    """Train and evaluate a two-layer neural network on MNIST, from scratch in NumPy.

    \b
    Quick start (offline, bundled real digits):
      mnistnet download --dataset mnist-sample
      mnistnet train-binary --digits 5 8 --dataset mnist-sample
      mnistnet evaluate runs/binary-5-8/model.npz --dataset mnist-sample

    Exit codes: 0 ok, 1 failure, 2 usage error, 3 below --min-accuracy,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    """


main.add_command(download)
main.add_command(train_binary)
main.add_command(train_multiclass)
main.add_command(evaluate)
main.add_command(info)
main.add_command(predict)
main.add_command(serve)
main.add_command(lr_find)
main.add_command(compare)
main.add_command(sweep)
