"""Thin wrapper kept for old habits: the SBC experiment is ``nkdefections-evidence sbc`` (same options).

Run from the repository root; it writes ``experiments/sbc/results/`` and splices
``results.md`` into ``experiments/sbc/README.md``. The code is :mod:`nkdefections.evidence.sbc`.
"""

import sys

from nkdefections.cli.evidence import main

if __name__ == "__main__":
    sys.exit(main(["sbc", *sys.argv[1:]]))
