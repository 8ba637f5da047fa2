"""``python -m moa_local`` runs the CLI."""

from .cli import main

main()
