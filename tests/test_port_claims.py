"""free_port() never hands out a port twice in a test session, across pytest-xdist workers: a
port the kernel frees in one worker may be the one another worker's agent still reconnects to
(an outage test, or an agent pointed where nothing listens), and that agent, node id test-node
too, would answer the commands of the test that started a broker there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import mqtt_fixtures
from tests.conftest import REPO

DRAWS = 600  # ~14000 ports the kernel picks from for bind(): two such sets meet ~13 times


def test_two_workers_of_a_session_never_get_the_same_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = tmp_path / "ports"
    claims.mkdir()
    monkeypatch.setattr(mqtt_fixtures, "PORT_CLAIMS", claims)
    monkeypatch.setattr(mqtt_fixtures, "_claimed", set())
    other = subprocess.Popen(  # the other worker: a process of its own, drawing at the same time
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from tests import mqtt_fixtures as m; m.PORT_CLAIMS = Path(sys.argv[1]); "
         f"print(*[m.free_port() for _ in range({DRAWS})])", str(claims)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    mine = [mqtt_fixtures.free_port() for _ in range(DRAWS)]
    out, _ = other.communicate(timeout=60)
    theirs = [int(p) for p in out.split()]
    assert len(theirs) == DRAWS and len(set(mine)) == DRAWS and len(set(theirs)) == DRAWS
    assert not set(mine) & set(theirs)
    assert {int(p.name) for p in claims.iterdir()} == set(mine) | set(theirs)
