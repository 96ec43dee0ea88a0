"""Is the inference correct? Simulation-based calibration and parameter recovery.

* **SBC**: ``sims`` data sets (arrivals and GDP figures) drawn from the default model's
  prior, each refitted with the compiled refit engine; ranks of every free parameter
  element and a few derived quantities among L = 99 thinned posterior draws; uniformity
  tests per quantity; ECDF-difference plots with simultaneous 95% bands and rank histograms.
* **Negative controls** (``controls``): the same simulations refitted with a deliberately
  wrong procedure, to show that the check has power: ``sign`` keeps the known-sign
  constraint on 2005 GDP growth, which the simulations do not obey; ``recentred`` lets
  the refit engine centre the economy driver on the simulated GDP figures (a
  data-dependent prior).
* **Recovery**: ``series`` synthetic series with known effects on the real drivers.

:func:`run_sbc_study` writes everything small into ``out`` (tables, figures,
``run_info.json`` with settings and run times, ``results.md``) and raw per-simulation
output into ``out/raw``.  Command: ``nkdefections-evidence sbc``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nkdefections import constants as C
from nkdefections.config import SamplerConfig
from nkdefections.errors import ConfigError
from nkdefections.evaluate import sbc
from nkdefections.provenance import provenance
from nkdefections.report import sbc_plots
from nkdefections.report.blocks import markdown_table, splice

# -- negative controls: wrong refit procedures ---------------------------------------------------


def sign_on(refitter: Any, sim: Any) -> dict[str, Any]:
    """Known-sign constraint on 2005 GDP kept (the simulations ignore it): a wrong posterior for gdp_true[2005]."""
    x = sbc.sbc_inputs(refitter, sim)
    if "gdp_sign_weight" in x:
        x["gdp_sign_weight"] = np.asarray(1.0)
    return x


def recentred(refitter: Any, sim: Any) -> dict[str, Any]:
    """The refit engine's own centring (economy on the simulated GDP mean): a data-dependent prior."""
    return refitter.inputs(arrivals=sim[C.ARRIVALS].values, gdp=sim[C.GDP_GROWTH].values, sign_constraint=False)


CONTROLS = {"sign": sign_on, "recentred": recentred}


@dataclass(frozen=True)
class SBCSettings:
    """What the study runs: simulation counts, controls, seed and the refit sampler."""

    sims: int = 100
    series: int = 20
    controls: tuple[str, ...] = ("sign", "recentred")
    control_sims: int = 50
    seed: int = sbc.SEED
    draws: int = sbc.SBC_SAMPLER.draws
    tune: int = sbc.SBC_SAMPLER.tune
    chains: int = sbc.SBC_SAMPLER.chains
    thin: int = sbc.THIN_TO
    command: str = field(default="nkdefections.evidence.sbc.run_sbc_study (called from Python)")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.controls) - set(CONTROLS))
        if unknown:
            raise ConfigError(f"sbc controls: unknown {unknown}; choose from {sorted(CONTROLS)}.")
        for key in ("sims", "series", "control_sims"):
            if getattr(self, key) < 0:
                raise ConfigError(f"sbc {key}: {getattr(self, key)} must be >= 0.")


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
    return [q for q in columns if sbc.group_of(q) not in (C.GDP_TRUE, C.LATENT, C.LATENT_INNOVATION)]


def vector_quantities(columns: list[str]) -> list[str]:
    return [q for q in columns if sbc.group_of(q) in (C.GDP_TRUE, C.LATENT, C.LATENT_INNOVATION)]


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


# -- the SBC part ------------------------------------------------------------------------------


