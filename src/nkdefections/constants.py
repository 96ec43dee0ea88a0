"""Names that are part of the public API.

Dimension and variable names used in every Dataset, posterior file and CSV that
nkdefections writes.  Change them only with a deprecation: downstream notebooks
select by these strings.  ``tests/test_schema.py`` locks them.
"""

from __future__ import annotations

# Dimensions
YEAR = "year"
DRIVER = "driver"
GDP_YEAR = "gdp_year"
CHAIN = "chain"
DRAW = "draw"
PARTIAL = "partial"
SCENARIO = "scenario"
YEAR_FUTURE = "year_future"

# The three named drivers, in the order of the ``driver`` coordinate.
BORDER = "border"
ECONOMY = "economy"
SANCTIONS = "sanctions"
DRIVERS: tuple[str, ...] = (BORDER, ECONOMY, SANCTIONS)

#: A scenario lever, and an optional observed series (``data.files.border_open``): the fraction of the
#: border left open (1 = as in 1999-2016).  Its effect, ``CLOSURE_ELASTICITY * log(open)``, has the prior
#: ``nkdefections.priors.CLOSURE_ELASTICITY``: assumed when no fitted year is closed, estimated when one is.
BORDER_OPEN = "border_open"
FEMALE = "female"  # female arrivals per year where published (data), and by-sex forecasts
MALE = "male"
# the female share block of model.by_sex (nkdefections.model.optional)
SHARE_LEVEL = "share_level"  # logit share at the drivers' means
SHARE_BETA = "share_beta"  # driver effects on the logit share (dims driver)
SHARE_CLOSURE = "share_closure"  # effect of log(open fraction) on the logit share (observed closures only)
RHO_SHARE = "rho_share"
SIGMA_SHARE = "sigma_share"
SHARE_LATENT = "share_latent"  # AR(1) deviation of the logit share (dims year)
SHARE_INTERCEPT = "share_intercept"  # logit share at driver values 0 (what the forecast carries forward)
FEMALE_SHARE = "female_share"  # the share per year (fit) or per draw, scenario and year (forecast)
FEMALE_OBSERVED = "female_observed"  # the likelihood of the published female counts
CLOSURE_ELASTICITY = "closure_elasticity"  # free parameter when the fitted years carry a closure

#: Last year of the start-up of the series: arrivals grew from 148 (1999) to 1,138 (2002) as the
#: post-famine routes through China formed.  The random-walk baselines take their spread from
#: later changes; the local-level model gives these years their own drift.
STARTUP_END = 2002

# Variables of the loaded data set (nkdefections.data.load_data)
ARRIVALS = "arrivals"
BORDER_INDEX = "border_index"
SANCTIONS_INDEX = "sanctions_index"
#: What is in force at the end of each year (every event dated in or before it at full weight):
#: the value a year with no new events would take, and what ``hold`` holds.
BORDER_IN_FORCE = "border_in_force"
SANCTIONS_IN_FORCE = "sanctions_in_force"
#: Driver -> (its pro-rated yearly index, its year-end in-force value) in the data set.
EVENT_INDICES: dict[str, tuple[str, str]] = {
    "border": (BORDER_INDEX, BORDER_IN_FORCE),
    "sanctions": (SANCTIONS_INDEX, SANCTIONS_IN_FORCE),
}
GDP_GROWTH = "gdp_growth"
GDP_VINTAGE = "gdp_vintage"
GDP_KNOWN_SIGN = "gdp_known_sign"
GRAIN = "grain_production"
TRADE = "china_trade"

# Model variables (nkdefections.model.build_model)
OBSERVED = "arrivals"  # the observed count variable of the PyMC model
MU = "mu"  # expected arrivals per year
LOG_MU = "log_mu"
INTERCEPT = "intercept"  # log level at zero drivers (deterministic: level - center . beta)
LEVEL = "level"  # long-run log level at the drivers' means over the data window (free parameter)
BETA = "beta"  # log-rate effect per unit of each driver, dim DRIVER
EFFECT_PCT = "effect_pct"  # 100 * (exp(beta) - 1), dim DRIVER
LATENT = "latent"  # latent log-rate deviation, dim YEAR
RHO = "rho"
SIGMA_LATENT = "sigma_latent"
LATENT_INIT = "latent_init"
LATENT_INNOVATION = "latent_innovation"  # standardised latent innovations (innovation form, masked years)
LOG_MU_OFFSET = "log_mu_offset"  # free variable of parameterization="log_mu": log mu in units of its count's s.e.
GDP_PINNED_OFFSET = "gdp_pinned_offset"  # log_mu form: a pinned GDP year in units of its measurement s.d.
GDP_INNOVATION = "gdp_innovation"  # log_mu form: the other GDP years, non-centred
NU = "nu"  # degrees of freedom of Student-t latent innovations
STARTUP_DRIFT = "startup_drift"  # mean latent change in the start-up years (random walk with startup_drift)
OVERDISPERSION = "overdispersion"  # 1 / sqrt(phi) of the negative binomial
GDP_TRUE = "gdp_true"  # latent true GDP growth, dim GDP_YEAR
GDP_MEAN = "gdp_mean"
GDP_SD = "gdp_sd"
#: forecast: each driver's term on the log scale (beta f(x), widened): what attribution splits
DRIVER_TERMS = "driver_terms"
DRIVER_VALUES = "driver_values"  # lag-aligned driver values used in mu, dims (YEAR, DRIVER)

# File names inside a run folder
POSTERIOR_FILE = "posterior.nc"
SUMMARY_FILE = "parameter_summary.csv"
DIAGNOSTICS_FILE = "convergence.csv"
PPC_FILE = "posterior_predictive_check.csv"
PRIOR_PLOT = "prior_predictive.png"
POSTERIOR_PLOT = "posterior_predictive.png"
SCENARIOS_PLOT = "scenarios.png"  # every scenario's median and 80% band: the report's first chart
REPORT_FILE = "report.md"
CONFIG_FILE = "config.yaml"
DRIVERS_FILE = "drivers.csv"

# File names inside a scoring's folder (nkdefections-score)
SCORES_FILE = "scores.csv"
SCORECARD_FILE = "scorecard.md"
SCORECARD_HTML = "scorecard.html"
SCORE_PLOT = "score_fan.png"
SCORE_META = "score.json"

# The ``year`` label of thresholds, contrasts and summaries over the cumulative window
CUMULATIVE = "cumulative"

# Column names of intervals and quantiles in every table (forecast summaries, checks, nowcasts, scores)


def interval_columns(level: int | float) -> tuple[str, str]:
    """The two columns of an equal-tailed ``level`` percent interval: ``lower_80``, ``upper_80``."""
    return f"lower_{level:g}", f"upper_{level:g}"


def quantile_label(p: float) -> str:
    """Column label of a quantile: 0.05 -> q05_pct, 0.95 -> q95_pct, 0.005 -> q0.5_pct."""
    text = f"{p * 100:.6g}"
    return f"q{text.zfill(2) if '.' not in text else text}_pct"
