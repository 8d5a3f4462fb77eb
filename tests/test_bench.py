"""``python -m elmoe_dse.bench``'s machinery (no timing is asserted): its arguments, the baseline
checkout in a temporary git worktree (or ``git archive``) removed afterwards, the interleaved
runs, the identical-results check of two parquet tables, and the ratio formatting."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elmoe_dse import bench
from elmoe_dse.bench import (
    PREVIOUS_RELEASE,
    SECTIONS,
    Baseline,
    BenchError,
    Tree,
    amdahl_line,
    baseline_tree,
    best,
    cli_code,
    compare_tables,
    difference,
    fmt_ratio,
    identity_line,
    interleave,
    parse_args,
    ratio,
    same_values,
)


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A tiny git repository: ``a.txt`` = "one" at the first commit, "two" at HEAD."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "a.txt").write_text("one\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-q", "-m", "first")
    (root / "a.txt").write_text("two\n")
    git(root, "commit", "-q", "-am", "second")
    return root


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------


def test_defaults_run_every_section_against_the_previous_release() -> None:
    args = parse_args([])
    assert args.against == PREVIOUS_RELEASE == "ee584da"
    assert args.sections == tuple(SECTIONS)
    assert args.repeats == bench.DEFAULT_REPEATS
    assert (args.trials, args.seeds) == (bench.OPTIMIZE_TRIALS, bench.OPTIMIZE_SEEDS)


def test_only_keeps_the_bench_order_and_none_means_no_baseline() -> None:
    args = parse_args(["--only", "sweep, startup", "--against", "None", "--repeats", "2"])
    assert args.sections == ("startup", "sweep")
    assert args.against is None
    assert args.repeats == 2
    other = parse_args(["--against", "abc123", "--trials", "20", "--seeds", "3,4"])
    assert (other.against, other.trials, other.seeds) == ("abc123", 20, (3, 4))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "nope"], "unknown section 'nope'"),
        (["--repeats", "0"], "at least 1"),
        (["--seeds", "a,b"], "comma-separated integers"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The baseline checkout
# ----------------------------------------------------------------------------------------------


def test_baseline_worktree_is_created_at_the_revision_and_removed(repo: Path) -> None:
    with baseline_tree("HEAD~1", repo) as baseline:
        assert baseline.tree is not None
        assert baseline.method == "git worktree"
        root = baseline.tree.root
        assert (root / "a.txt").read_text() == "one\n"
        assert str(root) in git(repo, "worktree", "list")
    assert not root.exists()
    assert not root.parent.exists()  # the temporary folder too
    assert str(root) not in git(repo, "worktree", "list")
    assert (repo / "a.txt").read_text() == "two\n"  # the checkout itself is untouched


def test_baseline_by_git_archive_when_no_worktree(repo: Path) -> None:
    with baseline_tree("HEAD~1", repo, methods=("archive",)) as baseline:
        assert baseline.tree is not None
        assert baseline.method == "git archive"
        root = baseline.tree.root
        assert (root / "a.txt").read_text() == "one\n"
    assert not root.exists()
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_baseline_runs_on_this_checkouts_posterior_unless_asked(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    posterior = repo / "post.json"
    posterior.write_text('{"draw": 1}')
    git(repo, "add", "post.json")
    git(repo, "commit", "-q", "-m", "posterior")
    posterior.write_text('{"draw": 2}')  # re-sampled here, not committed
    monkeypatch.setattr(bench, "POSTERIOR_FILES", ("post.json", "absent.json"))
    with baseline_tree("HEAD", repo) as baseline:
        assert baseline.tree is not None and baseline.overlaid == ("post.json",)
        assert (baseline.tree.root / "post.json").read_text() == '{"draw": 2}'
        assert (baseline.tree.root / "a.txt").read_text() == "two\n"  # code untouched
    with baseline_tree("HEAD", repo, own_posterior=True) as own:
        assert own.tree is not None and own.overlaid == ()
        assert (own.tree.root / "post.json").read_text() == '{"draw": 1}'
    with baseline_tree("HEAD~1", repo) as older:  # no posterior there: nothing copied
        assert older.tree is not None and older.overlaid == ()
        assert not (older.tree.root / "post.json").exists()
    assert parse_args(["--baseline-own-posterior"]).baseline_own_posterior
    assert not parse_args([]).baseline_own_posterior


def test_no_baseline_says_why(repo: Path, tmp_path: Path) -> None:
    with baseline_tree(None, repo) as none:
        assert none.tree is None and none.reason == "--against none"
    with baseline_tree("no-such-rev", repo) as bad:
        assert bad.tree is None and "'no-such-rev' is not a commit" in bad.reason
    plain = tmp_path / "plain"
    plain.mkdir()
    with baseline_tree("HEAD", plain) as outside:
        assert outside.tree is None and "is not a git checkout" in outside.reason


def test_versus_clause_without_baseline_prints_no_ratio(tmp_path: Path) -> None:
    b = bench.Bench(Tree("current", tmp_path), Baseline(None, reason="--against none"), tmp_path)
    assert b.trees == [b.current]
    assert b.versus({}, "1.0 s", 2.0) == "; no baseline (--against none)"
    with_base = bench.Bench(
        Tree("current", tmp_path), Baseline("abc", Tree("abc", tmp_path), "git worktree"), tmp_path
    )
    assert with_base.versus({}, "1.0 s", 2.0, " (wall)") == "; abc: 1.0 s, ratio 2.00x (wall)"
    assert with_base.versus({"abc": "exit 2: boom"}, "1.0 s", 2.0) == "; abc: failed (exit 2: boom)"


def test_cli_code_runs_the_trees_console_script(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[project.scripts]\nelmoe-dse = "pkg.entry:run"\n'
    )
    assert "from pkg.entry import run; sys.exit(run())" in cli_code(tmp_path)
    assert "from elmoe_dse.cli.main import main" in cli_code(tmp_path / "missing")


# ----------------------------------------------------------------------------------------------
# Interleaving, best run, ratios
# ----------------------------------------------------------------------------------------------


def test_interleave_alternates_the_order_and_drops_a_failing_tree(tmp_path: Path) -> None:
    a, c = Tree("current", tmp_path), Tree("base", tmp_path)
    order: list[str] = []

    def measure(tree: Tree) -> dict[str, float]:
        order.append(tree.name)
        if tree.name == "base" and order.count("base") == 2:
            raise BenchError("exit 1: broken")
        return {"wall_s": float(len(order))}

    values, errors = interleave([a, c], measure, 3)
    assert order == ["current", "base", "base", "current", "current"]
    assert [v["wall_s"] for v in values["current"]] == [1.0, 4.0, 5.0]
    assert errors == {"base": "exit 1: broken"}
    assert best(values["current"]) == {"wall_s": 1.0}
    assert best([]) is None


def test_ratio_is_none_when_a_side_is_missing() -> None:
    assert ratio(None, 2.0) is None
    assert ratio(2.0, None) is None
    assert ratio(3.0, 0.0) is None
    assert ratio(3.0, 2.0) == pytest.approx(1.5)
    assert ratio(1.0, 4.0, lower_is_better=True) == pytest.approx(4.0)  # 4 s then, 1 s now
    assert fmt_ratio(None) == "n/a"
    assert fmt_ratio(ratio(3.0, 2.0)) == "1.50x"


# ----------------------------------------------------------------------------------------------
# The identical-results check
# ----------------------------------------------------------------------------------------------


def table(**overrides: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "model": pd.Categorical(["a", "b", "a"]),
            "metric.x": np.array([1.0, np.nan, 3.0]),
            "knob.k": np.array([1, 2, 3], dtype=np.int64),
        }
    )
    for name, value in overrides.items():
        frame[name] = value
    return frame


def test_equal_tables_are_identical_nan_equal_to_nan(tmp_path: Path) -> None:
    left, right = tmp_path / "left.parquet", tmp_path / "right.parquet"
    table().to_parquet(left)
    other = table(**{"metric.x": np.array([1.0, np.nan, 3.0], dtype=np.float32)})
    other["model"] = pd.Categorical(["a", "b", "a"], categories=["b", "a"])  # other category order
    other["extra"] = 0
    other.to_parquet(right)
    identity = compare_tables(left, right)
    assert identity.identical
    assert identity.common == ("model", "metric.x", "knob.k")
    assert identity.only_baseline == ("extra",) and identity.only_current == ()
    line = identity_line(identity, "ee584da")
    assert "IDENTICAL values on the 3 columns both have" in line
    assert "only in ee584da: extra" in line
    same_data = identity_line(identity, "ee584da", ("elmoe_dse/data/ensemble.json",))
    assert "ee584da on the same ensemble.json (--workers 1): IDENTICAL" in same_data


def test_different_values_rows_or_nans_are_not_identical(tmp_path: Path) -> None:
    left, right = tmp_path / "left.parquet", tmp_path / "right.parquet"
    table().to_parquet(left)
    table(**{"metric.x": [1.0, 2.0, 3.0], "knob.k": [1, 2, 4]}).to_parquet(right)
    identity = compare_tables(left, right)
    assert not identity.identical
    assert [(d.column, d.rows) for d in identity.differing] == [("metric.x", 1), ("knob.k", 1)]
    assert identity.differing[1].max_relative == pytest.approx(0.25)  # 3 against 4
    line = identity_line(identity, "ee584da")
    assert "DIFFERENT values" in line
    assert "knob.k (1 rows, max rel. 2.5e-01)" in line
    table().iloc[:2].to_parquet(right)
    shorter = compare_tables(left, right)
    assert not shorter.identical and shorter.rows == (3, 2)


def test_same_values_compares_categories_by_value() -> None:
    a = pd.Series(pd.Categorical(["x", "y"]))
    assert same_values(a, pd.Series(["x", "y"]))
    assert not same_values(a, pd.Series(["x", "z"]))
    assert not same_values(pd.Series([1.0, np.nan]), pd.Series([1.0, 1.0]))
    assert difference(pd.Series([1.0, np.nan]), pd.Series([1.0, 1.0]))[0] == 1
    assert difference(pd.Series([2.0, 5.0]), pd.Series([1.0, 5.0])) == (1, pytest.approx(0.5))


def test_amdahl_bound_of_the_one_process_run(tmp_path: Path) -> None:
    """6 s of a 10 s run waited for work units: 2 workers at most 10 / (4 + 3) = 1.43x; a
    run.json without timing says so in one line."""
    import json

    record = tmp_path / "run.json"
    record.write_text(json.dumps({"timing": {"total_s": 9.0, "table_and_pareto_s": 3.0}}))
    line = amdahl_line(record, 10.0, 2, 1.2)
    assert "work units take 6.0 s of 10.0 s" in line
    assert "at most 1.43x faster" in line and "measured 1.20x" in line
    record.write_text("{}")
    assert "no Amdahl bound (run.json: KeyError" in amdahl_line(record, 10.0, 2, 1.2)
