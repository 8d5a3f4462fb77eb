"""Prior draws, the likelihood, the cut posterior, the assumption interface, the claims text and a
tiny ``calibrate`` end to end."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from elmoe_dse.calibration import Ensemble, load_ensemble, median_calibration, validate
from elmoe_dse.claims import FROM_PRIORS, NOT_REPRODUCED, UNDER_TENSION, claims_markdown, classify
from elmoe_dse.cli.main import app
from elmoe_dse.columns import SYSTEM
from elmoe_dse.errors import KnobError, SpecError
from elmoe_dse.explore import alternatives as alt
from elmoe_dse.explore.ensemble import (
    Outcome,
    Task,
    band,
    evaluate_task,
    informed_systems,
    latin_hypercube,
    paper_priors,
    posterior_draws,
    prior_draws,
    tied_source,
)
from elmoe_dse.explore.posterior import (
    ACCEPTANCE_MAX_FRAC,
    SIGMA_LOG,
    log_likelihood,
    make_problem,
    observations,
    warm_start,
)
from elmoe_dse.explore.reproduce import PAPER_TARGETS, load_inputs, reproduce, target_values
from elmoe_dse.specs._base import RangeSpec

PERFECT = dict(PAPER_TARGETS)


def test_latin_hypercube_puts_one_point_in_each_stratum() -> None:
    u = latin_hypercube(20, 3, seed=5)
    for j in range(3):
        assert sorted(np.floor(u[:, j] * 20).astype(int)) == list(range(20))
    assert np.array_equal(u, latin_hypercube(20, 3, seed=5))


def test_prior_draws_follow_each_prior_and_ties_share_a_quantile() -> None:
    priors = paper_priors()
    draws = prior_draws(priors, 200, seed=1)
    for key, rng in priors.items():
        x = np.asarray([d[key] for d in draws])
        assert np.all((x >= rng.min) & (x <= rng.max)), key
        # a Latin hypercube puts half the draws below the prior median, to one stratum
        assert abs(np.mean(rng.cdf(x) < 0.5) - 0.5) <= 1 / 200 + 1e-12, key
    tied = [k for k in priors if tied_source(k, priors)]
    assert tied, "the xPU compute energy is shared"
    for key in tied:
        src = tied_source(key, priors)
        assert src is not None
        for d in draws[:5]:
            assert float(priors[key].cdf(d[key])) == pytest.approx(float(priors[src].cdf(d[src])))


def test_the_likelihood_is_gaussian_on_the_log_scale() -> None:
    obs = observations()
    assert log_likelihood(Outcome(PERFECT, 0.8), obs) == 0.0
    off = {**PERFECT, "speedup_vs_xpu_mean": PAPER_TARGETS["speedup_vs_xpu_mean"] * 1.1}
    expected = -0.5 * (math.log(1.1) / SIGMA_LOG["speedup_vs_xpu_mean"]) ** 2
    assert log_likelihood(Outcome(off, 0.8), obs) == pytest.approx(expected)
    assert SIGMA_LOG["speedup_vs_xpu_max"] > SIGMA_LOG["speedup_vs_xpu_mean"]


def test_acceptance_above_the_papers_span_has_zero_posterior() -> None:
    obs = observations()
    assert log_likelihood(Outcome(PERFECT, ACCEPTANCE_MAX_FRAC), obs) == 0.0
    assert log_likelihood(Outcome(PERFECT, ACCEPTANCE_MAX_FRAC + 1e-6), obs) == -math.inf
    assert log_likelihood(Outcome({**PERFECT, "energy_vs_xpu_max": math.nan}, 0.5), obs) == (
        -math.inf
    )


def test_the_cut_posterior_pairs_fixed_informed_values_with_fresh_prior_draws() -> None:
    post = load_ensemble().posterior()
    priors = paper_priors()
    draws = posterior_draws(post, priors, 16, seed=3)
    informed = set(post.informed)
    posterior_rows = {tuple(d) for d in post.draws}
    for d in draws:
        assert tuple(d[k] for k in post.informed) in posterior_rows
    others = [k for k in priors if k not in informed]
    again = prior_draws(priors, 16, 3, others)
    for d, o in zip(draws, again, strict=True):
        assert {k: d[k] for k in others} == o
    spread = np.std([d[others[0]] for d in draws])
    assert spread > 0


def test_the_shipped_median_draw_is_a_posterior_draw_with_prior_medians_elsewhere() -> None:
    ens = load_ensemble()
    post = ens.posterior()
    cal = median_calibration(ens)
    priors = paper_priors()
    # The ensemble was sampled on today's priors: it sets every parameter.
    assert set(cal.parameters) == set(priors)
    for key, value in post.values(post.median_draw).items():
        assert cal.parameters[key].value == value
    for key in post.fixed:
        assert cal.parameters[key].value == pytest.approx(float(priors[key].ppf(0.5)))


KEY = "platform.elmoe3d-8g.static_power.logic_die_w_per_pe"


def _flag_only(monkeypatch: pytest.MonkeyPatch, keys: tuple[str, ...]) -> dict[str, RangeSpec]:
    """The paper priors with ``paper_informed`` true on ``keys`` only."""
    priors = {
        k: r.model_copy(update={"paper_informed": k in keys}) for k, r in paper_priors().items()
    }
    for module in ("ensemble", "posterior"):
        monkeypatch.setattr(f"elmoe_dse.explore.{module}.paper_priors", lambda *a: priors)
    return priors


def test_make_problem_reads_the_paper_informed_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    priors = _flag_only(monkeypatch, (KEY,))
    problem = make_problem(None, {})
    assert problem.groups == (KEY,) and problem.informed == (KEY,)
    assert KEY not in problem.fixed and len(problem.fixed) == len(priors) - 1
    with pytest.raises(SpecError, match="matches no free parameter"):
        make_problem(["platform.nothing.*"], {})


def test_a_prior_declared_for_every_model_is_one_dimension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = tuple(k for k in paper_priors() if k.startswith("dataset.gsm8k.models."))
    keys = tuple(k for k in keys if k.endswith(".alpha_max"))
    _flag_only(monkeypatch, keys)
    problem = make_problem(None, {})
    assert problem.groups == ("dataset.gsm8k.models.*.alpha_max",)
    assert problem.informed == keys


def test_a_group_moves_its_members_to_one_prior_quantile() -> None:
    problem = make_problem(["dataset.*.models.*.alpha_max"], {})
    assert len(problem.groups) == 1 and len(problem.informed) == 16
    priors = paper_priors()
    values = problem.informed_values(np.asarray([0.3]))
    for key, v in values.items():
        assert float(priors[key].cdf(v)) == pytest.approx(0.3), key


class HbRole:
    """A test table: HB-xPU's HB holds an LRU expert cache (default) or nothing."""

    def alternatives(self) -> dict[str, tuple[str, ...]]:
        return {"hb_role": ("lru", "none")}

    def overrides(self, choice: Mapping[str, str], system: str) -> alt.SystemOverrides:
        if system == "hb-xpu" and choice["hb_role"] == "none":
            return alt.SystemOverrides(knobs={"policy": "ar"})
        return alt.SystemOverrides()


