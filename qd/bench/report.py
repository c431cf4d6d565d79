"""Report of a ``qd bench``: the tidy CSV, the summary over seeds, the pairwise tests, tables, plots, HTML.

The results are **tidy rows**: one dict per configuration, task, seed, budget and metric, with the keys of
:data:`FIELDS`:

- ``config`` (str): the configuration's label; ``task`` (str): the task's label; ``seed`` (int);
- ``budget`` (int): the fixed budget in evaluations at which the metric is read; ``evaluations`` (int): the
  evaluations actually spent at that point (``<= budget``);
- ``metric`` (str): ``qd_score``, ``coverage``, ``max_fitness``, ``gt_coverage``, ``reward_areas_found``,
  ``best_reward_area_<i>``, ``evaluations_to_first_reward``, ... ; ``value`` (float): NaN when undefined
  (e.g. ``evaluations_to_first_reward`` of a seed that never found a reward).

Every metric is higher-is-better except those in :data:`LOWER_IS_BETTER`. From the rows:
:func:`summarize` (mean and bootstrap interval over seeds, :func:`qd.bench.stats.mean_ci`), :func:`compare`
(Mann-Whitney U of every pair of configurations, Holm-corrected), :func:`markdown_table`,
:func:`plot_curves` (metric against evaluations with interval bands), :func:`html_report` (one
self-contained page: inline CSS, images as base64 data URIs, no network needed) and :func:`write_report`,
which writes all of them into a bench directory.
"""

from __future__ import annotations

import base64
import csv
import html as _html
import io
import math
import os
import re
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from qd.bench.stats import holm, mann_whitney, mean_ci

FIELDS = ("config", "task", "seed", "budget", "evaluations", "metric", "value")
LOWER_IS_BETTER = {"evaluations_to_first_reward"}
FIRST_REWARD = "evaluations_to_first_reward"  # NaN means "never found one"
ALPHA = 0.05  # significance level of the Holm-corrected comparisons

_INT_FIELDS = ("seed", "budget", "evaluations")
_TITLES = {
    "qd_score": "QD-score",
    "coverage": "coverage",
    "max_fitness": "max fitness",
    "gt_coverage": "ground-truth coverage",
    "reward_areas_found": "reward areas found",
    FIRST_REWARD: "evaluations to first reward",
}


def metric_title(metric: str) -> str:
    """A readable name of ``metric`` (``"best_reward_area_0"`` -> ``"best reward, area 0"``)."""
    m = re.fullmatch(r"best_reward_area_(\d+)", metric)
    if m:
        return f"best reward, area {m.group(1)}"
    return _TITLES.get(metric, metric.replace("_", " "))


# ---------------------------------------------------------------------------------------------------- #
# Rows and the CSV
# ---------------------------------------------------------------------------------------------------- #
def _check_rows(rows: Iterable[dict]) -> List[dict]:
    rows = list(rows)
    for i, row in enumerate(rows):
        for field in FIELDS:
            if field not in row:
                raise ValueError(f"row {i} has no field {field!r} (rows need the fields {', '.join(FIELDS)})")
    return rows


