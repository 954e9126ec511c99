"""``python -m ttp`` is the ``ttp`` command."""

from ttp.cli.main import app

app()
