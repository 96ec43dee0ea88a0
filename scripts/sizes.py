"""List source files over MAX_FILE_LINES lines and functions over MAX_FUNCTION_LINES lines.

    python scripts/sizes.py [src/nkdefections]    # exit status 1 when anything is over

A function's length runs from its ``def`` (decorators included) to its last line, nested
functions included, not counting its docstring (numpydoc parameter lists are documentation,
not code to read); the limits keep every module and function readable in one sitting.
tests/project/test_architecture.py runs the same check.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def offenders(root: Path) -> list[str]:
    """``path: N lines`` and ``path:line name(): N lines`` for everything over the limits."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MAX_FILE_LINES:
            out.append(f"{path}: {n} lines (limit {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - start + 1
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    if isinstance(body[0].value.value, str):  # the docstring
                        length -= body[0].end_lineno - body[0].lineno + 1
                if length > MAX_FUNCTION_LINES:
                    out.append(f"{path}:{node.lineno} {node.name}(): {length} lines (limit {MAX_FUNCTION_LINES})")
    return out


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "src" / "nkdefections"
    found = offenders(root)
    print("\n".join(found) if found else f"{root}: no file over {MAX_FILE_LINES} lines, no function over "
          f"{MAX_FUNCTION_LINES}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