def _write_sbc(res: sbc.SBCResult, out: Path, summ: pd.DataFrame, groups: pd.DataFrame, conv: pd.DataFrame) -> None:
    raw = out / "raw"
    res.ranks.to_csv(out / "sbc_ranks.csv")
    res.fits.to_csv(out / "sbc_fits.csv")
    summ.to_csv(out / "sbc_summary.csv", index=False)
    groups.to_csv(out / "sbc_groups.csv", index=False)
    conv.to_csv(out / "sbc_summary_converged_only.csv", index=False)
    res.posterior.to_csv(raw / "sbc_posterior.csv.gz", index=False)
    res.simulations.to_netcdf(raw / "sbc_simulations.nc", engine="h5netcdf")
    cols = list(res.ranks.columns)
    main, vec = main_quantities(cols), vector_quantities(cols)
    sbc_plots.plot_ecdf(res.ranks[main], res.L, out / "sbc_ecdf_main.png", summary=summ)
    sbc_plots.plot_ecdf(res.ranks[vec], res.L, out / "sbc_ecdf_vectors.png", summary=summ, ncols=7)
    sbc_plots.plot_rank_hist(res.ranks[main], res.L, out / "sbc_hist_main.png")
    sbc_plots.plot_rank_hist(res.ranks[vec], res.L, out / "sbc_hist_vectors.png", ncols=7)
    sbc_plots.plot_ecdf_pit_arviz(res.ranks[main], res.L, out / "sbc_ecdf_arviz_pot_c.png")


