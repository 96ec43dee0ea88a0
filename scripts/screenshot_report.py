"""The first screen of a run report, as a reader sees it: a headless Chromium screenshot.

    python scripts/screenshot_report.py RUN_DIR docs/report-first-screen.png [--overwrite]

Opens ``RUN_DIR/report.html`` (or a report file given directly) in headless Chromium at
1280 x 800 px, saves the first screen as a PNG (a 256-colour palette keeps it small), and
prints where the headline table, the overlay chart and the caveats sit on the page
(``getBoundingClientRect()`` in CSS px) with whether each lies inside the first screen.
Exits 1 when the table or the chart does not.

Uses Playwright for Python with the system's Chromium (``/usr/bin/chromium``, the Debian
``chromium`` package; ``$NKDEFECTIONS_CHROMIUM`` names another); Playwright's own browser
download is never used.  ``tests/report/test_report_screen.py`` runs the same check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 1280, 800

#: What the first screen must hold: name -> CSS selector inside the report.
PARTS = {"table": ".headline table", "chart": ".headline .chart img", "caveats": ".headline .caveats"}


def chromium() -> str | None:
    """The Chromium executable: ``$NKDEFECTIONS_CHROMIUM``, else ``chromium`` on the PATH, else None."""
    named = os.environ.get("NKDEFECTIONS_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def first_screen(report: Path, png: Path, *, width: int = WIDTH, height: int = HEIGHT) -> dict[str, Any]:
    """Screenshot the first ``width`` x ``height`` px of ``report`` into ``png``; where each part sits.

    Returns ``{"viewport": {...}, "parts": {name: {"top", "bottom", "left", "right", "in_first_screen"}}}``;
    a part missing from the page has ``None`` instead of its box.
    """
    from playwright.sync_api import sync_playwright

    exe = chromium()
    if exe is None:
        raise FileNotFoundError(
            "no Chromium found: install Debian's `chromium` package (apt-get install -y chromium) "
            "or point $NKDEFECTIONS_CHROMIUM at a Chromium executable."
        )
    report = Path(report).resolve()
    if not report.is_file():
        raise FileNotFoundError(f"{report}: no such report file")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            page.goto(report.as_uri(), wait_until="load")
            parts = {}
            for name, selector in PARTS.items():
                box = page.evaluate(
                    "s => { const e = document.querySelector(s); if (!e) return null;"
                    " const r = e.getBoundingClientRect();"
                    " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,"
                    " loaded: e.tagName !== 'IMG' || (e.complete && e.naturalWidth > 0)}; }",
                    selector,
                )
                if box is not None:
                    box["in_first_screen"] = bool(box["bottom"] <= height and box["right"] <= width)
                parts[name] = box
            png.parent.mkdir(parents=True, exist_ok=True)
            tmp = png.with_name(f".{png.name}.partial.png")
            page.screenshot(path=str(tmp), full_page=False)
        finally:
            browser.close()
    _palette(tmp)
    os.replace(tmp, png)  # written whole or not at all
    return {"viewport": {"width": width, "height": height}, "parts": parts}


def _palette(png: Path) -> None:
    """Rewrite ``png`` with a 256-colour palette (a few times smaller; text and lines stay sharp)."""
    from PIL import Image

    with Image.open(png) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run", type=Path, help="a run folder (with report.html) or a report .html file")
    ap.add_argument("png", type=Path, help="where to write the screenshot")
    ap.add_argument("--width", type=int, default=WIDTH)
    ap.add_argument("--height", type=int, default=HEIGHT)
    ap.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    args = ap.parse_args(argv)
    report = args.run / "report.html" if args.run.is_dir() else args.run
    if args.png.exists() and not args.overwrite:
        print(f"{args.png}: exists; pass --overwrite to replace it.", file=sys.stderr)
        return 2
    try:
        where = first_screen(report, args.png, width=args.width, height=args.height)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    print(json.dumps(where, indent=2))
    missing = [n for n in ("table", "chart") if not (where["parts"][n] or {}).get("in_first_screen")]
    if missing:
        print(f"not in the first {args.width} x {args.height} px screen: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"wrote {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