def test_an_assumption_choice_changes_only_the_systems_it_names() -> None:
    table = HbRole()
    assert alt.parse_assume([], table) == {"hb_role": "lru"}
    choice = alt.parse_assume(["hb_role=none"], table)
    assert alt.label(choice, table) == "hb_role=none"
    assert alt.one_at_a_time(table) == [{"hb_role": "none"}]
    with pytest.raises(KnobError, match="unknown alternative 'ssd'"):
        alt.parse_assume(["hb_role=ssd"], table)
    kw = {"models": ("gpt-oss-20b",), "datasets": ("mt-bench",), "table": table}
    base = reproduce(None, choice={"hb_role": "lru"}, **kw).systems  # type: ignore[arg-type]
    none = reproduce(None, choice=choice, **kw).systems  # type: ignore[arg-type]
    hb = base["meta.system"] == "hb-xpu"
    assert (none.loc[hb, "metric.hit_rate_frac"].fillna(0.0) == 0).all()
    assert (base.loc[hb, "metric.hit_rate_frac"] > 0).all()
    cols = ["metric.throughput_tok_per_s", "metric.energy_per_token_j"]
    assert base.loc[~hb, cols].equals(none.loc[~hb, cols])


def test_the_adapter_reads_a_module_table() -> None:
    import types

    module = types.ModuleType("fake")
    module.ASSUMPTIONS = {"overlap": ("operator", "pass")}  # type: ignore[attr-defined]
    module.system_overrides = lambda choice, system: ({}, {"k": choice["overlap"]})  # type: ignore[attr-defined]
    table = alt.ModuleAssumptions(module)
    assert table.alternatives() == {"overlap": ("operator", "pass")}
    assert table.overrides({"overlap": "pass"}, "xpu").knobs == {"k": "pass"}


def test_band_quantiles_and_share_within() -> None:
    b = band(np.asarray([*np.linspace(1.0, 3.0, 101), np.nan]), paper=2.01)
    assert (b["p5"], b["p50"], b["p95"]) == pytest.approx((1.1, 2.0, 2.9))
    assert b["n"] == 101
    # within 10 % of 2.01: [1.809, 2.211] holds 1.82 ... 2.20, 20 of the 101 values; the NaN
    # counts as outside
    assert b["p_within_10pct"] == pytest.approx(20 / 102)