def _group(rows: List[dict], keys: Sequence[str]) -> Dict[tuple, Dict[int, float]]:
    """``{key tuple: {seed: value}}`` in first-appearance order; a seed twice in a group is an error."""
    groups: Dict[tuple, Dict[int, float]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        seeds = groups.setdefault(key, {})
        seed = int(row["seed"])
        if seed in seeds:
            where = ", ".join(f"{k}={v!r}" for k, v in zip(keys, key))
            raise ValueError(f"seed {seed} appears twice for {where}")
        seeds[seed] = float(row["value"])
    return groups


def _format_value(value) -> str:
    value = float(value)
    return "nan" if math.isnan(value) else repr(value)  # repr: the float round-trips exactly


def write_csv(path: str, rows: Iterable[dict]) -> str:
    """Write ``rows`` to the CSV ``path`` (header :data:`FIELDS`; other keys ignored), atomically.

    The file is written to a temporary file in the same directory, then moved over ``path``
    (``os.replace``), so a reader never sees a partial file; missing parent directories are created.
    Values are written exactly (``repr``), NaN as ``nan``. Returns ``path``.

    Raises:
        ValueError: a row lacks one of :data:`FIELDS` (the message names it).
    """
    rows = _check_rows(rows)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".csv.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(FIELDS)
            for row in rows:
                writer.writerow([row["config"], row["task"], int(row["seed"]), int(row["budget"]),
                                 int(row["evaluations"]), row["metric"], _format_value(row["value"])])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_csv(path: str) -> List[dict]:
    """The rows of a CSV written by :func:`write_csv`: ``seed``, ``budget``, ``evaluations`` as int,
    ``value`` as float (``nan`` -> NaN), ``config``, ``task``, ``metric`` as str.

    Raises:
        ValueError: the header lacks one of :data:`FIELDS` (named), or a number does not parse.
        OSError: the file cannot be read.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [k for k in FIELDS if k not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: the CSV has no column {missing[0]!r} (expected {', '.join(FIELDS)})")
        rows = []
        for line, raw in enumerate(reader, start=2):
            try:
                row = {k: raw[k] for k in FIELDS}
                for k in _INT_FIELDS:
                    row[k] = int(row[k])
                row["value"] = float(row["value"])
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}, line {line}: {e}") from None
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------- #
# Summary and comparisons
# ---------------------------------------------------------------------------------------------------- #
def summarize(
    rows: Iterable[dict], confidence: float = 0.95, method: str = "bca", n_resamples: int = 9999, seed=0
) -> List[dict]:
    """Mean and bootstrap interval over seeds, per configuration, task, budget and metric.

    Args:
        rows: tidy rows (:data:`FIELDS`).
        confidence, method, n_resamples, seed: of :func:`qd.bench.stats.bootstrap_ci` (BCa, 95 % by default).

    Returns:
        One dict per ``(config, task, budget, metric)`` with the keys ``config``, ``task``, ``budget``,
        ``metric``, ``mean`` (of the non-NaN values; NaN if none), ``low``, ``high`` (the interval; equal to
        the mean with one value or identical values, NaN with none), ``n`` (seeds with a non-NaN value) and
        ``seeds`` (seeds in the group). Ordered by first appearance of configs, then tasks, then metrics,
        and by increasing budget.

    Raises:
        ValueError: a row lacks a field (named), a seed appears twice in a group, or bad bootstrap arguments.
    """
    rows = _check_rows(rows)
    groups = _group(rows, ("config", "task", "budget", "metric"))
    order = {k: {} for k in ("config", "task", "metric")}
    for row in rows:
        for k, seen in order.items():
            seen.setdefault(row[k], len(seen))
    keys = list(groups)
    keys.sort(key=lambda g: (order["config"][g[0]], order["task"][g[1]], order["metric"][g[3]], int(g[2])))
    out = []
    for config, task, budget, metric in keys:
        values = list(groups[(config, task, budget, metric)].values())
        mean, low, high, n = mean_ci(values, confidence=confidence, n_resamples=n_resamples, method=method, seed=seed)
        out.append({"config": config, "task": task, "budget": int(budget), "metric": metric, "mean": mean,
                    "low": low, "high": high, "n": n, "seeds": len(values)})
    return out


def _better_is_lower(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def compare(rows: Iterable[dict], budget: Optional[int] = None, alpha: float = ALPHA) -> List[dict]:
    """Two-sided Mann-Whitney U test of every pair of configurations on each task and metric, at one budget.

    Args:
        rows: tidy rows (:data:`FIELDS`).
        budget: the budget (evaluations) to compare at; default each task's largest budget. Tasks without
            rows at ``budget`` are left out.
        alpha: the significance level that decides ``better``.

    Returns:
        One dict per pair of configurations (first-appearance order, ``config_a`` before ``config_b``) that
        both have values on the task, metric and budget: ``task``, ``metric``, ``budget``, ``config_a``,
        ``config_b``, ``n_a``, ``n_b`` (the values tested), ``u`` (U statistic of ``config_a``, in
        ``[0, n_a n_b]``; NaN with no data or identical values), ``p`` (two-
        sided), ``p_holm`` (Holm-corrected within the ``(task, metric)`` family of pairs) and ``better`` (the
        label of the configuration with the better median, respecting :data:`LOWER_IS_BETTER`, ties of the
        medians decided by ``u``; ``""`` when ``p_holm >= alpha``). For ``evaluations_to_first_reward`` a
        seed that never found a reward (NaN) is ranked as never (+inf, the worst); elsewhere NaNs are dropped.

    Raises:
        ValueError: a row lacks a field (named) or a seed appears twice in a group.
    """
    rows = _check_rows(rows)
    largest: Dict[str, int] = {}
    for row in rows:
        largest[row["task"]] = max(largest.get(row["task"], int(row["budget"])), int(row["budget"]))
    at = [r for r in rows if int(r["budget"]) == (largest[r["task"]] if budget is None else int(budget))]
    groups = _group(at, ("task", "metric", "config"))
    families: Dict[tuple, List[str]] = {}
    for task, metric, config in groups:
        families.setdefault((task, metric), []).append(config)
    out = []
    for (task, metric), configs in families.items():
        b = largest[task] if budget is None else int(budget)
        family = []
        for i, ca in enumerate(configs):
            for cb in configs[i + 1:]:
                xa = np.array(list(groups[(task, metric, ca)].values()), dtype=np.float64)
                xb = np.array(list(groups[(task, metric, cb)].values()), dtype=np.float64)
                if metric == FIRST_REWARD:
                    xa, xb = np.where(np.isnan(xa), np.inf, xa), np.where(np.isnan(xb), np.inf, xb)
                u, p = mann_whitney(xa, xb)
                family.append({"task": task, "metric": metric, "budget": b, "config_a": ca, "config_b": cb,
                               "u": u, "p": p, "n_a": int(np.count_nonzero(~np.isnan(xa))),
                               "n_b": int(np.count_nonzero(~np.isnan(xb))), "_a": xa, "_b": xb})
        adjusted = holm([c["p"] for c in family])
        for c, p_holm in zip(family, adjusted):
            xa, xb = c.pop("_a"), c.pop("_b")
            c["p_holm"] = float(p_holm)
            c["better"] = _better(c, xa, xb, metric) if p_holm < alpha else ""
            out.append(c)
    return out


def _better(c: dict, xa: np.ndarray, xb: np.ndarray, metric: str) -> str:
    xa, xb = xa[~np.isnan(xa)], xb[~np.isnan(xb)]
    ma, mb = float(np.median(xa)), float(np.median(xb))
    lower = _better_is_lower(metric)
    if ma != mb:
        a_wins = (ma < mb) if lower else (ma > mb)
    else:  # equal medians: the U statistic says which side tends to be larger
        a_larger = c["u"] > xa.size * xb.size / 2
        a_wins = (not a_larger) if lower else a_larger
    return c["config_a"] if a_wins else c["config_b"]


# ---------------------------------------------------------------------------------------------------- #
# Markdown
# ---------------------------------------------------------------------------------------------------- #
def format_number(value) -> str:
    """``value`` in about 3 significant digits: ``0.823``, ``12.3``, ``1,234``, ``1.23e+05``; ``nan`` as ``-``."""
    value = float(value)
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    a = abs(value)
    if a >= 1e5 or (0 < a < 1e-3):
        return f"{value:.3g}" if a < 1e-3 else f"{value:.2e}"
    if a >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _escape_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _table(header: Sequence[str], body: Sequence[Sequence[str]], left: int = 1) -> List[str]:
    """A pipe table; the first ``left`` columns left-aligned, the others (numbers) right-aligned."""
    lines = ["| " + " | ".join(_escape_cell(h) for h in header) + " |",
             "|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|"]
    lines += ["| " + " | ".join(_escape_cell(c) for c in row) + " |" for row in body]
    return lines


def _cell(entry: Optional[dict]) -> str:
    if entry is None:
        return "-"
    if entry["n"] == 0:
        return f"never (0/{entry['seeds']} found)" if entry["metric"] == FIRST_REWARD else "-"
    text = f"{format_number(entry['mean'])} [{format_number(entry['low'])}, {format_number(entry['high'])}]"
    if entry["n"] < entry["seeds"]:
        what = "found" if entry["metric"] == FIRST_REWARD else "seeds"
        text += f" ({entry['n']}/{entry['seeds']} {what})"
    return text


def _best_configs(entries: Dict[str, dict], metric: str) -> set:
    """Configs with the best mean (for evaluations_to_first_reward: most seeds that found one, then the
    lowest mean; a config that never found one counts); none when fewer than two configs compete."""
    if metric == FIRST_REWARD:  # a config that never found a reward still competes (and loses)
        scored = {c: e for c, e in entries.items() if e is not None and e["seeds"] > 0}
    else:
        scored = {c: e for c, e in entries.items() if e is not None and e["n"] > 0 and not math.isnan(e["mean"])}
    if len(scored) < 2:
        return set()
    sign = 1.0 if _better_is_lower(metric) else -1.0

    def key(e):
        if metric != FIRST_REWARD:
            return (0.0, sign * e["mean"])
        return (-e["n"] / e["seeds"], e["mean"] if e["n"] else math.inf)

    best = min(key(e) for e in scored.values())
    return {c for c, e in scored.items() if key(e) == best}


def _ordered(values: Iterable) -> list:
    return list(dict.fromkeys(values))


# The metrics a bench reports when a run has them, in reading order (sparse tasks add the exploration
# metrics, then the best reward of each area and the evaluations to the first reward).
METRIC_ORDER = ("qd_score", "coverage", "max_fitness", "gt_coverage", "reward_areas_found")


def metric_rank(metric: str) -> tuple:
    """Sort key of a metric's column, in a reading order: :data:`METRIC_ORDER` ``(0, i)``, the best reward of
    each area by area ``(1, area)``, the evaluations to the first reward ``(2, 0)``, then any other metric
    ``(3, 0)`` (stable: in order of appearance)."""
    if metric in METRIC_ORDER:
        return (0, METRIC_ORDER.index(metric))
    if metric.startswith("best_reward_area_") and metric.rsplit("_", 1)[1].isdigit():
        return (1, int(metric.rsplit("_", 1)[1]))
    return (2, 0) if metric == FIRST_REWARD else (3, 0)


def _ordered_metrics(values: Iterable) -> list:
    return sorted(_ordered(values), key=metric_rank)


def markdown_table(
    summary: Sequence[dict],
    comparisons: Optional[Sequence[dict]] = None,
    budgets: Optional[Sequence[int]] = None,
    metrics: Optional[Sequence[str]] = None,
    confidence: float = 0.95,
) -> str:
    """Markdown tables of a :func:`summarize` result (and of the significant pairs of :func:`compare`).

    For each task and each budget shown, a table with one row per configuration and one column per metric;
    a cell reads ``mean [low, high]`` (about 3 significant digits, thousands separated, large values as
    ``1.23e+05``), followed by ``(k/S found)`` for ``evaluations_to_first_reward`` when only ``k`` of the
    ``S`` seeds found a reward (``never (0/S found)`` when none did) and ``(k/S seeds)`` for another metric
    with undefined values. The best mean of each column is bold (lowest for :data:`LOWER_IS_BETTER`; for
    ``evaluations_to_first_reward`` the configuration with the most seeds that found a reward first).

    Args:
        summary: the dicts of :func:`summarize`.
        comparisons: the dicts of :func:`compare`; when given, a table of the significant pairs
            (``p_holm < 0.05``) follows, with a line saying how many pairs were tested.
        budgets: the budgets to show (each that a task has gets a table); default each task's largest.
        metrics: the columns, in order (metrics absent from the summary are skipped); default every metric
            in order of first appearance.
        confidence: the confidence level of the intervals, for the caption.

    Returns:
        The Markdown text (``#`` headings per task, pipe tables), ending with a newline.
    """
    lines = [f"Cells: mean [{confidence:.0%} bootstrap interval] over seeds."]
    tasks = _ordered(e["task"] for e in summary)
    index = {(e["config"], e["task"], e["budget"], e["metric"]): e for e in summary}
    for task in tasks:
        entries = [e for e in summary if e["task"] == task]
        configs = _ordered(e["config"] for e in entries)
        have = _ordered_metrics(e["metric"] for e in entries)
        cols = have if metrics is None else [m for m in metrics if m in have]
        task_budgets = sorted({e["budget"] for e in entries})
        shown = [task_budgets[-1]] if budgets is None else [b for b in task_budgets if b in set(budgets)]
        for budget in shown:
            lines += ["", f"## {task}, at {budget:,} evaluations", ""]
            header = ["config"] + [metric_title(m) + (" (lower is better)" if _better_is_lower(m) else "") for m in cols]
            body = [[c] for c in configs]
            for m in cols:
                column = {c: index.get((c, task, budget, m)) for c in configs}
                best = _best_configs(column, m)
                for row, c in zip(body, configs):
                    text = _cell(column[c])
                    row.append(f"**{text}**" if c in best else text)
            lines += _table(header, body)
    if comparisons is not None:
        lines += ["", "## Pairwise comparisons", ""]
        significant = [c for c in comparisons if c["better"]]
        budgets_cmp = sorted({c["budget"] for c in comparisons})
        at = ", ".join(f"{b:,}" for b in budgets_cmp) if budgets_cmp else "-"
        lines.append(
            f"{len(comparisons)} pairs tested (at {at} evaluations), {len(significant)} significant at p < {ALPHA}; "
            "p-values are two-sided Mann-Whitney U, Holm-corrected within each task and metric."
        )
        if significant:
            body = []
            for c in significant:
                a_better = c["better"] == c["config_a"]
                other = c["config_b"] if a_better else c["config_a"]
                u = c["u"] if a_better else c["n_a"] * c["n_b"] - c["u"]  # U of the better config
                body.append([c["task"], metric_title(c["metric"]), c["better"], other, format_number(u),
                             f"{c['p']:.3g}", f"{c['p_holm']:.3g}"])
            lines += [""] + _table(["task", "metric", "better", "than", "U (better)", "p", "p (Holm)"], body, left=4)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- #
# Plots
# ---------------------------------------------------------------------------------------------------- #
def _file_name(task: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(task)) or "task"


def plot_curves(summary: Sequence[dict], path_prefix: str, metrics: Optional[Sequence[str]] = None) -> List[str]:
    """One PNG per task, ``{path_prefix}{task}.png``: a panel per metric against evaluations (the budgets),
    a line per configuration (the mean) with a shaded band between ``low`` and ``high``.

    Args:
        summary: the dicts of :func:`summarize`.
        path_prefix: prefix of the file paths (e.g. ``"bench/plots/"``; its directory is created). Characters
            of a task label other than letters, digits, ``.``, ``_`` and ``-`` become ``_`` in the file name.
        metrics: the panels, in order (absent ones skipped); default every metric of the task.

    Returns:
        The paths written, in task order. Undefined means (NaN) leave gaps in the lines; a configuration
        keeps its colour across tasks. Figures are drawn on a ``matplotlib.figure.Figure`` (Agg canvas, no
        pyplot state, any backend).
    """
    from matplotlib.figure import Figure

    folder = os.path.dirname(path_prefix)
    if folder:
        os.makedirs(folder, exist_ok=True)
    all_configs = _ordered(e["config"] for e in summary)
    colours = {c: f"C{i % 10}" for i, c in enumerate(all_configs)}
    paths = []
    for task in _ordered(e["task"] for e in summary):
        entries = [e for e in summary if e["task"] == task]
        have = _ordered_metrics(e["metric"] for e in entries)
        panels = have if metrics is None else [m for m in metrics if m in have]
        n = max(1, len(panels))
        ncols = min(n, 3)
        nrows = -(-n // ncols)
        fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, m in zip(axes, panels):
            for c in _ordered(e["config"] for e in entries):
                pts = sorted((e["budget"], e["mean"], e["low"], e["high"]) for e in entries
                             if e["config"] == c and e["metric"] == m)
                if not pts:
                    continue
                x, mean, low, high = (np.array(v, dtype=np.float64) for v in zip(*pts))
                ax.plot(x, mean, marker="o", markersize=3, color=colours[c], label=c)
                ax.fill_between(x, low, high, color=colours[c], alpha=0.2, linewidth=0)
            ax.set_title(metric_title(m) + (" (lower is better)" if _better_is_lower(m) else ""))
            ax.set_xlabel("evaluations")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        fig.suptitle(f"{task}: mean and bootstrap interval over seeds")
        fig.tight_layout()
        path = f"{path_prefix}{_file_name(task)}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------------- #
# HTML
# ---------------------------------------------------------------------------------------------------- #
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; margin: 1em 0; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 .2em; }
"""


def _inline(text: str) -> str:
    """Escape ``text`` and render ``**bold**`` and ```code``` spans."""
    out = _html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def _split_row(line: str) -> List[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    cells = re.split(r"(?<!\\)\|", line)
    return [c.strip().replace("\\|", "|") for c in cells]


def markdown_to_html(markdown: str) -> str:
    """HTML of the Markdown this module writes: ``#`` headings, pipe tables (``---:`` columns right-aligned),
    paragraphs, ``**bold**`` and ```code```. Everything else is escaped text."""
    out: List[str] = []
    lines = markdown.splitlines()
    i = 0
    para: List[str] = []

    def flush():
        if para:
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        heading = re.match(r"(#{1,6})\s+(.*)", line)
        is_table = line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?", lines[i + 1].strip())
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
        elif is_table:
            flush()
            header = _split_row(line)
            aligns = ["num" if a.strip().endswith(":") else "" for a in _split_row(lines[i + 1])]
            i += 2
            body = []
            while i < len(lines) and lines[i].startswith("|"):
                body.append(_split_row(lines[i]))
                i += 1

            def cls(j):
                return ' class="num"' if j < len(aligns) and aligns[j] else ""

            rows = ["<tr>" + "".join(f"<th{cls(j)}>{_inline(h)}</th>" for j, h in enumerate(header)) + "</tr>"]
            rows += ["<tr>" + "".join(f"<td{cls(j)}>{_inline(c)}</td>" for j, c in enumerate(r)) + "</tr>" for r in body]
            out.append("<table>\n<thead>" + rows[0] + "</thead>\n<tbody>\n" + "\n".join(rows[1:]) + "\n</tbody>\n</table>")
        elif not line.strip():
            flush()
            i += 1
        else:
            para.append(line.strip())
            i += 1
    flush()
    return "\n".join(out)


def html_report(path: str, title: str, markdown: str, pngs: Sequence[str], spec_text: Optional[str] = None) -> str:
    """Write a self-contained HTML page to ``path`` and return ``path``.

    The page holds ``title``, the Markdown tables rendered as HTML tables (:func:`markdown_to_html`), every
    PNG of ``pngs`` embedded as a ``data:image/png;base64,`` URI, and ``spec_text`` (the resolved spec) in a
    ``<pre>`` block when given. CSS is inline; the page loads nothing and links nowhere, so it opens offline.
    Written atomically (temporary file + ``os.replace``).

    Raises:
        OSError: a PNG cannot be read or ``path`` cannot be written.
    """
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{_html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{_html.escape(title)}</h1>", markdown_to_html(markdown)]
    if pngs:
        parts.append("<h2>Plots</h2>")
    for png in pngs:
        with open(png, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        name = _html.escape(os.path.splitext(os.path.basename(png))[0])
        parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>')
    if spec_text is not None:
        parts += ["<h2>Resolved spec</h2>", f"<pre>{_html.escape(spec_text)}</pre>"]
    parts += ["</body>", "</html>"]
    _write_text(path, "\n".join(parts) + "\n")
    return path


def _write_text(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_report(
    bench_dir: str,
    rows: Iterable[dict],
    spec_text: Optional[str] = None,
    title: str = "qd bench",
    budgets: Optional[Sequence[int]] = None,
    metrics: Optional[Sequence[str]] = None,
    confidence: float = 0.95,
    method: str = "bca",
    n_resamples: int = 9999,
    seed=0,
) -> Dict[str, object]:
    """Write the report of ``rows`` into ``bench_dir`` (created if missing).

    Files: ``results.csv`` (:func:`write_csv`), ``report.md`` (the title, :func:`markdown_table` of the
    :func:`summarize` result with the :func:`compare` pairs at each task's largest budget, and the plots as
    image links), ``plots/<task>.png`` (:func:`plot_curves`) and ``report.html`` (:func:`html_report`, with
    ``spec_text`` when given). ``budgets`` and ``metrics`` select the tables' budgets and columns (and the
    plots' panels); ``confidence``, ``method``, ``n_resamples``, ``seed`` go to :func:`summarize`.

    Returns:
        ``{"csv": path, "markdown": path, "plots": [paths], "html": path, "summary": [...], "comparisons":
        [...]}``: the files, and the :func:`summarize` and :func:`compare` results they were written from.

    Raises:
        ValueError: a row lacks a field (named) or a seed appears twice in a group.
    """
    rows = _check_rows(rows)
    os.makedirs(bench_dir, exist_ok=True)
    csv_path = write_csv(os.path.join(bench_dir, "results.csv"), rows)
    summary = summarize(rows, confidence=confidence, method=method, n_resamples=n_resamples, seed=seed)
    comparisons = compare(rows)
    tables = markdown_table(summary, comparisons, budgets=budgets, metrics=metrics, confidence=confidence)
    pngs = plot_curves(summary, os.path.join(bench_dir, "plots", ""), metrics=metrics)
    links = "".join(f"\n![{os.path.splitext(os.path.basename(p))[0]}](plots/{os.path.basename(p)})\n" for p in pngs)
    md_path = os.path.join(bench_dir, "report.md")
    _write_text(md_path, f"# {title}\n\n{tables}" + (f"\n## Plots\n{links}" if pngs else ""))
    html_path = html_report(os.path.join(bench_dir, "report.html"), title, tables, pngs, spec_text=spec_text)
    return {"csv": csv_path, "markdown": md_path, "plots": pngs, "html": html_path, "summary": summary,
            "comparisons": comparisons}
