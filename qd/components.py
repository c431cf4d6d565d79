"""The built-in components of ``qd run``, registered here and only here: archives, emitters, schedulers and
algorithms, each a name, a typed configuration class and a builder (see :mod:`qd.registry`).

The command line's options (``--emitter gaussian --sigma 0.2``) and a config file's sections
(``emitter: {name: gaussian, sigma: 0.2}``) are generated from the configuration classes by :mod:`qd.config`.
A new component is one ``register`` call below with its configuration class and builder (its code in its
own module); nothing else changes.

This is the composition layer: the only place that picks concrete emitters. Builders import their
components lazily, so resolving a config (the command line's checks) imports neither JAX's programs nor
the emitters.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from pydantic import Field

from qd.jobs import BuildContext, Job, checked_devices, descriptor_bounds, genotype_clip, genotype_template
from qd.options import (
    Choice, ConfigError, Model, NonNegativeFloat, OptionalNumbers, OptionalPositiveInt, PositiveFloat, PositiveInt,
    PositiveInts,
)
from qd.registry import Registry
from qd import exploration_jobs


# --------------------------------------------------------------------------------------------- #
# Archives: build(cfg, ctx) -> empty archive
# --------------------------------------------------------------------------------------------- #
class _Bounds(Model):
    lower: OptionalNumbers = Field(None, description="descriptor lower bounds (default: the task's)")
    upper: OptionalNumbers = Field(None, description="descriptor upper bounds (default: the task's)")


class GridConfig(_Bounds):
    resolution: PositiveInts = Field([100, 100], description="grid cells per descriptor dimension")


class CVTConfig(_Bounds):
    num_cells: PositiveInt = Field(1024, description="CVT cells")


class DNSConfig(_Bounds):
    capacity: PositiveInt = Field(1024, description="Dominated Novelty Search population size")
    k: PositiveInt = Field(3, description="DNS: fitter neighbours in the dominated-novelty score")


def _bounds(cfg: _Bounds, ctx: BuildContext):
    return descriptor_bounds(cfg.lower, cfg.upper, ctx.task, ctx.config["task"])


def _qd_offset(task: Any) -> float:
    return float(getattr(task, "qd_offset", 0.0))


def build_grid(cfg: GridConfig, ctx: BuildContext):
    from qd.archives import GridArchive

    lower, upper = _bounds(cfg, ctx)
    res = list(cfg.resolution)
    if len(res) == 1:
        res = res * len(lower)
    if len(res) != len(lower):
        raise ConfigError(f"--resolution: expected 1 or {len(lower)} values; got {len(res)}")
    return GridArchive.create(genotype_template(ctx.task), res, lower, upper, qd_offset=_qd_offset(ctx.task))


def build_cvt(cfg: CVTConfig, ctx: BuildContext):
    from qd.archives import CVTArchive

    lower, upper = _bounds(cfg, ctx)
    return CVTArchive.create(
        genotype_template(ctx.task), cfg.num_cells, lower, upper, seed=ctx.config["seed"], qd_offset=_qd_offset(ctx.task)
    )


def build_dns(cfg: DNSConfig, ctx: BuildContext):
    from qd.archives import DominatedNoveltyArchive

    lower, upper = _bounds(cfg, ctx)
    return DominatedNoveltyArchive.create(
        genotype_template(ctx.task), cfg.capacity, len(lower), lower, upper, k=cfg.k, qd_offset=_qd_offset(ctx.task)
    )


# --------------------------------------------------------------------------------------------- #
# Emitters: build(cfg, ctx, batch_size) -> emitter (clipped to the task's genotype bounds)
# --------------------------------------------------------------------------------------------- #
class IsoLineConfig(Model):
    iso_sigma: PositiveFloat = Field(0.01, description="iso+line isotropic sigma")
    line_sigma: PositiveFloat = Field(0.2, description="iso+line line sigma")


class GaussianConfig(Model):
    sigma: PositiveFloat = Field(0.1, description="Gaussian mutation sigma (emitter gaussian, algorithm ns)")


def build_iso_line(cfg: IsoLineConfig, ctx: BuildContext, batch_size: int):
    from emitters import IsoLineEmitter

    return IsoLineEmitter(
        batch_size=batch_size, iso_sigma=cfg.iso_sigma, line_sigma=cfg.line_sigma, clip=genotype_clip(ctx.task)
    )


def build_gaussian(cfg: GaussianConfig, ctx: BuildContext, batch_size: int):
    from emitters import GaussianEmitter

    return GaussianEmitter(batch_size=batch_size, sigma=cfg.sigma, clip=genotype_clip(ctx.task))


# --------------------------------------------------------------------------------------------- #
# Schedulers: build(cfg, ctx, members) -> one emitter of batch_size; members: [batch_size -> emitter]
# --------------------------------------------------------------------------------------------- #
class CompositeConfig(Model):
    pass


Reselect = Choice("terminated", "all")


class BanditConfig(Model):
    num_active: PositiveInt = Field(1, description="bandit: emitters of the pool run each iteration")
    zeta: NonNegativeFloat = Field(0.05, description="bandit: UCB1 exploration weight")
    reselect: Reselect = Field("terminated", description="bandit: which active emitters are re-chosen")
    window: OptionalPositiveInt = Field(None, description="bandit: sliding window of iterations (default: all)")


def _share(batch_size: int, parts: int, option: str, what: str) -> int:
    if batch_size % parts:
        raise ConfigError(f"{option}: --batch-size {batch_size} does not split evenly over {parts} {what}")
    return batch_size // parts


def build_composite(cfg: CompositeConfig, ctx: BuildContext, members: List[Callable[[int], Any]]):
    """The emitters side by side, each with an equal share of the batch (one emitter: that emitter)."""
    batch = ctx.config["batch_size"]
    if len(members) == 1:
        return members[0](batch)
    from emitters import CompositeEmitter

    share = _share(batch, len(members), "--emitter", "emitters")
    return CompositeEmitter.create(*(m(share) for m in members))


def build_bandit(cfg: BanditConfig, ctx: BuildContext, members: List[Callable[[int], Any]]):
    """A UCB1 bandit over the emitters; ``num_active`` of them run each iteration, each ``batch_size /
    num_active`` candidates."""
    from emitters import BanditScheduler

    if cfg.num_active > len(members):
        raise ConfigError(f"--num-active: {cfg.num_active} is more than the {len(members)} emitters of the pool (--emitter)")
    share = _share(ctx.config["batch_size"], cfg.num_active, "--num-active", "active emitters")
    return BanditScheduler.create(
        *(m(share) for m in members), num_active=cfg.num_active, zeta=cfg.zeta, reselect=cfg.reselect,
        window=cfg.window,
    )


# --------------------------------------------------------------------------------------------- #
# Algorithms: build(cfg, ctx) -> Job
# --------------------------------------------------------------------------------------------- #
class MAPElitesConfig(Model):
    pass


def build_map_elites(cfg: MAPElitesConfig, ctx: BuildContext) -> Job:
    """MAP-Elites on the config's archive and emitters; the initial batch is ``batch_size`` random genotypes.
    On tasks with a ground truth (the sparse tasks) it reports the exploration metrics too."""
    import jax

    from qd.algorithms import MAPElites
    from qd.metrics import GroundTruth

    config, task = ctx.config, ctx.task
    emitter = ctx.emitter()  # first: its checks (batch split, pool size) run before the archive computes anything
    archive = ctx.archive()
    algo = MAPElites(
        emitter, task.evaluate, compiler_options=getattr(task, "compiler_options", None),
        devices=checked_devices(config), ground_truth=GroundTruth.of_task(task),
    )

    def init(key):
        k_genotypes, k_algo = jax.random.split(key)
        return algo.init(archive, task.initial_genotypes(k_genotypes, config["batch_size"]), k_algo)

    return Job(config=config, task=task, init=init, scan=algo.scan, archive_of=lambda s: s.archive)


# --------------------------------------------------------------------------------------------- #
# The registries
# --------------------------------------------------------------------------------------------- #
ARCHIVES = Registry("archive")
ARCHIVES.register("grid", GridConfig, build_grid, "grid archive")
ARCHIVES.register("cvt", CVTConfig, build_cvt, "CVT archive")
ARCHIVES.register("dns", DNSConfig, build_dns, "Dominated Novelty Search population")

EMITTERS = Registry("emitter")
EMITTERS.register("iso_line", IsoLineConfig, build_iso_line, "iso+line variation (Vassiliades & Mouret 2018)")
EMITTERS.register("gaussian", GaussianConfig, build_gaussian, "Gaussian mutation")

SCHEDULERS = Registry("scheduler")
SCHEDULERS.register("composite", CompositeConfig, build_composite, "every emitter, each an equal share of the batch")
SCHEDULERS.register("bandit", BanditConfig, build_bandit, "UCB1 bandit over the emitters (Cully 2021)")

ALGORITHMS = Registry("algorithm")
ALGORITHMS.register("map_elites", MAPElitesConfig, build_map_elites, "MAP-Elites", uses=("archive", "emitter", "scheduler"))
ALGORITHMS.register("ns", exploration_jobs.NoveltySearchConfig, exploration_jobs.build_novelty_search, "novelty search")
ALGORITHMS.register("random", exploration_jobs.RandomSearchConfig, exploration_jobs.build_random_search, "random search",
                    uses=("archive",))

REGISTRIES: Dict[str, Registry] = {"algorithm": ALGORITHMS, "archive": ARCHIVES, "emitter": EMITTERS, "scheduler": SCHEDULERS}