def _target(paper: float, prior: tuple[float, float], post: tuple[float, float]) -> dict:
    def b(lo: float, hi: float) -> dict:
        return {"p5": lo, "p50": (lo + hi) / 2, "p95": hi, "n": 10}

    return {"paper": paper, "prior": b(*prior), "posterior": b(*post), "p_within_10pct_prior": 0}


def test_claims_classify_each_target_plainly() -> None:
    targets = {
        "a": _target(2.0, (1.5, 2.5), (1.8, 2.2)),
        "b": _target(2.0, (0.5, 1.0), (1.5, 2.5)),
        "c": _target(9.0, (0.5, 1.0), (1.0, 2.0)),
    }
    assert [classify(t) for t in targets.values()] == [FROM_PRIORS, UNDER_TENSION, NOT_REPRODUCED]
    bands = {
        "selected": "default",
        "alternatives": {
            "default": {"targets": targets},
            "x=y": {"targets": {**targets, "c": _target(9.0, (5.0, 10.0), (5.0, 10.0))}},
        },
        "tension": [],
    }
    text = "\n".join(claims_markdown(bands))
    assert "- Reproduced from priors: a." in text
    assert "- Only under tension: b." in text
    assert "- Not reproduced: c." in text
    assert "Under x=y: c (not reproduced -> reproduced from priors)" in text


def test_a_tiny_calibrate_runs_end_to_end(tmp_path: Path) -> None:
    """Few walkers and steps on one model: the ensemble file validates, records its sampler and
    command, and the same seed gives the same file."""
    args = [
        "calibrate", "--walkers", "4", "--steps", "3", "--burn-in", "1", "--keep", "8",
        "--model", "gpt-oss-20b", "--informed", KEY,
        "--processes", "1", "--date", "2026-01-01",
    ]  # fmt: skip
    texts = []
    for name in ("a.json", "b.json"):
        out = tmp_path / name
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.stderr
        texts.append(out.read_text().replace(name, "X"))
    assert texts[0] == texts[1]
    ens = validate(Ensemble, json.loads(texts[0]))
    post = ens.posterior()
    assert post.informed == [KEY]
    assert post.walkers == 4 and post.steps == 3 and post.burn_in == 1
    assert 0 < len(post.draws) <= 8 and len(post.log_prob) == len(post.draws)
    assert all(math.isfinite(v) for v in post.log_prob)
    assert "elmoe-dse calibrate" in post.command and "--walkers 4" in post.command
    assert "emcee" in ens.sampler and "cut" in ens.cut
    rng: RangeSpec = paper_priors(("gpt-oss-20b",))[KEY]
    assert all(rng.min <= d[0] <= rng.max for d in post.draws)


def test_calibrate_refuses_when_nothing_is_informed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _flag_only(monkeypatch, ())
    result = CliRunner().invoke(app, ["calibrate", "--out", str(tmp_path / "e.json")])
    assert result.exit_code == 2
    assert "paper_informed" in result.stderr


def test_load_inputs_of_a_prior_draw_stays_inside_every_support() -> None:
    from elmoe_dse.calibration import draw_calibration
    from elmoe_dse.specs._base import get_number

    priors = paper_priors()
    for d in prior_draws(priors, 3, seed=11):
        inputs = load_inputs(draw_calibration(d, priors, "test"))
        for key, value in d.items():
            kind, _, rest = key.partition(".")
            name, _, path = rest.partition(".")
            if kind == "platform":
                assert get_number(inputs.platforms[name], path) == value, key


def test_point_bands_stack_equals_one_draw_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """``explain --bands`` evaluates its draws in one stacked call: the same bands bit for bit
    as one evaluation per draw (its fallback when the draws' models differ)."""
    from elmoe_dse.explore import ensemble as ens

    point = {
        "model": "qwen3-30b-a3b",
        "platform": "elmoe3d-8g",
        "dataset": "mt-bench",
        "knobs": {"batch_size": 4, "policy": "elmoe3d"},
        "sets": [],
    }
    stacked = ens.point_bands(point, None, 6, seed=3)
    calls = []

    def one_by_one(runs: list[tuple[object, ...]]) -> list[object]:
        calls.append(len(runs))
        from elmoe_dse.evaluator import evaluate

        return [evaluate(*r[:4], quality=r[4]) for r in runs]  # type: ignore[arg-type]

    monkeypatch.setattr(ens, "_point_steps", one_by_one)
    assert ens.point_bands(point, None, 6, seed=3) == stacked and calls == [6]
    assert stacked["throughput_tok_per_s"]["p5"] < stacked["throughput_tok_per_s"]["p95"]


