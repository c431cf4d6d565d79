"""qd.bench.report: tidy rows -> summary, comparisons, Markdown, plots and a self-contained HTML page."""

import math
import os
import re

import numpy as np
import pytest

from qd.bench.report import (
    FIELDS,
    compare,
    html_report,
    markdown_table,
    markdown_to_html,
    plot_curves,
    read_csv,
    summarize,
    write_csv,
    write_report,
)

SEEDS = range(5)
BUDGETS = (100, 200)


def _value(config, task, seed, budget, metric):
    """``strong`` beats ``weak`` everywhere (weak's best seed is below strong's worst), by hand-made values."""
    strong = config == "strong"
    if metric == "qd_score":
        return (20_000.0 if strong else 5_000.0) * budget / 200 + 100.0 * seed
    if metric == "coverage":
        return (0.8 if strong else 0.3) + 0.01 * seed
    if metric == "max_fitness":
        return (-1.0 if strong else -3.0) + 0.1 * seed if task == "arm" else 2.0 + 0.1 * seed  # a tie on maze
    if metric == "evaluations_to_first_reward":
        if strong:
            return 40.0 + seed
        return float("nan") if seed < 3 else 150.0 + seed  # weak: only 2 of 5 seeds find a reward
    raise KeyError(metric)


def _rows(tasks=("arm", "maze")):
    rows = []
    for config in ("weak", "strong"):  # weak first: the bold/better must not just follow the order
        for task in tasks:
            metrics = ["qd_score", "coverage", "max_fitness"] + (["evaluations_to_first_reward"] if task == "maze" else [])
            for seed in SEEDS:
                for budget in BUDGETS:
                    for metric in metrics:
                        rows.append({"config": config, "task": task, "seed": seed, "budget": budget,
                                     "evaluations": budget - 4, "metric": metric,
                                     "value": _value(config, task, seed, budget, metric)})
    return rows


@pytest.fixture(scope="module")
def rows():
    return _rows()


@pytest.fixture(scope="module")
def summary(rows):
    return summarize(rows, n_resamples=2000)


def _entry(summary, config, task, budget, metric):
    (e,) = [e for e in summary if (e["config"], e["task"], e["budget"], e["metric"]) == (config, task, budget, metric)]
    return e


def test_the_summary_holds_the_exact_means_and_the_seed_counts(rows, summary):
    assert len(summary) == 2 * (3 + 4) * 2
    assert set(summary[0]) == {"config", "task", "budget", "metric", "mean", "low", "high", "n", "seeds"}
    # first-appearance order of configs, tasks and metrics, budgets increasing
    assert [(e["config"], e["task"], e["metric"], e["budget"]) for e in summary[:4]] == [
        ("weak", "arm", "qd_score", 100), ("weak", "arm", "qd_score", 200),
        ("weak", "arm", "coverage", 100), ("weak", "arm", "coverage", 200)]
    for e in summary:
        values = [_value(e["config"], e["task"], s, e["budget"], e["metric"]) for s in SEEDS]
        finite = [v for v in values if not math.isnan(v)]
        assert e["mean"] == pytest.approx(np.mean(finite), rel=1e-12)
        assert (e["n"], e["seeds"]) == (len(finite), 5)
        assert e["low"] <= e["mean"] <= e["high"]
    weak_first = _entry(summary, "weak", "maze", 200, "evaluations_to_first_reward")
    assert (weak_first["n"], weak_first["mean"]) == (2, 153.5)


def test_compare_finds_the_better_config_at_the_largest_budget(rows):
    comparisons = compare(rows)
    assert {c["budget"] for c in comparisons} == {200}
    by = {(c["task"], c["metric"]): c for c in comparisons}
    assert len(by) == len(comparisons) == 3 + 4
    for key in [("arm", "qd_score"), ("arm", "coverage"), ("arm", "max_fitness"), ("maze", "qd_score")]:
        c = by[key]
        assert (c["config_a"], c["config_b"]) == ("weak", "strong")
        assert c["u"] == 0.0 and c["p"] == pytest.approx(2 / 252)  # exact two-sided, fully separated 5 vs 5
        assert c["p_holm"] >= c["p"] and c["better"] == "strong"
    tie = by[("maze", "max_fitness")]  # the same values for both configs
    assert tie["u"] == 12.5 and tie["p"] == pytest.approx(1.0) and tie["better"] == ""
    first = by[("maze", "evaluations_to_first_reward")]  # lower is better; "never" ranks worst
    assert first["better"] == "strong" and first["p_holm"] < 0.05
    at_100 = compare(rows, budget=100)
    assert {c["budget"] for c in at_100} == {100} and len(at_100) == 7
    assert compare(rows, budget=12345) == []


def test_holm_is_applied_within_each_task_and_metric():
    rows = []
    for config, shift in (("a", 0.0), ("b", 10.0), ("c", 20.0)):
        for seed in SEEDS:
            rows.append({"config": config, "task": "t", "seed": seed, "budget": 10, "evaluations": 10,
                         "metric": "coverage", "value": shift + seed})
    comparisons = compare(rows)
    assert [(c["config_a"], c["config_b"]) for c in comparisons] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [c["p_holm"] for c in comparisons] == pytest.approx([3 * 2 / 252] * 3)
    assert [c["better"] for c in comparisons] == ["b", "c", "c"]


