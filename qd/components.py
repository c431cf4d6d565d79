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

from qd.jobs import (  # noqa: F401  (flat_genotype_dim: its historic home is here)
    BuildContext, Job, checked_devices, driver_job, descriptor_bounds, flat_genotype_dim, genotype_clip, genotype_template,
)
from qd.options import (
    Choice, ConfigError, Model, NonNegativeFloat, OptionalFloatOrMinusInf, OptionalNumbers, OptionalPositiveInt,
    PositiveFloat, PositiveInt, PositiveInts, UnitFloat,
)
from qd.registry import Registry
from qd import exploration_jobs, learned_jobs, serene_jobs


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


class CMAMEConfig(Model):
    sigma0: PositiveFloat = Field(0.5, description="CMA-ME/CMA-MAE: initial (and restart) step size of each CMA-ES instance")
    num_instances: OptionalPositiveInt = Field(
        None, description="CMA-ME/CMA-MAE: CMA-ES instances sharing the emitter's batch (default: as many as leave "
        "each CMA-ES's default population 4 + 3 ln D)",
    )


class CMAMAEConfig(CMAMEConfig):
    alpha: UnitFloat = Field(0.01, description="CMA-MAE: archive learning rate in [0, 1] (1: CMA-ME's archive, 0: CMA-ES)")
    threshold_min: OptionalFloatOrMinusInf = Field(
        None, description="CMA-MAE: threshold of empty cells (default: the task's QD-score offset; -inf, written --threshold-min=-inf, only with alpha 1)"
    )


