"""``python -m perpool.cli``."""

from perpool.cli import main

raise SystemExit(main())
