"""Perpool demo: ``.venv/bin/python scripts/demo.py [OPTIONS]`` (what ``./scripts/demo.sh`` runs
after the setup); the same as ``python -m perpool.demo``. See ``--help`` and the README."""

from perpool.demo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