def cma_split(num_instances, batch_size: int, dim: int, what: str) -> tuple:
    """``(K, P)``: CMA-ES instances and population of each for a member's ``batch_size = K * P`` candidates.

    ``num_instances`` None: the largest ``K`` that divides ``batch_size`` with ``P >= 4 + floor(3 ln D)``
    (CMA-ES's default population), or ``K = 1``.

    Raises:
        ConfigError: ``batch_size`` not a multiple of ``num_instances``, or a population below 2.
    """
    from emitters.cmaes import default_population

    if num_instances is None:
        smallest = max(2, default_population(dim))
        fits = [k for k in range(1, batch_size + 1) if batch_size % k == 0 and batch_size // k >= smallest]
        num_instances = fits[-1] if fits else 1
    if batch_size % num_instances:
        raise ConfigError(
            f"--num-instances: {what}'s {batch_size} candidates per iteration do not split evenly over "
            f"{num_instances} CMA-ES instances"
        )
    population = batch_size // num_instances
    if population < 2:
        raise ConfigError(
            f"--num-instances: {what} would have a population of {population} per CMA-ES instance; at least 2"
        )
    return num_instances, population


def _cma_builder(class_name: str, emitter_name: str):
    def build(cfg: CMAMEConfig, ctx: BuildContext, batch_size: int):
        import emitters

        what = f"--emitter {emitter_name}"
        dim = flat_genotype_dim(ctx, what)
        k, p = cma_split(cfg.num_instances, batch_size, dim, what)
        return getattr(emitters, class_name)(
            genotype_dim=dim, num_instances=k, population=p, sigma0=cfg.sigma0, clip=genotype_clip(ctx.task)
        )

    build.__name__ = build.__qualname__ = f"build_{emitter_name}"
    build.__doc__ = (
        f"``emitters.{class_name}`` on the task's flat genotype, its share of the batch split over CMA-ES instances "
        "(:func:`cma_split`), clipped to the task's genotype bounds."
    )
    return build


build_cma_me_imp = _cma_builder("ImprovementEmitter", "cma_me_imp")
build_cma_me_opt = _cma_builder("OptimizingEmitter", "cma_me_opt")
build_cma_me_rd = _cma_builder("RandomDirectionEmitter", "cma_me_rd")
build_cma_mae = _cma_builder("CMAMAEEmitter", "cma_mae")


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


THRESHOLD_ARCHIVES = ("grid", "cvt")  # the archives qd.archives.threshold.with_thresholds gives thresholds to


def annealing_of(ctx: BuildContext):
    """``(alpha, threshold_min)`` of the config's ``cma_mae`` emitters (None: there are none).

    ``threshold_min`` None is the task's QD-score offset.

    Raises:
        ConfigError: ``cma_mae`` emitters with different ``alpha`` / ``threshold_min`` (one optimisation
            archive has one of each), or settings CMA-MAE rejects (``threshold_min = -inf`` with ``alpha < 1``).
    """
    from qd.archives.threshold import check_cma_mae_settings

    settings = set()
    for section in ctx.config["emitter"]:
        _, cfg = ctx.component("emitter", section)
        if isinstance(cfg, CMAMAEConfig):
            tmin = _qd_offset(ctx.task) if cfg.threshold_min is None else cfg.threshold_min
            settings.add((cfg.alpha, tmin))
    if not settings:
        return None
    if len(settings) > 1:
        raise ConfigError(f"--alpha/--threshold-min: the cma_mae emitters share one archive; got {sorted(settings)}")
    alpha, tmin = settings.pop()
    try:
        return check_cma_mae_settings(alpha, tmin)
    except ValueError as e:
        raise ConfigError(f"--alpha/--threshold-min (emitter cma_mae): {e}") from None


def build_map_elites(cfg: MAPElitesConfig, ctx: BuildContext) -> Job:
    """MAP-Elites on the config's archive and emitters; the initial batch is ``batch_size`` random genotypes.
    On tasks with a ground truth (the sparse tasks) it reports the exploration metrics too.

    With ``cma_mae`` emitters it is CMA-MAE (:class:`qd.algorithms.CMAMAE`): the emitters see an optimisation
    archive with per-cell thresholds (the config's grid or CVT archive with ``alpha`` and ``threshold_min``),
    and the config's archive, plain, is the result archive that runs save and report."""
    import jax

    from qd.algorithms import CMAMAE, MAPElites
    from qd.metrics import GroundTruth

    config, task = ctx.config, ctx.task
    emitter = ctx.emitter()  # first: its checks (batch split, pool size) run before the archive computes anything
    annealing = annealing_of(ctx)
    if annealing is not None and config["archive"]["name"] not in THRESHOLD_ARCHIVES:
        raise ConfigError(
            f"--emitter cma_mae: needs an archive with cells (per-cell thresholds): "
            f"{', '.join(THRESHOLD_ARCHIVES)}; got --archive {config['archive']['name']}"
        )
    archive = ctx.archive()
    options = dict(
        compiler_options=getattr(task, "compiler_options", None), devices=checked_devices(config),
        ground_truth=GroundTruth.of_task(task),
    )
    if annealing is None:
        algo = MAPElites(emitter, task.evaluate, **options)
        archives = (archive,)
    else:
        from qd.archives.threshold import with_thresholds

        optimizer_archive = with_thresholds(archive, *annealing)
        algo = CMAMAE(emitter, task.evaluate, **options)
        archives = (optimizer_archive, archive)

    def init_args(key):
        k_genotypes, k_algo = jax.random.split(key)
        return (*archives, task.initial_genotypes(k_genotypes, config["batch_size"]), k_algo)

    return driver_job(config, task, algo, init_args, archive_of=lambda s: s.archive)


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
EMITTERS.register("cma_me_imp", CMAMEConfig, build_cma_me_imp, "CMA-ME improvement emitter (Fontaine et al. 2020)")
EMITTERS.register("cma_me_opt", CMAMEConfig, build_cma_me_opt, "CMA-ME optimizing emitter (CMA-ES with restarts)")
EMITTERS.register("cma_me_rd", CMAMEConfig, build_cma_me_rd, "CMA-ME random direction emitter")
EMITTERS.register("cma_mae", CMAMAEConfig, build_cma_mae, "CMA-MAE emitter and archive thresholds (Fontaine & Nikolaidis 2023)")

SCHEDULERS = Registry("scheduler")
SCHEDULERS.register("composite", CompositeConfig, build_composite, "every emitter, each an equal share of the batch")
SCHEDULERS.register("bandit", BanditConfig, build_bandit, "UCB1 bandit over the emitters (Cully 2021)")

ALGORITHMS = Registry("algorithm")
ALGORITHMS.register("map_elites", MAPElitesConfig, build_map_elites, "MAP-Elites", uses=("archive", "emitter", "scheduler"))
ALGORITHMS.register("ns", exploration_jobs.NoveltySearchConfig, exploration_jobs.build_novelty_search, "novelty search")
ALGORITHMS.register("random", exploration_jobs.RandomSearchConfig, exploration_jobs.build_random_search, "random search",
                    uses=("archive",))
_TAXONS = {
    "taxons": "TAXONS: novelty or surprise in a learned latent space (Paolo et al. 2020)",
    "taxo_n": "TAXO-N: TAXONS with novelty only",
    "taxo_s": "TAXO-S: TAXONS with surprise (reconstruction error) only",
    "nt": "NT: novelty in the latent space of an untrained autoencoder",
    "ps": "PS: novelty search with the genotype as descriptor (TAXONS baseline)",
    "rbd": "RBD: novelty search on a random descriptor (TAXONS baseline)",
    "ibd": "IBD: novelty search on the raw final image (TAXONS baseline)",
}
for _name, _description in _TAXONS.items():
    ALGORITHMS.register(_name, learned_jobs.TaxonsConfig, learned_jobs.build_taxons(_name), _description)
ALGORITHMS.register("aurora", learned_jobs.AuroraConfig, learned_jobs.build_aurora,
                    "AURORA: MAP-Elites in a learned latent space (Grillotti & Cully 2022)", uses=("emitter", "scheduler"))
ALGORITHMS.register("serene", serene_jobs.SereneConfig, serene_jobs.build_serene,
                    "SERENE: novelty search finds reward areas, local emitters exploit them, in budget chunks (Paolo et al. 2021)")
_STAX = {
    "stax": "STAX: SERENE in a behaviour space learned online by an autoencoder, novelty or surprise (Paolo et al. 2023)",
    "stax_p": "STAX-P: STAX selecting by NSGA-II on novelty and surprise (the STAX paper's plotted STAX)",
    "stax_nt": "STAX-NT: STAX in the space of an untrained autoencoder, novelty only (ablation)",
}
for _name, _description in _STAX.items():
    ALGORITHMS.register(_name, serene_jobs.StaxConfig, serene_jobs.build_stax(_name), _description)

REGISTRIES: Dict[str, Registry] = {"algorithm": ALGORITHMS, "archive": ARCHIVES, "emitter": EMITTERS, "scheduler": SCHEDULERS}
