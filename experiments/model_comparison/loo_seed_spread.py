"""How much the default's exact-refit LOO moves with the seed alone.

Usage (from the repository root, about 4 minutes on 2 cores)::

    python experiments/model_comparison/loo_seed_spread.py [--overwrite]   # writes results/loo_seed_spread.md

The comparison (``nkdefections-evidence compare``) reports ``elpd_loo_exact`` for one seed
(2017). This script repeats exactly that computation for the default model, at the
comparison's sampler settings (4 chains x 500 draws after 500 tuning), at seeds 2017, 3017
and 4017, and tabulates the total and every year's term, so the Monte Carlo spread of the
column can be read beside the differences between models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from nkdefections.evaluate.comparison import psis_loo
from nkdefections.evidence.steps import COMPARE_SAMPLER
from nkdefections.model.refit import Refitter
from nkdefections.report.blocks import markdown_table

SEEDS = (2017, 3017, 4017)
OUT = Path(__file__).resolve().parent / "results" / "loo_seed_spread.md"


def main() -> None:
    p = argparse.ArgumentParser(description="The default's exact-refit LOO at three seeds.")
    p.add_argument("--overwrite", action="store_true", help=f"replace an existing {OUT.name}")
    if OUT.exists() and not p.parse_args().overwrite:
        sys.exit(f"{OUT} exists; pass --overwrite to replace it (nothing was run).")
    r = Refitter(sampler=COMPARE_SAMPLER)
    terms, totals = {}, {}
    for seed in SEEDS:
        full = r.fit(r.inputs(), seed=seed)
        loo = psis_loo(full, r.design.y, r.config.likelihood, refitter=r, seed=seed)
        terms[f"seed {seed}"] = loo["pointwise_loo_exact"]
        totals[f"seed {seed}"] = loo["elpd_loo_exact"]
        print(seed, round(loo["elpd_loo_exact"], 1), flush=True)
    table = pd.DataFrame(terms, index=pd.Index(r.years.astype(int), name="year"))
    table["range"] = table.max(axis=1) - table.min(axis=1)
    total = pd.DataFrame([{**totals, "range": max(totals.values()) - min(totals.values())}], index=["total"])
    text = (
        "# The default's exact-refit LOO at three seeds\n\n"
        "`python experiments/model_comparison/loo_seed_spread.py` (default model, the comparison's sampler "
        f"settings {COMPARE_SAMPLER.chains} x {COMPARE_SAMPLER.draws} draws after {COMPARE_SAMPLER.tune} "
        "tuning). Each year's term is log p(y_t | y_-t) from a refit without year t where PSIS's Pareto k "
        "exceeds 0.7, else the PSIS term.\n\n"
        + markdown_table(pd.concat([total, table]).rename_axis("year").reset_index(), floatfmt="{:.2f}")
        + f"\n\nStandard deviation of the total over the seeds: {np.std(list(totals.values()), ddof=1):.1f}.\n"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
