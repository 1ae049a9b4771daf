"""Fixtures and the per-class report of the adversarial suite (``tests/adversarial``), loaded
as a plugin by ``tests/conftest.py``.

Each module is one or a few SECURITY.md attack classes (``pytestmark`` carries
``pytest.mark.attack_class(N)``; a test can override it with its own marker) and gets its own
validator and world, so state a module leaves behind never reaches another. Every attempt made
through the ``attack`` fixture is counted; the terminal summary prints the table, and
``PERPOOL_SECURITY_REPORT=path.json`` also writes it as JSON (``scripts/security_report.py``
turns that into SECURITY_REPORT.md).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from adversary import LEDGER, Attack, World, build_world

from perpool.localnet import LocalnetProcess


@pytest.fixture(scope="module")
def adversarial_net() -> Iterator[LocalnetProcess]:
    from conftest import start_validator

    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(adversarial_net: LocalnetProcess) -> AsyncIterator[World]:
    built = await build_world(adversarial_net.url, adversarial_net.faucet())
    yield built
    await built.env.client.close()


@pytest.fixture
def attack(world: World, request: pytest.FixtureRequest) -> Attack:
    marker = request.node.get_closest_marker("attack_class")
    if marker is None:
        pytest.fail("adversarial tests need @pytest.mark.attack_class(N)", pytrace=False)
    return Attack(world, int(marker.args[0]), request.node.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not LEDGER.cases:
        return
    terminalreporter.section("adversarial cases by SECURITY.md class")
    terminalreporter.write_line(LEDGER.markdown())
    target = os.environ.get("PERPOOL_SECURITY_REPORT")
    if target:
        LEDGER.write_json(Path(target))
        terminalreporter.write_line(f"written to {target}")
