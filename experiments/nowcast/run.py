"""Thin wrapper kept for old habits: the nowcast validation is ``nkdefections-evidence nowcast [--refit]``.

Run from the repository root; it writes ``experiments/nowcast/results/`` and splices
``results.md`` into ``experiments/nowcast/README.md``. The code is :mod:`nkdefections.evidence.nowcast`.
"""

import sys

from nkdefections.cli.evidence import main

if __name__ == "__main__":
    sys.exit(main(["nowcast", *sys.argv[1:]]))
