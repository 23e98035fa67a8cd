"""Stratified sampling of customers by lifetime-value tier, as the reference system did.

Tiers come from percentile cuts of ``lifetime_value`` (linear interpolation, as numpy's
default ``percentile``): ``vip`` at or above the 95th percentile, ``high`` from the 80th to the
95th, ``mid`` from the 50th to the 80th and ``low`` below the 50th. A value equal to a cut goes to
the upper tier, so ties at a cut land together and the split is deterministic. A customer with
a null ``lifetime_value`` has no evidence of value and is put in ``low``.

Each tier asks for ``round(total * share)`` customers (largest remainder, so the requests sum to
``total``) and gets at most its population. A shortfall is deliberately not redistributed to
the other tiers: that would silently change the tier mix the model is fitted on. The realised
sizes are exposed by ``sample_plan`` so an asset can report them.

The mix is skewed on purpose (the top 5% of customers make a fifth of the sample), so a model
fitted on the sample as it is describes a richer shop than the real one. ``design_weights``
gives every sampled customer the weight its tier needs to stand for its share of the
population (tier population / tier sample size), which the model fits use.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

TIERS: tuple[str, ...] = ("vip", "high", "mid", "low")

# Lower percentile bound of each tier except "low", which takes everything below "mid".
_TIER_FLOORS: dict[str, float] = {"vip": 0.95, "high": 0.80, "mid": 0.50}

_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "value_tier": pl.String(),
    "lifetime_value": pl.Float64(),
}


@dataclass(frozen=True)
class SampleConfig:
    """How many customers to sample and how to split them across value tiers."""

    total: int = 5000
    shares: dict[str, float] = field(
        default_factory=lambda: {"vip": 0.2, "high": 0.3, "mid": 0.3, "low": 0.2}
    )

    def __post_init__(self) -> None:
        if self.total < 0:
            raise ValueError(f"total must be >= 0, got {self.total}")
        if set(self.shares) != set(TIERS):
            raise ValueError(
                f"shares must name exactly the tiers {TIERS}, got {sorted(self.shares)}"
            )
        if any(share < 0 for share in self.shares.values()):
            raise ValueError(f"shares must be >= 0, got {self.shares}")
        if not math.isclose(sum(self.shares.values()), 1.0, abs_tol=1e-9):
            raise ValueError(f"shares must sum to 1, got {sum(self.shares.values())}")

    def requested_sizes(self) -> dict[str, int]:
        """Per-tier request, rounded by largest remainder so the sizes sum to ``total``."""
        exact = {tier: self.total * self.shares[tier] for tier in TIERS}
        sizes = {tier: math.floor(value) for tier, value in exact.items()}
        # Ties in the remainder go to the earlier tier in TIERS, so rounding is deterministic.
        by_remainder = sorted(TIERS, key=lambda t: (-(exact[t] - sizes[t]), TIERS.index(t)))
        for tier in by_remainder[: self.total - sum(sizes.values())]:
            sizes[tier] += 1
        return sizes


def value_tiers(metrics: pl.DataFrame) -> pl.DataFrame:
    """Add a ``value_tier`` column from percentile cuts of ``lifetime_value``."""
    value = pl.col("lifetime_value")
    tier = pl.lit("low")
    # Built from the lowest floor up so the highest matching tier wins.
    for name in ("mid", "high", "vip"):
        cut = value.quantile(_TIER_FLOORS[name], interpolation="linear")
        tier = pl.when(value >= cut).then(pl.lit(name)).otherwise(tier)
    return metrics.with_columns(value_tier=tier)


def sample_plan(metrics: pl.DataFrame, config: SampleConfig = SampleConfig()) -> pl.DataFrame:
    """Per tier: ``population``, ``requested`` and ``sampled`` (request capped by population)."""
    return _plan(value_tiers(metrics), config)


def _plan(tiered: pl.DataFrame, config: SampleConfig) -> pl.DataFrame:
    population = dict(tiered.group_by("value_tier").len().iter_rows())
    requested = config.requested_sizes()
    return pl.DataFrame(
        {
            "value_tier": list(TIERS),
            "population": [population.get(tier, 0) for tier in TIERS],
            "requested": [requested[tier] for tier in TIERS],
        },
        schema={"value_tier": pl.String(), "population": pl.Int64(), "requested": pl.Int64()},
    ).with_columns(sampled=pl.min_horizontal("population", "requested"))


def stratified_sample(
    metrics: pl.DataFrame, config: SampleConfig = SampleConfig(), *, seed: int = 0
) -> pl.DataFrame:
    """Sample customers per value tier, reproducibly for a seed whatever the input row order.

    Args:
        metrics: One row per customer with ``customer_id`` and ``lifetime_value``.
        config: Total size and tier shares; each tier is capped by its population.
        seed: Seed of the sampler; the same seed and customers give the same sample.

    Returns:
        ``customer_id``, ``value_tier``, ``lifetime_value``, sorted by tier then customer.
    """
    if metrics.get_column("customer_id").is_duplicated().any():
        raise ValueError("metrics must hold one row per customer_id")
    # Sorting first makes the draw depend on the customers, not on how the rows arrived.
    tiered = (
        value_tiers(metrics.select("customer_id", "lifetime_value"))
        .with_columns(pl.col("lifetime_value").cast(pl.Float64))
        .sort("customer_id")
    )
    sizes = dict(_plan(tiered, config).select("value_tier", "sampled").iter_rows())
    parts = [pl.DataFrame(schema=_SAMPLE_SCHEMA)]
    for index, tier in enumerate(TIERS):
        members = tiered.filter(pl.col("value_tier") == tier)
        # One stream per tier: a tier's draw does not shift when another tier's size changes.
        rng = np.random.default_rng([seed, index])
        chosen = rng.choice(members.height, size=sizes[tier], replace=False)
        parts.append(members[np.sort(chosen)].select(list(_SAMPLE_SCHEMA)))
    return pl.concat(parts)


def design_weights(sample: pl.DataFrame, metrics: pl.DataFrame) -> pl.DataFrame:
    """``customer_id`` and ``weight`` of each sampled customer: tier population / tier sample.

    Args:
        sample: A ``stratified_sample`` result (``customer_id``, ``value_tier``).
        metrics: The population it was drawn from (``customer_id``, ``lifetime_value``), which
            fixes the tier populations exactly as the draw saw them.
    """
    population = value_tiers(metrics.select("customer_id", "lifetime_value"))
    counts = population.group_by("value_tier").agg(pl.len().cast(pl.Float64).alias("population"))
    drawn = sample.group_by("value_tier").agg(pl.len().cast(pl.Float64).alias("sampled"))
    ratios = counts.join(drawn, on="value_tier").select(
        "value_tier", (pl.col("population") / pl.col("sampled")).alias("weight")
    )
    return (
        sample.select("customer_id", "value_tier")
        .join(ratios, on="value_tier", how="left", maintain_order="left")
        .select("customer_id", "weight")
    )
