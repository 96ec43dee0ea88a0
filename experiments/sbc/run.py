"""Is the inference correct? Simulation-based calibration and parameter recovery (issue 4, part 4).

* **SBC**: ``--sims`` data sets (arrivals and GDP figures) drawn from the default model's
  prior, each refitted with the compiled refit engine; ranks of every free parameter
  element and a few derived quantities among L = 99 thinned posterior draws; uniformity
  tests per quantity; ECDF-difference plots with simultaneous 95% bands and rank histograms.
* **Negative controls** (``--controls``): the same simulations refitted with a deliberately
  wrong procedure, to show that the check has power: ``sign`` keeps the known-sign
  constraint on 2005 GDP growth, which the simulations do not obey; ``recentred`` lets
  the refit engine centre the economy driver on the simulated GDP figures (a
  data-dependent prior).
* **Recovery**: ``--series`` synthetic series with known effects on the real drivers.

Everything small is written to ``results/`` next to this file (tables, figures,
``run_info.json`` with settings and run times); raw per-simulation output to
``results/raw/`` (git-ignored).  ``results.md`` is spliced into ``README.md``.

    .venv/bin/python experiments/sbc/run.py --sims 100     # SBC, 2 x 50 control refits, recovery
    .venv/bin/python experiments/sbc/run.py --sims 100 --controls ""       # without the negative controls
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.config import SamplerConfig
from nkdefections.evaluate import sbc
from nkdefections.provenance import provenance
from nkdefections.report import sbc_plots
from nkdefections.report.blocks import markdown_table, splice

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
RAW = OUT / "raw"


# -- negative controls: wrong refit procedures ---------------------------------------------------


def sign_on(refitter, sim):
    """Known-sign constraint on 2005 GDP kept (the simulations ignore it): a wrong posterior for gdp_true[2005]."""
    x = sbc.sbc_inputs(refitter, sim)
    if "gdp_sign_weight" in x:
        x["gdp_sign_weight"] = np.asarray(1.0)
    return x


def recentred(refitter, sim):
    """The refit engine's own centring (economy on the simulated GDP mean): a data-dependent prior."""
    return refitter.inputs(arrivals=sim[C.ARRIVALS].values, gdp=sim[C.GDP_GROWTH].values, sign_constraint=False)


CONTROLS = {"sign": sign_on, "recentred": recentred}


# -- formatting --------------------------------------------------------------------------------