def test_explain_bands_gives_a_band_on_one_point() -> None:
    args = ["explain", "-m", "glm-4.7-flash", "-p", "elmoe3d-8g", "-b", "4", "--json"]
    result = CliRunner().invoke(app, [*args, "--bands", "--draws", "8"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    tput = data["bands"]["throughput_tok_per_s"]
    assert tput["n"] == 8 and tput["p5"] <= tput["p50"] <= tput["p95"]
    assert tput["p5"] < tput["p95"]  # the draws move the point
    plain = CliRunner().invoke(app, args)
    assert "bands" not in json.loads(plain.stdout)


class _Chain:
    """An emcee-like chain of shape (steps, walkers, dims) with emcee's thinning rule."""

    def __init__(self, steps: int, walkers: int, dims: int) -> None:
        self.c = np.random.default_rng(0).random((steps, walkers, dims))

    def get_chain(self, discard: int, thin: int, flat: bool) -> np.ndarray:
        x = self.c[discard + thin - 1 :: thin]
        return x.reshape(-1, x.shape[-1])

    def get_log_prob(self, discard: int, thin: int, flat: bool) -> np.ndarray:
        return self.c.sum(-1)[discard + thin - 1 :: thin].reshape(-1)


@pytest.mark.parametrize(
    ("steps", "walkers", "burn_in", "keep", "n", "thin"),
    [(120, 16, 40, 256, 256, 5), (2, 18, 1, 16, 16, 1), (10, 4, 2, 1000, 32, 1)],
)
def test_the_kept_draws_never_vanish(
    steps: int, walkers: int, burn_in: int, keep: int, n: int, thin: int
) -> None:
    from elmoe_dse.explore.posterior import Settings, _kept

    u, lp, got = _kept(
        _Chain(steps, walkers, 3), walkers, Settings(walkers, steps, burn_in, keep, 0)
    )
    assert (len(u), len(lp), got) == (n, n, thin)


def test_a_warm_start_puts_the_walkers_on_the_earlier_posterior_draws() -> None:
    post = load_ensemble().posterior()
    problem = make_problem(None, dict(post.assumptions))
    start = warm_start(post, problem, 18)
    assert len(start) == 18 and all(0.0 < q < 1.0 for row in start for q in row)
    first = problem.informed_values(np.asarray(start[0]))
    for key, value in post.values(0).items():
        assert first[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    last = problem.informed_values(np.asarray(start[-1]))
    assert last == pytest.approx(post.values(len(post.draws) - 1), rel=1e-9)
    with pytest.raises(SpecError, match="fewer than"):
        warm_start(post, problem, len(post.draws) + 2)
    other = make_problem([post.groups[0]], dict(post.assumptions))
    with pytest.raises(SpecError, match="other dimensions"):
        warm_start(post, other, 2)


def test_a_posterior_draw_shares_the_rows_its_informed_parameters_do_not_change() -> None:
    """The bands evaluate a posterior draw only on the systems its informed parameters change
    and take the other rows from its prior draw (the same values there): the targets equal a
    full evaluation's."""
    post = load_ensemble().posterior()
    priors = paper_priors()
    choice = alt.defaults(alt.assumption_table())
    base = prior_draws(priors, 1, seed=5)
    values = posterior_draws(post, priors, 1, 0, base)[0]
    assert all(values[k] == base[0][k] for k in priors if k not in post.informed)
    informed = informed_systems(post.informed)
    assert "elmoe3d" in informed and "hb-xpu" not in informed and "xpu" not in informed
    prior = evaluate_task(Task(base[0], choice, keep_rows=True))
    full = evaluate_task(Task(values, choice, keep_rows=True))
    part = evaluate_task(Task(values, choice, systems=informed))
    assert {r[SYSTEM] for r in part.rows} == set(informed)
    shared = [r for r in prior.rows if r[SYSTEM] not in informed]
    same = [r for r in full.rows if r[SYSTEM] not in informed]
    assert shared and repr(shared) == repr(same)  # bit for bit (repr: NaN equals NaN)
    merged = target_values(shared + list(part.rows))
    assert merged == pytest.approx(full.targets, rel=1e-12)


def test_keys_outside_the_platform_and_acceptance_fields_change_every_system() -> None:
    assert informed_systems(["platform.xpu.static_power_w"]) == ("xpu",)
    assert set(informed_systems(["acceptance.round_4bit_quality_frac"])) == {
        "elmoe3d",
        "elastic-sd",
        "eagle-sd",
    }
    every = informed_systems(["dataset.mt-bench.locality.batch_locality_scale"])
    assert "hb-xpu" in every and len(every) == 8
