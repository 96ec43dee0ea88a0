"""``parameterization="log_mu"`` is the same model as the innovation form (issue 9).

Exact tests, no sampling: at random points of the model's parameters the log densities of the
two graphs differ by exactly the change-of-variables Jacobian between innovations and states,
``log|d eps / d z| = -log s0 - (T-1) log sigma``, plus ``log gdp_sd`` per non-centred GDP year
(``e = (g - m) / s`` against the centred ``N(g; m, s)``).  The offsets' own scalings are
constants that PyMC does not add (their density is written on the states directly).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nkdefections import constants as C
from nkdefections.config import DataConfig, ModelConfig
from nkdefections.data import load_data


@pytest.fixture(scope="module")
def data():
    return load_data(DataConfig(history=1))


def _states(rng, d, T):
    """A random point in the model's own coordinates (level, effects, AR(1), GDP, latent states)."""
    return {
        "level": rng.normal(7.3, 0.3),
        "beta": rng.normal(0, 0.2, len(d.drivers)),
        "rho": rng.uniform(0.2, 0.9),
        "sigma": rng.uniform(0.1, 0.5),
        "gdp_mean": rng.normal(1.0, 1.0),
        "gdp_sd": rng.uniform(0.5, 4.0),
        "gdp_true": rng.normal(1.0, 2.0, len(d.gdp_years)),
        "z": rng.normal(0, 0.3, T),
    }


def _fn(model, names):
    """A function of the value variables (a dict) returning the named variables."""
    import pytensor

    outs = model.replace_rvs_by_values([model[n] for n in names])
    f = pytensor.function(model.value_vars, outs, on_unused_input="ignore")
    return lambda point: f(*[point[v.name] for v in model.value_vars])


def _points(s, d, config, log_mu_model, nc_model):
    """The point ``s`` in the innovation form's and in ``log_mu``'s coordinates (see :func:`_point`)."""
    nc, _ = _point(s, d, dataclasses.replace(config, parameterization="noncentered"), nc_model)
    lm, n_nc = _point(s, d, config, log_mu_model)
    return nc, lm, n_nc


