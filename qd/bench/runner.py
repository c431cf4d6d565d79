"""``qd bench``: run every configuration of a spec on its tasks for all seeds, keep a bench directory that an
interrupted bench resumes, and write the report.

Bench directory layout::

    BENCH_DIR/spec.yaml          the spec as given (``spec``) and every run's resolved config (``runs``)
    BENCH_DIR/runs/<run>.csv     the tidy rows of one finished run (configuration x task, all seeds): a
                                 resumed bench skips the runs that have one
    BENCH_DIR/results.csv        every run's rows (qd.bench.report.FIELDS)
    BENCH_DIR/report.md          the tables: mean and 95% bootstrap interval per metric, significant pairs
    BENCH_DIR/plots/<task>.png   each metric against evaluations, one line and interval band per configuration
    BENCH_DIR/report.html        the same tables and plots in one self-contained page
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import yaml

from qd.bench import execute, report
from qd.bench.spec import BenchSpec, Run, load_spec, parse_spec
from qd.config import ConfigError, RunDirError

SPEC_FILE = "spec.yaml"
RUNS_DIR = "runs"


@dataclasses.dataclass
class BenchResults:
    """What a bench produced.

    Attributes:
        bench_dir: the bench directory.
        spec: the validated spec.
        rows: the tidy rows of every run (:data:`qd.bench.report.FIELDS`).
        summary: mean and interval per configuration, task, budget and metric (:func:`qd.bench.report.summarize`).
        comparisons: pairwise Mann-Whitney U tests, Holm-corrected (:func:`qd.bench.report.compare`).
        markdown: the report's tables (``report.md``).
        files: ``{"csv", "markdown", "plots", "html"}``: the report's files.
        skipped: ids of the runs a resumed bench found finished and did not run again.
        groups: ``{run id: seeds per vmapped group}`` of the runs this call ran.
        shared_programs: ``{run id: id of an earlier run}`` for the runs this call ran with the compiled
            programs of an earlier run (the same program: their configurations differ only in settings that
            are traced values, see :class:`qd.bench.execute.SharedPrograms`).
    """

    bench_dir: str
    spec: BenchSpec
    rows: List[Dict[str, Any]]
    summary: List[Dict[str, Any]]
    comparisons: List[Dict[str, Any]]
    markdown: str
    files: Dict[str, Any]
    skipped: List[str]
    groups: Dict[str, int]
    shared_programs: Dict[str, str] = dataclasses.field(default_factory=dict)


def _spec_of(spec: Union[BenchSpec, Dict[str, Any], str]) -> BenchSpec:
    if isinstance(spec, BenchSpec):
        return spec
    if isinstance(spec, str):
        return load_spec(spec)
    return parse_spec(spec)


def _new_bench_dir(output_dir: str, name: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base = os.path.join(output_dir, f"{stamp}-{name}")
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = f"{base}-{suffix}"
    os.makedirs(path)
    return path


def _write_spec(bench_dir: str, spec: BenchSpec) -> None:
    resolved = {r.id: {"config": r.config_label, "task": r.task_label, "budgets": list(r.budgets), "options": r.config}
                for r in spec.runs}
    tmp = os.path.join(bench_dir, SPEC_FILE + ".tmp")
    with open(tmp, "w") as f:
        yaml.safe_dump({"spec": spec.raw, "runs": resolved}, f, sort_keys=False)
    os.replace(tmp, os.path.join(bench_dir, SPEC_FILE))


def read_bench_spec(bench_dir: str) -> Dict[str, Any]:
    """The spec mapping recorded in ``bench_dir/spec.yaml``.

    Raises:
        RunDirError: the folder or its ``spec.yaml`` is missing or unreadable.
    """
    path = os.path.join(bench_dir, SPEC_FILE)
    if not os.path.isdir(bench_dir):
        raise RunDirError(bench_dir, "no such bench directory")
    try:
        with open(path) as f:
            saved = yaml.safe_load(f)
    except OSError:
        raise RunDirError(path, "missing: not a bench directory (qd bench writes spec.yaml first)") from None
    except yaml.YAMLError:
        raise RunDirError(path, "not a readable YAML file") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("spec"), dict):
        raise RunDirError(path, "has no 'spec' mapping")
    return saved["spec"]


def _run_file(bench_dir: str, run: Run) -> str:
    return os.path.join(bench_dir, RUNS_DIR, f"{run.id}.csv")


class _Progress:
    """A tqdm bar over the bench's evaluations (every seed of every run), with an ETA."""

    def __init__(self, spec: BenchSpec, todo: List[Run], enabled: bool):
        self.bar = None
        if enabled and todo:
            from tqdm.auto import tqdm

            total = sum(max(r.budgets) * len(spec.seeds) for r in todo)
            self.bar = tqdm(total=total, unit="eval", unit_scale=True, dynamic_ncols=True)
        self.shown = 0

    def start(self, run: Run, index: int, count: int) -> None:
        if self.bar is not None:
            self.bar.set_description(f"{run.config_label} on {run.task_label} [{index + 1}/{count}]")

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text)

    def advance(self, n: int) -> None:
        if self.bar is not None and n > 0:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_one(run: Run, spec: BenchSpec, bar: _Progress, quiet: bool,
             programs: Optional[execute.SharedPrograms] = None) -> Tuple[List[Dict[str, Any]], int]:
    seeds = list(spec.seeds)
    first = execute.build_jobs(run, seeds[:1])[0]
    if not execute.vmappable(first.driver):
        group = 1
        if not quiet and len(seeds) > 1:
            bar.note(f"qd bench: {run.id}: its {len(seeds)} seeds run one after another with one compiled program "
                     f"(under vmap its data-dependent branches, emitter phases or AE trainings, would all run)")
    else:
        group = execute.seeds_per_group(len(seeds), execute.seed_footprint(first), spec.seeds_per_group,
                                        spec.max_group_memory_gb)
    if 1 < group < len(seeds) and not quiet:
        groups = -(-len(seeds) // group)
        bar.note(f"qd bench: {run.id}: {len(seeds)} seeds do not fit in one vmapped program; "
                 f"running {groups} groups of {group} seeds")
    state = {"done": 0, "group": 0}

    def on_group(index, count):
        state["group"] = index

    def on_evaluations(evaluations):
        mine = min(group, len(seeds) - state["group"] * group)
        done = state["group"] * group * max(run.budgets) + evaluations * mine
        bar.advance(done - state["done"])
        state["done"] = done

    curves = execute.run_seeds(run, seeds, group, on_evaluations, on_group, split=spec.split_seeds, programs=programs)
    if programs is not None and run.id in programs.shared and not quiet:
        bar.note(f"qd bench: {run.id}: ran with the compiled programs of {programs.shared[run.id]} (the same "
                 f"program: the two configurations differ only in settings the state carries)")
    bar.advance(len(seeds) * max(run.budgets) - state["done"])
    return execute.budget_rows(run, seeds, curves), group


def run(
    spec: Union[BenchSpec, Dict[str, Any], str, None] = None,
    bench_dir: Optional[str] = None,
    output_dir: str = "benches",
    resume: bool = False,
    progress: bool = True,
    on_run: Optional[Callable[[str], None]] = None,
    title: Optional[str] = None,
    on_bench_dir: Optional[Callable[[str], None]] = None,
) -> BenchResults:
    """Run a bench: every configuration on its tasks, all seeds of each as one vmapped program, then the report.

    Args:
        spec: a :class:`BenchSpec`, a spec mapping, or the path of a YAML / TOML spec file (see
            :mod:`qd.bench.spec`); with ``resume`` it may be None (the bench directory's own spec is used).
        bench_dir: where to write; default a new ``output_dir/<timestamp>-<name>`` folder. Required with
            ``resume``.
        output_dir: the parent folder of new bench directories.
        resume: continue the bench in ``bench_dir``: the runs whose results it holds are skipped.
        progress: show a progress bar over the bench's evaluations (with an ETA).
        on_run: called with a run's id after its results are saved (tests use it to interrupt a bench).
        title: the report's title (default ``qd bench: <name>``).
        on_bench_dir: called with the bench directory once it exists, before anything compiles.

    Returns:
        :class:`BenchResults`.

    Raises:
        ConfigError: a bad spec (before anything compiles); a resumed bench given another spec than its own.
        RunDirError: ``resume`` of a folder that is not a bench directory.
    """
    if resume:
        if bench_dir is None:
            raise ValueError("qd.bench.run(resume=True) needs the bench directory to resume")
        saved = read_bench_spec(bench_dir)
        if spec is None:
            spec = saved
        spec = _spec_of(spec)
        if spec.raw != parse_spec(saved).raw:
            raise ConfigError(f"qd bench: --resume {bench_dir}: the spec differs from the one this bench was started with")
    else:
        if spec is None:
            raise ValueError("qd.bench.run needs a spec (or resume=True and a bench directory)")
        spec = _spec_of(spec)
    for r in spec.runs:  # every job's builder checks run on the host before anything compiles
        execute.build_jobs(r, spec.seeds[:1])
    if bench_dir is None:
        bench_dir = _new_bench_dir(output_dir, spec.name)
    os.makedirs(os.path.join(bench_dir, RUNS_DIR), exist_ok=True)
    if not resume:
        _write_spec(bench_dir, spec)
    if on_bench_dir is not None:
        on_bench_dir(bench_dir)
    if spec.runs[0].config.get("compilation_cache", True):
        from qd.cache import enable_compilation_cache

        enable_compilation_cache()

    done = [r for r in spec.runs if resume and os.path.exists(_run_file(bench_dir, r))]
    todo = [r for r in spec.runs if r not in done]
    bar = _Progress(spec, todo, progress)
    groups: Dict[str, int] = {}
    programs = execute.SharedPrograms()
    try:
        for i, r in enumerate(todo):
            bar.start(r, i, len(todo))
            start = time.perf_counter()
            rows, groups[r.id] = _run_one(r, spec, bar, quiet=False, programs=programs)
            report.write_csv(_run_file(bench_dir, r), rows)
            if not progress:
                print(f"qd bench: {r.id}: {len(spec.seeds)} seeds in {time.perf_counter() - start:.1f} s")
            if on_run is not None:
                on_run(r.id)
    finally:
        bar.close()
    rows = [row for r in spec.runs for row in report.read_csv(_run_file(bench_dir, r))]
    spec_text = yaml.safe_dump(spec.raw, sort_keys=False)
    files = report.write_report(bench_dir, rows, spec_text=spec_text, title=title or f"qd bench: {spec.name}")
    summary, comparisons = files.pop("summary"), files.pop("comparisons")  # computed once, by the report
    with open(files["markdown"]) as f:
        markdown = f.read()
    return BenchResults(bench_dir, spec, rows, summary, comparisons, markdown, files, [r.id for r in done], groups,
                        dict(programs.shared))
