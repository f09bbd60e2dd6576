"""``python -m stanet_rt.cli`` runs the CLI (used by tests that need a real process, e.g. SIGINT)."""

from stanet_rt.cli import main

main()
