"""``python -m openxp.cli``."""

from openxp.cli import app

app()
