"""The grid sampler of ``optimize``: grid neighbours per axis kind, plateaus, exclusive
hypervolume contributions, no point asked twice while unseen ones remain, the front's
neighbours asked, and a study that outgrows its grid still completes its budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import create_trial

from elmoe_dse.explore.front_sampler import GridFrontSampler, contributions
from elmoe_dse.explore.optimize import run_optimize, save_optimize
from tests.explore.test_optimize import tiny

SPACE = {
    "bits": IntDistribution(2, 8),
    "hb": CategoricalDistribution([2, 4, 8, 16]),
    "mode": CategoricalDistribution(["round", "truncate", "lsb"]),
    "x": FloatDistribution(0.0, 1.0, step=0.25),
}


def sampler(**kw: object) -> GridFrontSampler:
    base = optuna.samplers.RandomSampler(seed=0)
    return GridFrontSampler(base, SPACE, seed=0, **kw)  # type: ignore[arg-type]


def test_neighbours_step_numeric_axes_and_swap_names() -> None:
    s = sampler()
    here = {"bits": 2, "hb": 8, "mode": "round", "x": 0.5}
    got = sorted((k, v) for p in s.neighbours(here) for k, v in p.items() if here[k] != v)
    # bits at its low end: one step up only; hb: the adjacent capacities; names: every other
    assert got == sorted(
        [
            ("bits", 3),
            ("hb", 4),
            ("hb", 16),
            ("mode", "lsb"),
            ("mode", "truncate"),
            ("x", 0.25),
            ("x", 0.75),
        ]
    )
    assert all(sum(p[k] != here[k] for k in here) == 1 for p in s.neighbours(here))


def test_a_plateau_steps_beyond_the_values_it_spans() -> None:
    """Members that differ in bits (no effect there) step bits beyond their range only."""
    s = sampler()
    members = [
        {"bits": 3, "hb": 8, "mode": "round", "x": 0.0},
        {"bits": 5, "hb": 8, "mode": "lsb", "x": 0.0},
    ]
    moved = {(k, p[k]) for p in s.class_neighbours(members) for k in p if p[k] != members[0][k]} | {
        (k, p[k]) for p in s.class_neighbours(members) for k in p if p[k] != members[1][k]
    }
    bits = {v for k, v in moved if k == "bits"}
    assert bits >= {2, 6} and 4 not in bits
    assert {v for k, v in moved if k == "mode"} >= {"truncate"}
    assert {v for k, v in moved if k == "hb"} == {4, 16}


def test_exclusive_contributions_of_a_two_point_front() -> None:
    # scaled to the unit square, reference 1.1: each corner point owns 1 x 0.1 alone
    front = np.asarray([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(contributions(front), [0.1, 0.1])
    # a third point in the middle owns its own rectangle and halves the others
    three = np.asarray([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(contributions(three), [0.05, 0.25, 0.05])


def test_the_front_trial_is_an_unseen_neighbour_of_the_front() -> None:
    s = sampler(every=1, startup=2)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=s)
    points = [
        ({"bits": 8, "hb": 16, "mode": "round", "x": 1.0}, [10.0, 1.0]),  # the whole front
        ({"bits": 2, "hb": 2, "mode": "lsb", "x": 0.0}, [1.0, 5.0]),
        ({"bits": 7, "hb": 16, "mode": "round", "x": 1.0}, [9.0, 1.5]),
    ]
    for params, values in points:
        study.add_trial(
            create_trial(params=params, distributions=SPACE, values=values, user_attrs={})
        )
    trial = study.ask()
    asked = {k: trial.suggest_int(k, 2, 8) if k == "bits" else None for k in ["bits"]}
    asked["hb"] = trial.suggest_categorical("hb", [2, 4, 8, 16])
    asked["mode"] = trial.suggest_categorical("mode", ["round", "truncate", "lsb"])
    asked["x"] = trial.suggest_float("x", 0.0, 1.0, step=0.25)
    front = points[0][0]
    assert asked in s.neighbours(front) and asked != points[2][0]


def test_a_move_that_paid_off_is_continued() -> None:
    """bits 4 -> 5 gained (5 dominates 4): bits 6 is the continuation; x, not tried, is none."""
    s = sampler()
    base = {"bits": 5, "hb": 8, "mode": "round", "x": 0.5}
    losses = {
        s.key(base): np.asarray([-10.0, 1.0]),
        s.key({**base, "bits": 4}): np.asarray([-8.0, 1.0]),  # dominated by base
        s.key({**base, "hb": 4}): np.asarray([-11.0, 2.0]),  # a trade-off: no continuation
    }
    seen = set(losses)
    assert s.continuations([base], seen, losses) == [{**base, "bits": 6}]
    assert s.continuations([base], seen | {s.key({**base, "bits": 6})}, losses) == []
    # the front trial takes the continuation over the 7 other unseen neighbours of the front
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
    for key in [s.key(base), s.key({**base, "bits": 4})]:
        params = dict(zip(s.names, key, strict=True))
        values = list(losses[key])
        study.add_trial(create_trial(params=params, distributions=SPACE, values=values))
    done = study.get_trials(deepcopy=False)
    two = {s.key(t.params) for t in done}
    assert all(s.front_neighbour(study, done, two) == {**base, "bits": 6} for _ in range(5))


def test_a_proposal_inside_a_plateau_box_is_predicted_and_skipped() -> None:
    """Two trials with equal objectives at bits 3 and 6 span bits 3..6 (and modes round, lsb):
    bits 4 with lsb lies inside, truncate or bits 7 outside; a single trial spans no box."""
    s = sampler()
    study = optuna.create_study(directions=["minimize", "minimize"])
    rows = [
        ({"bits": 3, "hb": 8, "mode": "round", "x": 0.5}, [1.0, 2.0]),
        ({"bits": 6, "hb": 8, "mode": "lsb", "x": 0.5}, [1.0, 2.0]),
        ({"bits": 2, "hb": 2, "mode": "round", "x": 0.0}, [3.0, 1.0]),
    ]
    for params, values in rows:
        study.add_trial(create_trial(params=params, distributions=SPACE, values=values))
    (box,) = s.plateau_boxes(study.get_trials(deepcopy=False))
    assert box["bits"] == (1, 4) and box["mode"] == {"round", "lsb"} and box["hb"] == (2, 2)
    inside = {"bits": 4, "hb": 8, "mode": "lsb", "x": 0.5}
    assert s.inside(inside, [box])
    for moved in ({"mode": "truncate"}, {"bits": 7}, {"hb": 16}, {"x": 0.75}):
        assert not s.inside({**inside, **moved}, [box])
    # an unseen neighbour of a point inside the box is drawn outside it
    seen = {s.key(p) for p, _ in rows}
    assert all(not s.inside(s.unseen_near(inside, seen, [box]), [box]) for _ in range(10))


def test_no_point_is_asked_twice_while_the_grid_has_unseen_ones(tmp_path: Path) -> None:
    spec = tiny()  # 336 points per study
    result = run_optimize(spec, out_dir=tmp_path, trials=120, seed=1)
    for study in result.studies:
        assert study["distinct_points"] == study["complete_trials"] == 120


@pytest.mark.parametrize("trials", [40])
def test_a_budget_beyond_the_grid_still_completes(tmp_path: Path, trials: int) -> None:
    knobs = {
        "policy": "elastic-sd",
        "batch_size": [1],
        "draft_bits": [2, 3],
        "draft_length": {"start": 1, "stop": 4},
        "hb_capacity_gb": [2, 4],
        "rounding": ["round", "lsb-augmented"],
    }
    result = run_optimize(tiny(knobs=knobs), out_dir=tmp_path, trials=trials, seed=0)
    (study,) = result.studies
    assert study["complete_trials"] == trials
    assert study["distinct_points"] == study["space_points"] == 32  # every point, then repeats
    assert study["hypervolume_fraction_of_grid"] == pytest.approx(1.0)
    save_optimize(result, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["studies"][0]["space_points"] == 32
    assert "32 design points" in record["sweep_suggested"]
    assert "elmoe-dse sweep" in record["sweep_suggested"]