def fmt(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind != "f":
            continue
        if c.startswith("p_") or c.startswith("min_p"):
            out[c] = [f"{v:.4f}" for v in out[c]]
        elif c in ("expected_by_chance",):
            out[c] = [f"{v:.2f}" for v in out[c]]
        else:
            out[c] = [f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}" for v in out[c]]
    return out


def main_quantities(columns: list[str]) -> list[str]:
    return [q for q in columns if sbc.group_of(q) not in (C.GDP_TRUE, "latent_innovation")]


def vector_quantities(columns: list[str]) -> list[str]:
    return [q for q in columns if sbc.group_of(q) in (C.GDP_TRUE, "latent_innovation")]


def fits_overview(fits: pd.DataFrame) -> pd.DataFrame:
    """Counts of refits by convergence outcome."""
    n = len(fits)
    rows = [
        ("refits", n),
        ("passed the gate (R-hat <= 1.01, bulk/tail ESS >= 400, no divergence)", int(fits["passed"].sum())),
        ("with >= 1 divergence", int((fits["divergences"] > 0).sum())),
        ("with > 10 divergences", int((fits["divergences"] > 10).sum())),
        ("divergences in total", int(fits["divergences"].sum())),
        ("max R-hat > 1.01", int((fits["max_rhat"] > 1.01).sum())),
        ("max R-hat > 1.05", int((fits["max_rhat"] > 1.05).sum())),
        ("min bulk ESS < 400", int((fits["min_ess_bulk"] < 400).sum())),
        ("min tail ESS < 400", int((fits["min_ess_tail"] < 400).sum())),
        ("median seconds per refit", float(fits["seconds"].median())),
    ]
    return pd.DataFrame(rows, columns=["refits", "count"])


def run_sbc_part(refitter, args, lines: list[str], info: dict) -> sbc.SBCResult:
    t0 = time.perf_counter()

    def progress(i, row):
        if (i + 1) % 10 == 0 or not row["passed"]:
            print(
                f"  sbc {i + 1}/{args.sims}: passed={row['passed']} div={row['divergences']} "
                f"rhat={row['max_rhat']:.3f} ess={row['min_ess_bulk']:.0f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    res = sbc.run_sbc(args.sims, args.seed, refitter=refitter, thin_to=args.thin, progress=progress)
    info["sbc"] = res.settings
    summ = res.summary()
    contr = res.contraction()
    summ = summ.merge(contr, on="quantity")
    groups = sbc.group_summary(summ)
    n_passed = int(res.fits["passed"].sum())
    conv_cols = ["quantity", "n", "p_ecdf", "flag", "flag_bonferroni"]
    conv = res.summary(converged_only=True)[conv_cols] if n_passed >= 10 else pd.DataFrame(columns=conv_cols)
    m = len(summ)

    res.ranks.to_csv(OUT / "sbc_ranks.csv")
    res.fits.to_csv(OUT / "sbc_fits.csv")
    summ.to_csv(OUT / "sbc_summary.csv", index=False)
    groups.to_csv(OUT / "sbc_groups.csv", index=False)
    conv.to_csv(OUT / "sbc_summary_converged_only.csv", index=False)
    res.posterior.to_csv(RAW / "sbc_posterior.csv.gz", index=False)
    res.simulations.to_netcdf(RAW / "sbc_simulations.nc", engine="h5netcdf")

    cols = list(res.ranks.columns)
    main, vec = main_quantities(cols), vector_quantities(cols)
    sbc_plots.plot_ecdf(res.ranks[main], res.L, OUT / "sbc_ecdf_main.png", summary=summ)
    sbc_plots.plot_ecdf(res.ranks[vec], res.L, OUT / "sbc_ecdf_vectors.png", summary=summ, ncols=7)
    sbc_plots.plot_rank_hist(res.ranks[main], res.L, OUT / "sbc_hist_main.png")
    sbc_plots.plot_rank_hist(res.ranks[vec], res.L, OUT / "sbc_hist_vectors.png", ncols=7)
    sbc_plots.plot_ecdf_pit_arviz(res.ranks[main], res.L, OUT / "sbc_ecdf_arviz_pot_c.png")

    flagged = summ[summ["flag"]]
    flagged_list = ", ".join(f"{q} (p={p:.4f})" for q, p in zip(flagged["quantity"], flagged["p_ecdf"], strict=True))
    conv_flag = conv[conv["flag"]]
    seconds = time.perf_counter() - t0
    info["sbc_seconds"] = round(seconds, 1)
    lines += [
        f"## SBC: {args.sims} simulations from the prior, L = {res.L} thinned draws per rank",
        "",
        f"{m} quantities ({(summ['kind'] == 'free').sum()} free parameter elements, "
        f"{(summ['kind'] == 'derived').sum()} derived). At level 0.05 a calibrated procedure raises "
        f"about {0.05 * m:.1f} false alarms; the Bonferroni threshold is p < {0.05 / m:.5f} "
        "(family-wise 5%). Test: the ECDF (simultaneous band) test; chi-square on 10 rank bins and "
        "ArviZ's pot_c on randomised PIT values are cross-checks.",
        "",
        f"**Flagged at 0.05: {len(flagged)} of {m}** ({flagged_list or '-'}); "
        f"**after Bonferroni: {int(summ['flag_bonferroni'].sum())}**.",
        "",
        "### By parameter group",
        "",
        markdown_table(fmt(groups)),
        "",
        "### Per quantity (scalars, effects and derived quantities)",
        "",
        markdown_table(
            fmt(
                summ[summ["quantity"].isin(main)][
                    [
                        "quantity",
                        "kind",
                        "mean_rank",
                        "sd_rank",
                        "p_ecdf",
                        "p_chisq",
                        "p_pot_c",
                        "flag",
                        "mean_z",
                        "sd_z",
                        "contraction",
                    ]
                ]
            )
        ),
        "",
        "mean_rank / sd_rank: of r / L (uniform: 0.5 / 0.29). mean_z / sd_z: of the posterior "
        "z-score (mean - truth) / sd over simulations (calibrated: about 0 / 1). contraction: "
        "1 - mean posterior variance / prior variance. Every element of gdp_true and "
        "latent_innovation is in `sbc_summary.csv`.",
        "",
        "### Refit convergence (every refit is kept in the ranks)",
        "",
        markdown_table(fmt(fits_overview(res.fits))),
        "",
        (
            f"On the {n_passed} refits that passed the gate alone (a sensitivity check, not the verdict): "
            f"flagged at 0.05: {len(conv_flag)} ({', '.join(conv_flag['quantity']) or '-'}), "
            f"after Bonferroni: {int(conv['flag_bonferroni'].sum())}."
            if n_passed >= 10
            else f"Only {n_passed} refits passed the gate: no separate test on the converged subset."
        ),
        "",
        "![ECDF differences](results/sbc_ecdf_main.png)",
        "",
        "![ECDF differences, vector elements](results/sbc_ecdf_vectors.png)",
        "",
        "![Rank histograms](results/sbc_hist_main.png)",
        "",
        f"SBC run time {seconds:.0f} s ({res.fits['seconds'].sum():.0f} s of it sampling).",
        "",
    ]
    return res


def run_control(refitter, name: str, args, lines: list[str], info: dict) -> None:
    t0 = time.perf_counter()
    res = sbc.run_sbc(args.control_sims, args.seed, refitter=refitter, thin_to=args.thin, make_inputs=CONTROLS[name])
    summ = res.summary().merge(res.contraction(), on="quantity")
    summ.to_csv(OUT / f"control_{name}_summary.csv", index=False)
    res.fits.to_csv(OUT / f"control_{name}_fits.csv")
    worst = summ.nsmallest(10, "p_ecdf")
    sbc_plots.plot_ecdf(
        res.ranks[list(worst["quantity"])],
        res.L,
        OUT / f"control_{name}_ecdf.png",
        summary=summ,
        title=f"Negative control '{name}': the 10 quantities with the smallest p-values",
    )
    seconds = time.perf_counter() - t0
    info[f"control_{name}_seconds"] = round(seconds, 1)
    lines += [
        f"## Negative control `{name}`: {CONTROLS[name].__doc__}",
        "",
        f"Same {args.control_sims} simulations and seeds. Flagged at 0.05: {int(summ['flag'].sum())} of "
        f"{len(summ)}; after Bonferroni: {int(summ['flag_bonferroni'].sum())}; refits passing the gate: "
        f"{int(res.fits['passed'].sum())}. The 10 smallest p-values:",
        "",
        markdown_table(fmt(worst[["quantity", "mean_rank", "sd_rank", "p_ecdf", "flag_bonferroni", "mean_z", "sd_z"]])),
        "",
        f"Run time {seconds:.0f} s.",
        "",
    ]


def run_recovery_part(refitter, args, lines: list[str], info: dict) -> None:
    t0 = time.perf_counter()
    rec = sbc.run_recovery(args.series, args.seed, refitter=refitter)
    info["recovery"] = rec.settings
    summ = rec.summary()
    summ.to_csv(OUT / "recovery_summary.csv", index=False)
    rec.table.to_csv(OUT / "recovery_series.csv", index=False)
    rec.fits.to_csv(OUT / "recovery_fits.csv")
    sbc_plots.plot_recovery(rec, OUT / "recovery.png")
    seconds = time.perf_counter() - t0
    info["recovery_seconds"] = round(seconds, 1)
    t = rec.settings["truth"]
    lines += [
        f"## Recovery: {args.series} synthetic series with known parameters",
        "",
        f"log mu_t = {t['intercept']} + x_t . beta + z_t on the real drivers, beta = {t['beta']}, "
        f"z_1999 = {t['latent_start']}, AR(1) rho = {t['rho']}, sigma = {t['sigma_latent']}; "
        "fitted with the real GDP figures and the known-sign constraint, as the real series is. "
        "Intervals are equal-tailed; `latent` pools all 18 years of every series.",
        "",
        markdown_table(fmt(summ)),
        "",
        markdown_table(fmt(fits_overview(rec.fits))),
        "",
        "![Recovery](results/recovery.png)",
        "",
        f"Recovery run time {seconds:.0f} s.",
        "",
    ]


def splice_readme(body: str) -> None:
    """Copy the results into README.md between the results markers (no hand-typed numbers)."""
    readme = HERE / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        readme.write_text(splice(text, "results", body.replace("\n## ", "\n### ")), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100, help="SBC simulations (0: skip SBC)")
    parser.add_argument("--series", type=int, default=20, help="recovery series (0: skip recovery)")
    parser.add_argument(
        "--controls", default="sign,recentred", help='comma-separated negative controls (sign, recentred; "" for none)'
    )
    parser.add_argument("--control-sims", type=int, default=50, help="simulations per negative control")
    parser.add_argument("--seed", type=int, default=sbc.SEED)
    parser.add_argument("--draws", type=int, default=sbc.SBC_SAMPLER.draws)
    parser.add_argument("--tune", type=int, default=sbc.SBC_SAMPLER.tune)
    parser.add_argument("--chains", type=int, default=sbc.SBC_SAMPLER.chains)
    parser.add_argument("--thin", type=int, default=sbc.THIN_TO, help="L, posterior draws per rank")
    parser.add_argument(
        "--out", type=Path, default=None, help="write here instead of results/ (no README splice; the model card)"
    )
    args = parser.parse_args(argv)
    global OUT, RAW
    if args.out is not None:
        OUT, RAW = args.out, args.out / "raw"
    logging.basicConfig(level=logging.WARNING)
    controls = [c for c in args.controls.split(",") if c]
    unknown = set(controls) - set(CONTROLS)
    if unknown:
        parser.error(f"unknown controls {sorted(unknown)}; choose from {sorted(CONTROLS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    RAW.mkdir(exist_ok=True)

    from nkdefections.model.refit import Refitter

    t0 = time.perf_counter()
    sampler = SamplerConfig(draws=args.draws, tune=args.tune, chains=args.chains, progressbar=False)
    refitter = Refitter(sampler=sampler)
    info: dict = {
        "command": " ".join(["experiments/sbc/run.py", *(argv or sys.argv[1:])]),
        "sampler": sampler.to_dict(),
    }
    lines = [
        "# SBC and recovery (written by experiments/sbc/run.py)",
        "",
        f"Sampler: numpyro NUTS via the refit engine, {sampler.chains} chains x {sampler.draws} draws after "
        f"{sampler.tune} tuning, target_accept {sampler.target_accept}; seed {args.seed}.",
        "",
    ]
    if args.sims:
        run_sbc_part(refitter, args, lines, info)
    for name in controls:
        run_control(refitter, name, args, lines, info)
    if args.series:
        run_recovery_part(refitter, args, lines, info)
    info["compile_seconds"] = refitter.compile_seconds
    info["total_seconds"] = round(time.perf_counter() - t0, 1)
    info["provenance"] = provenance()
    lines.append(f"Total run time {info['total_seconds']:.0f} s (compile {refitter.compile_seconds or 0:.1f} s).")
    (OUT / "run_info.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    text = "\n".join(lines) + "\n"
    (OUT / "results.md").write_text(text.replace("](results/", "]("), encoding="utf-8")
    if args.out is None:
        splice_readme(text.split("\n", 1)[1].strip())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
