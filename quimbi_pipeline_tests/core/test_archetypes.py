import hashlib
import json

import polars as pl
import pytest

from quimbi_pipeline.core.archetypes import archetype_frame, archetype_id, top_archetypes


def _dominant(rows: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"customer_id": pl.String, "axis": pl.String, "dominant_segment": pl.String},
        orient="row",
    )


def test_id_is_sha1_of_sorted_pairs() -> None:
    expected = hashlib.sha1(b"price=deal_hunter|timing=weekday").hexdigest()[:12]
    assert archetype_id({"timing": "weekday", "price": "deal_hunter"}) == "a_" + expected


def test_id_is_independent_of_axis_order() -> None:
    forward = {"price": "deal_hunter", "timing": "weekday", "channel": "web"}
    backward = dict(reversed(list(forward.items())))
    assert list(forward) != list(backward)
    assert archetype_id(forward) == archetype_id(backward)


@pytest.mark.parametrize(
    "other",
    [
        {"price": "full_price", "timing": "weekday"},
        {"price": "deal_hunter"},
        {"price": "deal_hunter", "timing": "weekday", "channel": "web"},
        {"price": "weekday", "timing": "deal_hunter"},
    ],
)
def test_different_signatures_have_different_ids(other: dict[str, str]) -> None:
    assert archetype_id({"price": "deal_hunter", "timing": "weekday"}) != archetype_id(other)


def test_null_segments_are_left_out_of_the_id() -> None:
    with_null = {"price": "deal_hunter", "timing": None}
    assert archetype_id(with_null) == archetype_id({"price": "deal_hunter"})


def test_frame_matches_the_scalar_id_and_sorts_signature_by_axis() -> None:
    # Axes "a" and "a0" sort differently as axes and as "axis=segment" strings.
    dominant = _dominant(
        [
            ("c2", "a0", "y"),
            ("c1", "a", "x"),
            ("c1", "a0", "y"),
            ("c2", "a", "x"),
            ("c3", "a", "x"),
            ("c3", "a0", None),
        ]
    )
    frame = archetype_frame(dominant)
    assert frame.columns == ["customer_id", "archetype_id", "signature"]
    assert frame["customer_id"].to_list() == ["c1", "c2", "c3"]
    ids = dict(frame.select("customer_id", "archetype_id").iter_rows())
    assert ids["c1"] == ids["c2"] == archetype_id({"a0": "y", "a": "x"})
    assert ids["c3"] == archetype_id({"a": "x"}) != ids["c1"]
    signature = frame.filter(pl.col("customer_id") == "c1")["signature"].item()
    assert signature == '{"a": "x", "a0": "y"}'
    assert json.loads(signature) == {"a": "x", "a0": "y"}


def test_frame_is_independent_of_row_order() -> None:
    rows = [(f"c{i}", axis, f"s{(i + j) % 3}") for i in range(30) for j, axis in enumerate("pqr")]
    dominant = _dominant(rows)
    assert archetype_frame(dominant.reverse()).equals(archetype_frame(dominant))


def test_customer_with_no_applicable_axis_gets_the_empty_archetype() -> None:
    frame = archetype_frame(_dominant([("c1", "price", None), ("c1", "timing", None)]))
    assert frame.row(0) == ("c1", archetype_id({}), "{}")


@pytest.mark.parametrize(
    "row", [("c1", "price|x", "deal_hunter"), ("c1", "price", "a=b"), ("c1", "price", "a|b")]
)
def test_separator_in_a_name_is_rejected(row: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError, match="contain"):
        archetype_frame(_dominant([row]))


def test_duplicate_customer_axis_is_rejected() -> None:
    with pytest.raises(ValueError, match="one row per"):
        archetype_frame(_dominant([("c1", "price", "a"), ("c1", "price", "b")]))


def test_top_archetypes_sizes_shares_and_order() -> None:
    rows = [(f"big{i}", "price", "deal_hunter") for i in range(5)]
    rows += [(f"mid{i}", "price", "full_price") for i in range(3)]
    rows += [("one", "price", "premium"), ("two", "price", "browser")]
    top = top_archetypes(archetype_frame(_dominant(rows)), n=3)
    assert top.columns == ["archetype_id", "customers", "share", "signature"]
    assert top["customers"].to_list() == [5, 3, 1]
    assert top["share"].to_list() == pytest.approx([0.5, 0.3, 0.1])
    assert top["signature"][0] == '{"price": "deal_hunter"}'
    # The two singletons tie on size; the smaller id wins the last place.
    singleton_ids = sorted([archetype_id({"price": "premium"}), archetype_id({"price": "browser"})])
    assert top["archetype_id"][2] == singleton_ids[0]
