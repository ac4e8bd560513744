"""Typer commands only; the logic lives in modules named for their concept."""

from __future__ import annotations

import typer

from pusher.emulators.cli import app as emulate_app

app = typer.Typer(help="Keep marketing destinations exactly in step with warehouse audiences.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(emulate_app, name="emulate")
