"""CLI commands for campaigns and cases (filled in below)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
