"""The demo's options and its two presets (the full demo and ``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    steps: int
    """Steps of the price path (one keeper price update, one chain clock jump each)."""
    traders: int
    step_minutes: int
    """Simulated minutes per step (the chain clock jump; a third of it during the drop)."""
    step_seconds: float
    """Wall seconds per step (the keeper's replay speed)."""
    seed: int
    drop_pct: int
    quick: bool = False


@dataclass(frozen=True)
class Preset:
    steps: int
    traders: int
    step_seconds: float


FULL = Preset(steps=48, traders=16, step_seconds=3.0)
QUICK = Preset(steps=16, traders=8, step_seconds=2.5)
STEP_MINUTES = 30
SEED = 7
DROP_PCT = 35
DEFAULT_OUT = Path("demo-output")