_QUANTITY_COLUMNS = [
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


def _sbc_lines(
    res: sbc.SBCResult, sims: int, summ: pd.DataFrame, groups: pd.DataFrame, conv: pd.DataFrame, seconds: float
) -> list[str]:
    m = len(summ)
    n_passed = int(res.fits["passed"].sum())
    main = main_quantities(list(res.ranks.columns))
    flagged = summ[summ["flag"]]
    flagged_list = ", ".join(f"{q} (p={p:.4f})" for q, p in zip(flagged["quantity"], flagged["p_ecdf"], strict=True))
    conv_flag = conv[conv["flag"]]
    return [
        f"## SBC: {sims} simulations from the prior, L = {res.L} thinned draws per rank",
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
        markdown_table(fmt(summ[summ["quantity"].isin(main)][_QUANTITY_COLUMNS])),
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


def run_sbc_part(refitter: Any, s: SBCSettings, out: Path, lines: list[str], info: dict[str, Any]) -> sbc.SBCResult:
    t0 = time.perf_counter()

    done = [0]

    def progress(i: int, row: Any) -> None:  # in completion order (simulations run on worker processes)
        done[0] += 1
        if done[0] % 10 == 0 or not row["passed"]:
            print(
                f"  sbc {done[0]}/{s.sims} (simulation {i}): passed={row['passed']} div={row['divergences']} "
                f"rhat={row['max_rhat']:.3f} ess={row['min_ess_bulk']:.0f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    res = sbc.run_sbc(s.sims, s.seed, refitter=refitter, thin_to=s.thin, progress=progress)
    info["sbc"] = res.settings
    summ = res.summary().merge(res.contraction(), on="quantity")
    groups = sbc.group_summary(summ)
    conv_cols = ["quantity", "n", "p_ecdf", "flag", "flag_bonferroni"]
    n_passed = int(res.fits["passed"].sum())
    conv = res.summary(converged_only=True)[conv_cols] if n_passed >= 10 else pd.DataFrame(columns=conv_cols)
    _write_sbc(res, out, summ, groups, conv)
    seconds = time.perf_counter() - t0
    info["sbc_seconds"] = round(seconds, 1)
    lines += _sbc_lines(res, s.sims, summ, groups, conv, seconds)
    return res


# -- negative controls and recovery ------------------------------------------------------------


def run_control(refitter: Any, name: str, s: SBCSettings, out: Path, lines: list[str], info: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    res = sbc.run_sbc(s.control_sims, s.seed, refitter=refitter, thin_to=s.thin, make_inputs=CONTROLS[name])
    summ = res.summary().merge(res.contraction(), on="quantity")
    summ.to_csv(out / f"control_{name}_summary.csv", index=False)
    res.fits.to_csv(out / f"control_{name}_fits.csv")
    worst = summ.nsmallest(10, "p_ecdf")
    sbc_plots.plot_ecdf(
        res.ranks[list(worst["quantity"])],
        res.L,
        out / f"control_{name}_ecdf.png",
        summary=summ,
        title=f"Negative control '{name}': the 10 quantities with the smallest p-values",
    )
    seconds = time.perf_counter() - t0
    info[f"control_{name}_seconds"] = round(seconds, 1)
    lines += [
        f"## Negative control `{name}`: {CONTROLS[name].__doc__}",
        "",
        f"Same {s.control_sims} simulations and seeds. Flagged at 0.05: {int(summ['flag'].sum())} of "
        f"{len(summ)}; after Bonferroni: {int(summ['flag_bonferroni'].sum())}; refits passing the gate: "
        f"{int(res.fits['passed'].sum())}. The 10 smallest p-values:",
        "",
        markdown_table(fmt(worst[["quantity", "mean_rank", "sd_rank", "p_ecdf", "flag_bonferroni", "mean_z", "sd_z"]])),
        "",
        f"Run time {seconds:.0f} s.",
        "",
    ]


def run_recovery_part(refitter: Any, s: SBCSettings, out: Path, lines: list[str], info: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    rec = sbc.run_recovery(s.series, s.seed, refitter=refitter)
    info["recovery"] = rec.settings
    summ = rec.summary()
    summ.to_csv(out / "recovery_summary.csv", index=False)
    rec.table.to_csv(out / "recovery_series.csv", index=False)
    rec.fits.to_csv(out / "recovery_fits.csv")
    sbc_plots.plot_recovery(rec, out / "recovery.png")
    seconds = time.perf_counter() - t0
    info["recovery_seconds"] = round(seconds, 1)
    t = rec.settings["truth"]
    lines += [
        f"## Recovery: {s.series} synthetic series with known parameters",
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


def splice_readme(readme: Path, text: str) -> None:
    """Copy the results (``text`` without its title) into ``readme`` between the results markers."""
    if readme.is_file():
        body = text.split("\n", 1)[1].strip()
        old = readme.read_text(encoding="utf-8")
        readme.write_text(splice(old, "results", body.replace("\n## ", "\n### ")), encoding="utf-8")


def run_sbc_study(out: Path, settings: SBCSettings = SBCSettings(), *, readme: Path | None = None) -> str:
    """Run the study into ``out`` (and ``out/raw``); return the text of ``results.md``.

    ``readme``: an experiment README whose results markers get the results (none by default).
    """
    from nkdefections.model.refit import Refitter

    s = settings
    out = Path(out)
    (out / "raw").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sampler = SamplerConfig(draws=s.draws, tune=s.tune, chains=s.chains, progressbar=False)
    refitter = Refitter(sampler=sampler)
    info: dict[str, Any] = {"command": s.command, "sampler": sampler.to_dict()}
    lines = [
        "# SBC and recovery (written by nkdefections-evidence sbc)",
        "",
        f"Sampler: the fit engine (nutpie NUTS, low-rank mass matrix, no retry), {sampler.chains} chains x "
        f"{sampler.draws} draws after "
        f"{sampler.tune} tuning, target_accept {sampler.target_accept}; seed {s.seed}.",
        "",
    ]
    if s.sims:
        run_sbc_part(refitter, s, out, lines, info)
    for name in s.controls:
        run_control(refitter, name, s, out, lines, info)
    if s.series:
        run_recovery_part(refitter, s, out, lines, info)
    info["compile_seconds"] = refitter.compile_seconds
    info["total_seconds"] = round(time.perf_counter() - t0, 1)
    info["provenance"] = provenance()
    lines.append(f"Total run time {info['total_seconds']:.0f} s (compile {refitter.compile_seconds or 0:.1f} s).")
    (out / "run_info.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text.replace("](results/", "]("), encoding="utf-8")
    if readme is not None:
        splice_readme(readme, text)
    return text
