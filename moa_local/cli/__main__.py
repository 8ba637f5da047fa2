"""``python -m moa_local.cli`` runs the CLI."""

from . import main

main()