def test_log_mu_and_innovation_forms_have_the_same_density(data):
    from nkdefections.model.graph import build_model, design

    config = ModelConfig(signs={})  # the latent and GDP coordinates are what differ; beta as one vector
    assert config.parameterization == "log_mu"  # the default
    nc_config = dataclasses.replace(config, parameterization="noncentered")
    d = design(data, config)
    T = len(d.years)
    lm_model, nc_model = build_model(data, config), build_model(data, nc_config)
    lp_lm, lp_nc = lm_model.compile_logp(), nc_model.compile_logp()
    s0 = config.priors["latent_init"]["sigma"]
    rng = np.random.default_rng(20161231)
    for _ in range(25):
        s = _states(rng, d, T)
        nc, lm, n_nc = _points(s, d, config, lm_model, nc_model)
        jac = -np.log(s0) - (T - 1) * np.log(s["sigma"]) + n_nc * np.log(s["gdp_sd"])
        assert lp_lm(lm) - lp_nc(nc) == pytest.approx(jac, abs=1e-6)  # log densities ~1e3: float rounding
        # and the deterministics agree: the same log mu and latent at the same point
        for a, b in zip(_fn(lm_model, [C.LOG_MU, C.LATENT])(lm), _fn(nc_model, [C.LOG_MU, C.LATENT])(nc), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_a_wrong_jacobian_is_caught(data):
    """The test above can fail: the same identity with sigma's power off by one does not hold."""
    from nkdefections.model.graph import build_model, design

    config = ModelConfig(signs={})  # the latent and GDP coordinates are what differ; beta as one vector
    d = design(data, config)
    T = len(d.years)
    lm_model = build_model(data, config)
    nc_model = build_model(data, dataclasses.replace(config, parameterization="noncentered"))
    s0 = config.priors["latent_init"]["sigma"]
    s = _states(np.random.default_rng(1), d, T)
    nc, lm, n_nc = _points(s, d, config, lm_model, nc_model)
    wrong = -np.log(s0) - T * np.log(s["sigma"]) + n_nc * np.log(s["gdp_sd"])
    assert lm_model.compile_logp()(lm) - nc_model.compile_logp()(nc) != pytest.approx(wrong, abs=1e-3)


def test_evaluation_graph_with_every_year_seen_adds_only_its_unused_innovations(data):
    """All weights 1: the refit graph is the log_mu graph plus N(0, 1) terms for its spare innovations."""
    from scipy import stats

    from nkdefections.model.graph import build_model, design

    config = ModelConfig(signs={})  # the latent and GDP coordinates are what differ; beta as one vector
    d = design(data, config)
    T = len(d.years)
    lm_model = build_model(data, config)
    ev_model = build_model(data, config, evaluation=True)
    nc_model = build_model(data, dataclasses.replace(config, parameterization="noncentered"))
    rng = np.random.default_rng(3)
    s = _states(rng, d, T)
    _, lm, _ = _points(s, d, config, lm_model, nc_model)
    eps = rng.normal(size=T)
    ev = {**lm, C.LATENT_INNOVATION: eps}
    assert {v.name for v in ev_model.value_vars} == set(ev)
    diff = ev_model.compile_logp()(ev) - lm_model.compile_logp()(lm)
    assert diff == pytest.approx(stats.norm.logpdf(eps).sum(), abs=1e-6)


def test_masked_year_takes_the_innovation_form(data):
    """A masked year's latent is rho z_{t-1} + sigma eps_t, whatever its log_mu offset says."""
    from nkdefections.model.graph import build_model, design

    config = ModelConfig(signs={})  # the latent and GDP coordinates are what differ; beta as one vector
    d = design(data, config)
    T = len(d.years)
    ev_model = build_model(data, config, evaluation=True)
    w = np.ones(T)
    w[-3:] = 0.0  # a fit on 1999..2013
    rng = np.random.default_rng(4)
    point = {v.name: rng.normal(size=np.shape(ev_model.initial_point()[v.name])) for v in ev_model.value_vars}
    with ev_model:
        import pymc as pm

        pm.set_data({"obs_weight": w})
    f = _fn(ev_model, [C.LATENT, C.RHO, C.SIGMA_LATENT])
    z, rho, sigma = f(point)
    eps = point[C.LATENT_INNOVATION]
    for t in range(T - 3, T):
        assert z[t] == pytest.approx(rho * z[t - 1] + sigma * eps[t], abs=1e-12)
    point2 = dict(point)
    point2[C.LOG_MU_OFFSET] = point[C.LOG_MU_OFFSET] + 5.0  # moves the seen years only
    z2, _, _ = f(point2)
    assert not np.allclose(z2[: T - 3], z[: T - 3])


def test_log_normal_cdf_matches_scipy_with_a_finite_gradient():
    """The known-sign term's log Phi: right values, and a gradient with no NaN far in the lower tail."""
    import pytensor
    import pytensor.tensor as pt
    from scipy import stats

    from nkdefections.model.graph import log_normal_cdf

    z = pt.dvector("z")
    f = log_normal_cdf(z)
    fn = pytensor.function([z], [f, pytensor.grad(f.sum(), z)])
    grid = np.concatenate([np.linspace(-60, -1.0001, 40), [-1.0], np.linspace(-0.999, 12, 40)])
    val, grad = fn(grid)
    np.testing.assert_allclose(val, stats.norm.logcdf(grid), rtol=1e-9, atol=1e-12)
    # d/dz log Phi = phi / Phi, computed stably in logs
    np.testing.assert_allclose(grad, np.exp(stats.norm.logpdf(grid) - stats.norm.logcdf(grid)), rtol=1e-7, atol=1e-12)


def test_refit_gradient_is_finite_at_a_point_where_pymcs_logcdf_gave_nan():
    """Regression: the refit of SBC simulation 0 at a point of one of its leapfrog trajectories.

    There PyMC's normal logcdf in the known-sign term (weighted 0, as in SBC) gave a NaN
    gradient in gdp_mean, gdp_sd and the 2005 growth on this machine, and NUTS flagged
    1247 of 2000 draws divergent; with :func:`log_normal_cdf` none are.  (Whether the old
    form's NaN appears depends on floating-point rounding; this test checks the fix.)
    """
    import json
    from pathlib import Path

    from nkdefections.evaluate import sbc
    from nkdefections.model.refit import Refitter

    r = Refitter(sampler=sbc.SBC_SAMPLER)
    sim = sbc.simulate_prior(1, sbc.SEED, config=r.config, data=r.data).isel({sbc.SIMULATION: 0})
    x = sbc.sbc_inputs(r, sim)
    assert float(x["gdp_sign_weight"]) == 0.0
    model = r.model
    for n in r.data_names():  # the refit's data, swapped in as the engine swaps it
        model[n].set_value(np.asarray(x[n], dtype=model[n].dtype))
    # the gradient through numba, the backend the engine compiles the log density with
    dlogp = model.compile_dlogp(mode="NUMBA")
    point = json.loads((Path(__file__).parent / "nan_gradient_point.json").read_text())["point"]
    grad = dlogp({v.name: np.asarray(point[v.name]) for v in model.value_vars})
    assert np.isfinite(grad).all()


def _point(s, d, config, model):
    """The point ``s`` in the coordinates of ``model`` (any parameterization and GDP block)."""
    p = config.priors
    z, rho, sigma, g = s["z"], s["rho"], s["sigma"], s["gdp_true"]
    point = {
        C.LEVEL: np.asarray(s["level"]),
        C.BETA: s["beta"],
        "rho_logodds__": np.asarray(np.log(rho / (1 - rho))),
        "sigma_latent_log__": np.asarray(np.log(sigma)),
        C.GDP_MEAN: np.asarray(s["gdp_mean"]),
        "gdp_sd_log__": np.asarray(np.log(s["gdp_sd"])),
    }
    if config.parameterization == "log_mu":
        X = d.X_fixed.copy()
        X[:, d.economy_col] = g[d.economy_idx]
        eta = s["level"] - d.center @ s["beta"] + X @ s["beta"] + z
        yy = d.y.astype(float) + 0.5
        point[C.LOG_MU_OFFSET] = (eta - np.log(yy)) * np.sqrt(yy)
    else:
        m0, s0 = p["latent_init"]["mu"], p["latent_init"]["sigma"]
        point[C.LATENT_INNOVATION] = np.concatenate([[(z[0] - m0) / s0], (z[1:] - rho * z[:-1]) / sigma])
    form = config.gdp_form
    pinned = ~np.isnan(d.gdp_all) if form == "pinned" else np.zeros(len(g), dtype=bool)  # centred: none
    if form == "centered":
        point[C.GDP_TRUE] = g
    else:
        if pinned.any():
            point[C.GDP_PINNED_OFFSET] = (g[pinned] - d.gdp_all[pinned]) / d.gdp_sd_all[pinned]
        point[C.GDP_INNOVATION] = (g[~pinned] - s["gdp_mean"]) / s["gdp_sd"]
    assert set(point) == {v.name for v in model.value_vars}
    return point, int((~pinned).sum()) if form != "centered" else 0


@pytest.mark.parametrize("parameterization", ["log_mu", "noncentered"])
def test_each_parameterization_is_the_same_model(data, parameterization):
    """``log_mu`` (pinned GDP block) against the centred reference: only the Jacobians differ."""
    from nkdefections.model.graph import build_model, design, ranked_parameters

    ref_config = ModelConfig(signs={}, parameterization="noncentered")
    config = dataclasses.replace(ref_config, parameterization=parameterization)
    d = design(data, config)
    T = len(d.years)
    ref, model = build_model(data, ref_config), build_model(data, config)
    lp_ref, lp = ref.compile_logp(), model.compile_logp()
    s0 = config.priors["latent_init"]["sigma"]
    rng = np.random.default_rng(7)
    for _ in range(10):
        s = _states(rng, d, T)
        x_ref, _ = _point(s, d, ref_config, ref)
        x, n_gdp_nc = _point(s, d, config, model)
        jac = n_gdp_nc * np.log(s["gdp_sd"])
        if parameterization == "log_mu":
            jac += -np.log(s0) - (T - 1) * np.log(s["sigma"])
        assert lp(x) - lp_ref(x_ref) == pytest.approx(jac, abs=1e-6)
        for a, b in zip(_fn(model, [C.GDP_TRUE, C.LOG_MU])(x), _fn(ref, [C.GDP_TRUE, C.LOG_MU])(x_ref), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    # the gate and SBC read the same GDP quantity in every form
    ranked = ranked_parameters(model, config)
    assert C.GDP_TRUE in ranked and len(ranked) == len(set(ranked))
    assert not {C.GDP_PINNED_OFFSET, C.GDP_INNOVATION} & set(ranked_parameters(model, config))


@pytest.mark.pure
def test_each_parameterization_has_its_own_gdp_form():
    assert ModelConfig().gdp_form == "pinned"
    assert ModelConfig(parameterization="noncentered").gdp_form == "centered"
    assert ModelConfig(latent="none").gdp_form == "centered"


@pytest.mark.parametrize("masked", [[0, 5, 6, 11], [3], [15, 16, 17]])
def test_masked_latent_solves_the_recursion_wherever_the_masked_years_are(data, masked):
    """The one-product solution of the latent recursion is the year-by-year recursion.

    Masked years (the first year, runs in the middle as in leave-one-out refits, the end as in a
    backtest origin) follow ``rho z_{t-1} + sigma eps_t`` (the first: ``m0 + s0 eps_0``); seen
    years are pinned by their counts and do not move with the innovations.
    """
    import pymc as pm

    from nkdefections.model.graph import build_model

    config = ModelConfig(signs={})
    ev_model = build_model(data, config, evaluation=True)
    T = len(ev_model.coords[C.YEAR])
    w = np.ones(T)
    w[masked] = 0.0
    with ev_model:
        pm.set_data({"obs_weight": w})
    rng = np.random.default_rng(11)
    point = {v.name: rng.normal(size=np.shape(ev_model.initial_point()[v.name])) for v in ev_model.value_vars}
    f = _fn(ev_model, [C.LATENT, C.RHO, C.SIGMA_LATENT])
    z, rho, sigma = f(point)
    eps = point[C.LATENT_INNOVATION]
    init = config.priors["latent_init"]
    for t in masked:
        expected = init["mu"] + init["sigma"] * eps[0] if t == 0 else rho * z[t - 1] + sigma * eps[t]
        assert z[t] == pytest.approx(expected, abs=1e-12)
    moved = dict(point)
    moved[C.LATENT_INNOVATION] = eps + 1.0
    z2, _, _ = f(moved)
    seen = np.flatnonzero(w == 1.0)
    np.testing.assert_allclose(z2[seen], z[seen], atol=1e-12)
    assert not np.allclose(z2[masked], z[masked])