def test_the_markdown_bolds_the_best_mean_per_column(rows, summary):
    md = markdown_table(summary, compare(rows))
    assert "## arm, at 200 evaluations" in md and "## maze, at 200 evaluations" in md
    assert "at 100 evaluations" not in md
    lines = md.splitlines()
    strong = [line for line in lines if line.startswith("| strong |")]
    weak = [line for line in lines if line.startswith("| weak |")]
    assert len(strong) == len(weak) == 2
    # arm: strong is bold in all 3 columns, weak in none
    assert strong[0].count("**") == 2 * 3 and "**" not in weak[0]
    # qd-score 20,000 + 100 * mean seed (2) = 20,200, thousands separated
    assert "**20,200 [" in strong[0]
    # maze: the max-fitness tie is bold for both; the first reward lower is better, and weak shows 2/5 found
    assert strong[1].count("**") == 2 * 4 and weak[1].count("**") == 2
    assert "(2/5 found)" in weak[1] and "found" not in strong[1]
    assert "lower is better" in md
    assert "7 pairs tested" in md and "Holm-corrected" in md and "Mann-Whitney U" in md
    significant = [line for line in lines if line.startswith("| arm |") or line.startswith("| maze |")]
    assert len(significant) == 6 and all("| strong | weak |" in line for line in significant)
    # budgets and metrics select the tables and columns
    md100 = markdown_table(summary, budgets=[100], metrics=["coverage", "nope"])
    assert "at 100 evaluations" in md100 and "at 200" not in md100 and "QD-score" not in md100
    assert "Pairwise" not in md100 and md100.count("coverage") == 2


def test_never_found_and_large_numbers_are_formatted():
    rows = [{"config": c, "task": "t", "seed": s, "budget": 10, "evaluations": 10, "metric": m, "value": v}
            for c in ("a", "b") for s in range(3)
            for m, v in (("evaluations_to_first_reward", float("nan") if c == "a" else 5.0 + s),
                         ("qd_score", 1.234e6 if c == "a" else 1.0e6))]
    md = markdown_table(summarize(rows, n_resamples=500))
    assert "never (0/3 found)" in md and "**1.23e+06 [1.23e+06, 1.23e+06]**" in md
    # columns in reading order (QD-score before the first reward); found beats never
    assert re.search(r"\| b \| 1.00e\+06 \[[^]]*\] \| \*\*6 \[5(\.\d+)?, 7(\.\d+)?\]\*\*", md)


def test_the_csv_round_trips(rows, tmp_path):
    path = str(tmp_path / "sub" / "results.csv")
    assert write_csv(path, rows) == path
    back = read_csv(path)
    assert len(back) == len(rows)
    for a, b in zip(rows, back):
        assert [type(b[k]) for k in FIELDS] == [str, str, int, int, int, str, float]
        assert {k: a[k] for k in FIELDS if k != "value"} == {k: b[k] for k in FIELDS if k != "value"}
        assert (math.isnan(a["value"]) and math.isnan(b["value"])) or a["value"] == b["value"]
    assert [p for p in os.listdir(tmp_path / "sub")] == ["results.csv"]  # no temporary file left


def test_rows_missing_a_field_are_rejected_by_name(rows, tmp_path):
    bad = [dict(r) for r in rows[:3]]
    del bad[1]["budget"]
    for call in (lambda: summarize(bad), lambda: compare(bad), lambda: write_csv(str(tmp_path / "x.csv"), bad)):
        with pytest.raises(ValueError, match="row 1 has no field 'budget'"):
            call()
    twice = rows[:1] + rows[:1]
    with pytest.raises(ValueError, match="seed 0 appears twice"):
        summarize(twice)
    (tmp_path / "bad.csv").write_text("config,task,seed\na,b,1\n")
    with pytest.raises(ValueError, match="no column 'budget'"):
        read_csv(str(tmp_path / "bad.csv"))


def test_markdown_tables_become_html_tables():
    html = markdown_to_html("# T\n\nsome `x` text\n\n| a | b\\|c |\n|---|---:|\n| **1** | 2 <3 |\n")
    assert "<h1>T</h1>" in html and "<code>x</code>" in html
    assert "<th>a</th>" in html and '<th class="num">b|c</th>' in html
    assert "<td><strong>1</strong></td>" in html and '<td class="num">2 &lt;3</td>' in html


def test_write_report_writes_csv_markdown_plots_and_a_self_contained_html(rows, tmp_path):
    bench = str(tmp_path / "bench")
    files = write_report(bench, rows, spec_text="name: demo\nseeds: [0, 1, 2, 3, 4]\n<tag>", title="demo bench",
                         n_resamples=1000)
    assert files["csv"] == os.path.join(bench, "results.csv")
    assert len(read_csv(files["csv"])) == len(rows)
    assert sorted(os.path.basename(p) for p in files["plots"]) == ["arm.png", "maze.png"]
    for p in files["plots"]:
        assert os.path.dirname(p) == os.path.join(bench, "plots")
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    md = open(files["markdown"]).read()
    assert md.startswith("# demo bench") and "![arm](plots/arm.png)" in md and "Pairwise comparisons" in md
    html = open(files["html"], encoding="utf-8").read()
    assert html.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", html) and "http://" not in html and "https://" not in html
    assert "<table>" in html and "<strong>" in html and "<pre>name: demo" in html and "&lt;tag&gt;" in html
    assert files["html"] == os.path.join(bench, "report.html")


def test_plot_curves_writes_one_png_per_task(summary, tmp_path):
    paths = plot_curves(summary, str(tmp_path / "p_"), metrics=["qd_score", "evaluations_to_first_reward"])
    assert paths == [str(tmp_path / "p_arm.png"), str(tmp_path / "p_maze.png")]
    assert all(os.path.getsize(p) > 1000 for p in paths)
    one = plot_curves([dict(e, task="a/b c") for e in summary if e["task"] == "arm"], str(tmp_path) + os.sep)
    assert one == [os.path.join(str(tmp_path), "a_b_c.png")]
    html = html_report(str(tmp_path / "r.html"), "t", "", one)
    assert "data:image/png;base64," in open(html).read()
