"""What the ``nkdefections`` command prints: warnings, Ctrl-C, and the closing summary.

Everything here is presentation.  :func:`run_summary` is a pure function of a finished run
folder (``run.json``, ``effects.csv``, ``forecast_summary.csv``, ``contrasts.csv``), so what
the console shows at the end is exactly what was written, and a test can check it on a
fake folder without fitting anything.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

INTERRUPTED = "nkdefections: interrupted (Ctrl-C); nothing was written."
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def format_warning(message: Warning | str) -> str:
    """One ``warning:`` line (continuation lines of a long message indented under it)."""
    lines = str(message).strip().splitlines() or [""]
    return "\n".join([f"warning: {lines[0]}", *(f"  {line.strip()}" for line in lines[1:])]) + "\n"


class WarningPrinter:
    """A :func:`warnings.showwarning` that prints each distinct message once, as :func:`format_warning`.

    No file name, no source line: the message says what happened and what to do.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.seen: set[str] = set()

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = str(message).strip()
        if text in self.seen:
            return
        self.seen.add(text)
        stream = file or self.stream or sys.stderr
        try:
            stream.write(format_warning(text))
            stream.flush()
        except (OSError, ValueError):  # a closed stream must not turn a warning into an error
            pass


def install_warning_printer(stream: TextIO | None = None) -> WarningPrinter:
    """Route every warning of this process through a :class:`WarningPrinter`."""
    printer = WarningPrinter(stream)
    warnings.showwarning = printer
    return printer


class CtrlC:
    """SIGINT handling for the console script: Ctrl-C stops the run and writes nothing.

    The handler raises :class:`KeyboardInterrupt` as usual and also asks the pipeline to stop
    (:func:`nkdefections.pipeline.request_stop`): a ``KeyboardInterrupt`` that lands inside a
    callback of JAX/XLA is swallowed there ("Exception ignored in ..."); then the process
    stops at once (:meth:`abort`), and if even that hook is not reached, the pipeline stops
    at its next step.
    """

    def __init__(self) -> None:
        self.pressed = 0

    def handler(self, signum: int, frame: Any) -> None:
        from nkdefections.pipeline import request_stop

        self.pressed += 1
        request_stop()
        raise KeyboardInterrupt

    def unraisable(self, info: Any) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            # swallowed inside a JAX/XLA callback: the sampler would run on to the end, so stop
            # now, removing what the run has written so far (nothing is committed during a fit)
            self.abort()
        self._previous_unraisable(info)

    @staticmethod
    def abort() -> None:
        """Stop the process at once: discard the run's partial folder, print one line, exit 130."""
        import os

        from nkdefections.pipeline import discard_partial

        discard_partial()
        print(INTERRUPTED, file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)

    def install(self) -> CtrlC:
        import signal

        signal.signal(signal.SIGINT, self.handler)
        self._previous_unraisable = sys.unraisablehook
        sys.unraisablehook = self.unraisable
        return self


# ----------------------------------------------------------------------------
# The closing summary
# ----------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:+.1f}%"


def _count(x: float) -> str:
    return f"{x:,.0f}"


def _interval_columns(df: pd.DataFrame) -> tuple[str, str, int]:
    """The outermost ``qNN_pct`` columns of an effects table and the interval's mass in %."""
    qs = []
    for c in df.columns:
        if c.startswith("q") and c.endswith("_pct"):
            try:
                qs.append((float(c[1:-4]), c))
            except ValueError:
                continue
    if len(qs) < 2:
        raise ValueError(f"effects table: no quantile columns qNN_pct among {list(df.columns)}")
    qs.sort()
    return qs[0][1], qs[-1][1], round(qs[-1][0] - qs[0][0])


def gate_line(meta: dict[str, Any]) -> str:
    """The convergence gate's verdict with the numbers it was judged on."""
    conv, gate = meta.get("convergence", {}), meta.get("gate_config", {})
    nan = float("nan")
    numbers = (
        f"max R-hat {conv.get('max_rhat', nan):.3f} (limit {gate.get('rhat_max', '?')}), "
        f"min ESS bulk {conv.get('min_ess_bulk', nan):.0f} (limit {gate.get('ess_bulk_min', '?')}) "
        f"/ tail {conv.get('min_ess_tail', nan):.0f} (limit {gate.get('ess_tail_min', '?')}), "
        f"divergences {conv.get('divergences', '?')} (limit {gate.get('max_divergences', '?')})"
    )
    if conv.get("passed"):
        verdict = "passed"
    elif gate.get("enforce", True):
        verdict = "FAILED"
    else:
        verdict = "FAILED, not enforced (gate.enforce=false): do not trust these numbers"
    return f"convergence gate: {verdict}; {numbers}"


