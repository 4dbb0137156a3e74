"""Placeholder: ``evaluate`` and ``info`` (issue 4)."""

import click


@click.command()
def evaluate():
    """Score a saved model (not written yet)."""


@click.command()
def info():
    """Show a saved model's metadata (not written yet)."""
