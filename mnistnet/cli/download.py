"""Placeholder: ``download`` (issue 2)."""

import click


@click.command()
def download():
    """Fetch and verify a dataset (not written yet)."""
