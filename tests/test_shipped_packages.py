"""What ships (agent/, drivers/) holds no test double and no benchmark: those live in tests/ and
benchmarks/. drivers/sim/ is shipped on purpose: it is the hardware `--simulate` and the demo
run on."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED = [p for d in ("agent", "drivers") for p in sorted((REPO / d).rglob("*.py"))
           if "sim" not in p.relative_to(REPO).parts]  # fmt: skip


def test_no_fake_class_and_no_timing_harness_ships() -> None:
    found = []
    for path in SHIPPED:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.startswith(("Fake", "Mock")):
                found.append(f"{path.relative_to(REPO)}: class {node.name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if "timeit" in names or getattr(node, "module", None) == "timeit":
                    found.append(f"{path.relative_to(REPO)}: imports timeit")
    assert len(SHIPPED) > 100
    assert found == []
