"""Accessibility checks in the page tests: axe-core (from the npm registry, pinned in
package-lock.json) run inside the page, through the browser's debugging protocol, so the
pages' Content-Security-Policy (no inline script) stays as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
#: what a page may not have
BLOCKING = ("serious", "critical")


async def violations(page: Any, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """axe-core's violations of ``impacts`` on ``page`` as it is now (WCAG 2 A and AA rules),
    each with its rule, impact and the first few elements it found."""
    assert AXE.exists(), f"{AXE} is missing: run scripts/setup (npm ci)"
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    return [{"rule": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"][:5]]}
            for v in result["violations"] if v["impact"] in impacts]


async def assert_accessible(page: Any) -> None:
    """No serious or critical axe-core violation on ``page``."""
    found = await violations(page)
    assert not found, "axe-core found:\n" + "\n".join(
        f"  {v['impact']} {v['rule']}: {v['help']} at {v['nodes']}" for v in found)
