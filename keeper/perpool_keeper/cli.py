"""``perpool-keeper`` console script (placeholder)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    print(
        "perpool-keeper is not implemented yet: no keeper jobs exist in this version.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
