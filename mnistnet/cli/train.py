"""Placeholder: ``train-binary`` and ``train-multiclass`` (issue 3)."""

import click


@click.command("train-binary")
def train_binary():
    """Train 784-256-1 on two digits (not written yet)."""


@click.command("train-multiclass")
def train_multiclass():
    """Train 784-256-10 on ten classes (not written yet)."""
