"""The NaN gradient behind most SBC divergences until issue 9's third session (a follow-up to ``run.py``).

Refits SBC simulation 0 (seed 20161231, the SBC's first simulation) twice at the SBC
sampler settings (the engine has no retry since issue 18), so that each number is one ``log_mu`` fit:

1. with PyMC's ``pm.logcdf(Normal)`` in the known-sign term of 2005 GDP (the code before
   the fix; the term is weighted 0 in SBC, yet its gradient is evaluated);
2. with :func:`nkdefections.model.graph.log_normal_cdf`, the same values with a gradient
   that is finite everywhere.

and counts the divergent draws of each.  (The NaN itself was found by integrating
leapfrog trajectories from such a fit's draws: on them the gradient in gdp_mean, gdp_sd
and the 2005 growth turned NaN where that growth was about -4.2 pp, z ~ -8.5.)
Writes ``results/nan_gradient.md``.

    .venv/bin/python experiments/sbc/nan_gradient.py     # about 1 minute
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"


def run(variant: str) -> dict[str, object]:
    import pymc as pm

    import nkdefections.model.graph as graph
    from nkdefections.evaluate import sbc
    from nkdefections.model.refit import Refitter

    safe = graph.log_normal_cdf
    if variant == "pymc_logcdf":
        graph.log_normal_cdf = lambda z: pm.logcdf(pm.Normal.dist(0.0, 1.0), z)
    try:
        r = Refitter(sampler=sbc.SBC_SAMPLER)
    finally:
        graph.log_normal_cdf = safe
    sim = sbc.simulate_prior(1, sbc.SEED, config=r.config, data=r.data).isel({sbc.SIMULATION: 0})
    x = sbc.sbc_inputs(r, sim)
    fit = r.fit(x, seed=sbc.SEED)
    div = int(fit.idata.sample_stats["diverging"].values.sum())
    return {
        "variant": variant,
        "divergent draws": div,
        "draws": int(fit.idata.sample_stats["diverging"].size),
        "passed": fit.convergence.passed,
        "seconds": round(fit.seconds, 1),
    }


def main() -> int:
    t0 = time.perf_counter()
    rows = [run("pymc_logcdf"), run("log_normal_cdf")]
    import pandas as pd

    from nkdefections.report.blocks import markdown_table

    text = (
        "# The known-sign term's NaN gradient (written by experiments/sbc/nan_gradient.py)\n\n"
        "SBC simulation 0 (seed 20161231), refitted in `log_mu` at the SBC sampler settings, ladder off.\n\n"
        + markdown_table(pd.DataFrame(rows))
        + f"\n\nRun time {time.perf_counter() - t0:.0f} s.\n"
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "nan_gradient.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