def _sex_lines(path: Path) -> list[str]:
    """A by-sex run's women and men over the cumulative window, per scenario (nothing without the file)."""
    if not path.is_file() or path.stat().st_size <= 1:
        return []
    t = pd.read_csv(path)
    cum = t[t["year"].astype(str).str.startswith("cumulative")]
    if not len(cum):
        return []
    window = str(cum["year"].iloc[0]).removeprefix("cumulative").strip()
    out = [f"by sex, cumulative {window} (median, 80% interval; female share):"]
    w = max(len(str(s)) for s in cum["scenario"])
    for name, g in cum.groupby("scenario", sort=False):
        parts = []
        for sex in ("female", "male"):
            r = g[g["sex"] == sex].iloc[0]
            parts.append(f"{sex} {_count(r['median'])} ({_count(r['lower_80'])} to {_count(r['upper_80'])})")
        r = g.iloc[0]
        share = f"{r['female_share_median']:.0%} ({r['female_share_lower_80']:.0%} to {r['female_share_upper_80']:.0%})"
        out.append(f"  {str(name).ljust(w)}  {'  '.join(parts)}  {share}")
    return out


def run_summary(run_dir: str | Path) -> str:
    """The text printed at the end of a run: gate, effects, scenario headline, report path."""
    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    conv = meta.get("convergence", {})
    fit = "fit reused from the cache" if meta.get("cache_hit") else "fit sampled"
    seconds = meta.get("seconds", {}).get("total")
    took = f" in {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    out = [
        f"nkdefections: run finished{took} ({fit}: {conv.get('chains', '?')} chains x {conv.get('draws', '?')} draws)",
        gate_line(meta),
    ]

    effects = pd.read_csv(run_dir / "effects.csv")
    lo, hi, mass = _interval_columns(effects)
    out.append(f"effects (% change in expected arrivals per unit; median, {mass}% interval, P(effect > 0)):")
    w = max(len(str(d)) for d in effects["driver"])
    intervals = [f"({_pct(a)} to {_pct(b)})" for a, b in zip(effects[lo], effects[hi], strict=True)]
    wi = max(map(len, intervals))
    for r, iv in zip(effects.to_dict("records"), intervals, strict=True):
        lag = f", lag {int(r['lag_years'])}" if "lag_years" in r and int(r["lag_years"]) else ""
        out.append(
            f"  {str(r['driver']).ljust(w)}  {_pct(r['median_pct']):>7}  {iv.ljust(wi)}  "
            f"P>0 {r['prob_positive']:.3f}   per {r['unit']}{lag}"
        )

    summary_path, contrasts_path = run_dir / "forecast_summary.csv", run_dir / "contrasts.csv"
    if summary_path.is_file() and summary_path.stat().st_size > 1:
        summary = pd.read_csv(summary_path)
        cum = summary[summary["year"].astype(str).str.startswith("cumulative")]
        contr = (
            pd.read_csv(contrasts_path)
            if contrasts_path.is_file() and contrasts_path.stat().st_size > 1
            else pd.DataFrame(columns=["scenario", "baseline", "year", "prob_greater"])
        )
        ccum = contr[contr["year"].astype(str).str.startswith("cumulative")].set_index("scenario")
        baselines = sorted(set(ccum["baseline"])) if len(ccum) else []
        base = baselines[0] if len(baselines) == 1 else None
        window = str(cum["year"].iloc[0]).removeprefix("cumulative").strip() if len(cum) else ""
        p_head = f"P(> {base})" if base else "P(> its baseline)"
        out.append(f"scenarios, cumulative arrivals {window} (median, 80% interval, {p_head}):")
        w = max(len(str(s)) for s in cum["scenario"]) if len(cum) else 0
        rows = cum.to_dict("records")
        intervals = [f"({_count(r['lower_80'])} to {_count(r['upper_80'])})" for r in rows]
        wi = max(map(len, intervals), default=0)
        for r, iv in zip(rows, intervals, strict=True):
            name = str(r["scenario"])
            if name in ccum.index:
                c = ccum.loc[name]
                p = f"{float(c['prob_greater']):.3f}" + ("" if base else f" vs {c['baseline']}")
            elif name == base:
                p = "baseline"
            else:
                p = "-"
            flag = f"   extrapolated: {r['extrapolated_drivers']}" if bool(r.get("extrapolated")) else ""
            out.append(f"  {name.ljust(w)}  {_count(r['median']):>8}  {iv.ljust(wi)}  {p.ljust(8)}{flag}".rstrip())
        if meta.get("extrapolated"):
            w = meta.get("window")
            where = f"its {w[0]}-{w[-1]} range" if w else "the range it had in the fitted window"
            out.append(f"  (extrapolated: a driver leaves {where}; the model has no data there)")
    out += _sex_lines(run_dir / "forecast_by_sex.csv")
    report = run_dir / "report.html"
    if report.is_file():
        out.append(f"report: {report}")
    else:
        out.append("report: none written (outputs.plots or outputs.fit_checks is off)")
    out.append(f"all outputs: {run_dir}")
    return "\n".join(out)
