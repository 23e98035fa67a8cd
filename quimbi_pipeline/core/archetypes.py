"""Archetypes: the combination of a customer's dominant segments across the applicable axes.

An archetype's id is a hash of its signature, the sorted ``axis=segment`` pairs joined by ``|``,
so the same combination gets the same id in every run and every snapshot. Axis and segment
names are snake_case business words; ``=`` and ``|`` in them are rejected because they would
make two signatures collide.
"""

import hashlib
import json

import polars as pl

PAIR_SEPARATOR = "|"
KEY_SEPARATOR = "="


def archetype_id(signature: dict[str, str | None]) -> str:
    """The stable id of an axis -> segment map, independent of order; null segments are dropped."""
    pairs = sorted(
        f"{axis}{KEY_SEPARATOR}{segment}"
        for axis, segment in signature.items()
        if segment is not None
    )
    return hash_key(PAIR_SEPARATOR.join(pairs))


def hash_key(key: str) -> str:
    """The id of a signature key whose pairs are already sorted and joined."""
    digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False)
    return "a_" + digest.hexdigest()[:12]


def _signature_json(key: str) -> str:
    """The JSON object, sorted by axis, of a signature key built by ``archetype_frame``."""
    pairs = (pair.split(KEY_SEPARATOR, 1) for pair in key.split(PAIR_SEPARATOR) if pair)
    return json.dumps(dict(pairs), sort_keys=True)


def archetype_frame(dominant: pl.DataFrame) -> pl.DataFrame:
    """Each customer's archetype from their dominant segment on each axis.

    Args:
        dominant: Long frame ``customer_id``, ``axis``, ``dominant_segment``, one row per
            customer and axis; a null segment marks an axis not applicable to the customer.

    Returns:
        ``customer_id``, ``archetype_id`` and ``signature`` (JSON object of axis -> segment,
        sorted by axis; ``{}`` for a customer with no applicable axis), sorted by customer.
    """
    names = dominant.select("customer_id", "axis", "dominant_segment")
    if names.select("customer_id", "axis").is_duplicated().any():
        raise ValueError("dominant must hold one row per customer_id and axis")
    separators = f"[{KEY_SEPARATOR}{PAIR_SEPARATOR}]"
    bad = names.filter(
        pl.col("axis").str.contains(separators)
        | pl.col("dominant_segment").str.contains(separators)
    )
    if bad.height:
        raise ValueError(f"axis or segment names contain '=' or '|': {bad.head(3).rows()}")
    # Pair strings are sorted (not axes) so the key matches archetype_id's sorted pairs exactly.
    keys = names.group_by("customer_id").agg(
        key=(pl.col("axis") + KEY_SEPARATOR + pl.col("dominant_segment"))
        .drop_nulls()
        .sort()
        .str.join(PAIR_SEPARATOR)
    )
    # Hashed in Python once per distinct signature, usually far fewer than customers.
    distinct = keys.get_column("key").unique().to_list()
    lookup = pl.DataFrame(
        {
            "key": distinct,
            "archetype_id": [hash_key(key) for key in distinct],
            "signature": [_signature_json(key) for key in distinct],
        },
        schema={"key": pl.String(), "archetype_id": pl.String(), "signature": pl.String()},
    )
    return (
        keys.join(lookup, on="key", how="left")
        .select("customer_id", "archetype_id", "signature")
        .sort("customer_id")
    )


def top_archetypes(archetypes: pl.DataFrame, n: int = 20) -> pl.DataFrame:
    """The ``n`` most common archetypes with ``customers`` and ``share`` of all customers."""
    total = archetypes.height
    return (
        archetypes.group_by("archetype_id", "signature")
        .agg(customers=pl.len())
        .with_columns(share=pl.col("customers") / total)
        .sort(["customers", "archetype_id"], descending=[True, False])
        .head(n)
        .select("archetype_id", "customers", "share", "signature")
    )
