"""The process pool behind independent refits (nkdefections.evaluate.workers): order, errors, interrupts."""

from __future__ import annotations

import math
import multiprocessing
import time

import pytest

from nkdefections.errors import ConfigError
from nkdefections.evaluate.workers import WORKERS_ENV, default_workers, run_pieces, threads_per_worker


def test_pieces_come_back_in_input_order_from_two_processes():
    pieces = [(2, k) for k in range(7)]
    assert run_pieces(pow, pieces, workers=2) == [2**k for k in range(7)]
    assert multiprocessing.active_children() == []


@pytest.mark.pure
def test_one_worker_runs_in_this_process_and_reports_each_piece():
    seen = []
    out = run_pieces(lambda a, b: a * b, [(1, 2), (3, 4)], workers=1, progress=lambda i, r: seen.append((i, r)))
    assert out == [2, 12]
    assert seen == [(0, 2), (1, 12)]


def test_a_failing_piece_raises_here_and_leaves_no_worker_behind():
    with pytest.raises(ValueError, match="math domain error"):
        run_pieces(math.sqrt, [(4.0,), (-1.0,), (9.0,)], workers=2)
    assert multiprocessing.active_children() == []


def test_an_interrupt_stops_the_running_workers_at_once():
    """Ctrl-C in the parent (here raised from the progress callback) does not wait for the other pieces."""

    def interrupt(i, result):
        raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_pieces(time.sleep, [(0.01,), (60.0,), (60.0,)], workers=2, progress=interrupt)
    assert time.perf_counter() - t0 < 30
    assert multiprocessing.active_children() == []


@pytest.mark.pure
@pytest.mark.parametrize("raw, expected", [("1", 1), ("3", 3), ("", None)])
def test_the_worker_count_comes_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(WORKERS_ENV, raw)
    assert default_workers() == (expected or max(1, min(2, multiprocessing.cpu_count())))


@pytest.mark.pure
@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_bad_worker_count_is_refused_with_the_variable_named(monkeypatch, raw):
    monkeypatch.setenv(WORKERS_ENV, raw)
    with pytest.raises(ConfigError, match=f"NKDEFECTIONS_WORKERS={raw!r}"):
        default_workers()


@pytest.mark.pure
def test_threads_are_shared_out_between_workers():
    assert threads_per_worker(2, 2) == 1
    assert threads_per_worker(4, 2) == 2
    assert threads_per_worker(1, 2) == 1


def test_a_script_without_a_main_guard_can_use_the_pool(tmp_path):
    """Spawned workers must not re-run the caller's script (users' scripts rarely have the guard)."""
    import subprocess
    import sys

    script = tmp_path / "analysis.py"
    script.write_text(
        "from nkdefections.evaluate.workers import run_pieces\n"
        "print('ran', run_pieces(pow, [(3, 2), (2, 5)], workers=2))\n",
        encoding="utf-8",
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ran [9, 32]"
