"""``python -m nkdefections.cli``: the ``nkdefections`` command."""

from nkdefections.cli.app import main

main()
