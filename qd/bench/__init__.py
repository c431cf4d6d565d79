"""Benchmarks of algorithms and emitters across tasks and seeds (``qd bench``).

A spec (:mod:`qd.bench.spec`: YAML / TOML, or a dict) lists configurations (any ``qd run`` options), tasks,
seeds and budgets in evaluations; :func:`run` runs every configuration on its tasks with all seeds as one
vmapped program (:mod:`qd.bench.execute`), reads the metrics at the budgets, and writes a bench directory:
the resolved spec, a tidy CSV, a Markdown table of means with 95% bootstrap intervals and of Holm-corrected
Mann-Whitney U comparisons (:mod:`qd.bench.stats`), plots with interval bands and a self-contained HTML
report (:mod:`qd.bench.report`). An interrupted bench resumes (``run(..., bench_dir=DIR, resume=True)``,
``qd bench --resume DIR``) and skips the finished runs. Built-in specs: :func:`preset`
(``sparse-emitters``, ``qd-emitters``)::

    import qd.bench
    results = qd.bench.run(qd.bench.preset("sparse-emitters", quick=True))
    print(results.markdown)
"""

from qd.bench.presets import preset, preset_names
from qd.bench.runner import BenchResults, read_bench_spec, run
from qd.bench.spec import BenchSpec, Run, load_spec, parse_spec

__all__ = ["BenchResults", "BenchSpec", "Run", "load_spec", "parse_spec", "preset", "preset_names", "read_bench_spec", "run"]
