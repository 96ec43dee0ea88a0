"""Screenshot of the scenario explorer for the README: ``python scripts/screenshot_explorer.py`` (``make screenshots``).

Starts ``nkdefections-explore`` on a free port over the cached default fit (it fits first if
there is none), opens the page in headless Debian chromium (Playwright, ``/usr/bin/chromium``)
at 1280 px, loads ``border_crackdown`` (a warm-up) and then ``combined_stress`` (uncertain
paths, every driver outside its observed range), waits for the numbers and the chart, and writes ``docs/explorer.png``
(palette PNG, to keep the repository small).  Extra arguments go to ``nkdefections-explore``
(e.g. ``--fit outputs/readme/posterior.nc``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_explorer(args: list[str], workdir: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "nkdefections.cli.explore", "--port", "0", *args]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 600:  # a first fit takes about a minute
        line = proc.stdout.readline()
        if not line:
            break
        print(line, end="", file=sys.stderr)
        m = re.search(r"serving (http://127\.0\.0\.1:\d+/)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise SystemExit("nkdefections-explore did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "docs" / "explorer.png")
    p.add_argument("--scenario", default="combined_stress", help="the scenario loaded for the picture")
    p.add_argument("--height", type=int, default=1000)
    args, rest = p.parse_known_args()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_explorer(["--config-dir", str(Path(tmp) / "cfg"), *rest], Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": args.height})
                page.goto(url)
                page.wait_for_function("window.nkExplorer && window.nkExplorer.idle", timeout=60_000)
                for name in ("border_crackdown", args.scenario):  # the first is a warm-up: the picture's timing is warm
                    before = page.evaluate("window.nkExplorer.sentSeq")
                    page.select_option("#start", name)
                    page.click("#load")
                    page.wait_for_function(f"window.nkExplorer.idle && window.nkExplorer.renderedSeq > {before}")
                raw = Path(tmp) / "shot.png"
                page.screenshot(path=str(raw))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        img = Image.open(raw).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        img.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB, {img.size[0]}x{img.size[1]})")


if __name__ == "__main__":
    main()
