"""Business names for the segments of one axis, read off where each centre sits.

Centres are in robust-scaled space, so a coordinate is "how many robust standard deviations
from the median customer". A segment is named after its most extreme feature, with that
feature's high or low word (``frequent_buyer`` / ``occasional_buyer``); coordinates inside
+-``NEUTRAL_BAND`` are not worth a word, and a segment with no such coordinate is
``typical_<axis>``. Names are unique across the whole hierarchy (parents included, so that
``segment_parents`` is unambiguous). Collisions are resolved, in this order, by

1. appending the segment's most extreme remaining word that the segments it collides with
   do not share (``frequent_buyer`` -> ``frequent_buyer_big_spender`` next to
   ``frequent_buyer_small_spender``), repeated while such words remain;
2. a qualifier relative to the segments it collides with, on the feature where they differ
   most, for collisions of two or three: an intensity prefix when that feature is the one the
   name already speaks of (``very_frequent_buyer`` / ``moderately_frequent_buyer``), else a
   relative suffix (``typical_frequency_higher_orders_per_month``);
3. a numeric suffix (``_2``, ``_3``), the last resort.

Parents are named before their children, so a parent keeps the short name and its children
carry the extension. The procedure depends only on the centres and their order, so the same
fit always gives the same names.
"""

import re

import numpy as np

# Coordinates within this many robust standard deviations of the median are "typical".
NEUTRAL_BAND = 0.5
# Words that say nothing once the axis is known ("purchase_frequency" -> "frequency").
_GENERIC_AXIS_WORDS = {"purchase", "customer", "behavior", "behaviour", "profile", "preference"}
_QUALIFIERS = {2: ("lower", "higher"), 3: ("lower", "mid", "higher")}
_INTENSITIES = {2: ("moderately", "very"), 3: ("mildly", "moderately", "very")}


def snake_case(text: str) -> str:
    """Lower snake_case of ``text``; a leading digit gets a ``segment_`` prefix."""
    out = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    if not out:
        return "segment"
    return f"segment_{out}" if out[0].isdigit() else out


def typical_name(axis: str) -> str:
    """``typical_<axis_short>``: the axis name without generic words."""
    parts = [p for p in snake_case(axis).split("_") if p not in _GENERIC_AXIS_WORDS]
    return "typical_" + "_".join(parts or snake_case(axis).split("_"))


def feature_words(
    feature_names: list[str], vocabulary: dict[str, tuple[str, str]]
) -> list[tuple[str, str]]:
    """(high, low) word per feature; a feature missing from the vocabulary gets high_/low_."""
    words = []
    for name in feature_names:
        high, low = vocabulary.get(name, (f"high_{name}", f"low_{name}"))
        words.append((snake_case(high), snake_case(low)))
    return words


def _ranked_words(centre: np.ndarray, words: list[tuple[str, str]]) -> list[str]:
    """Words of the features outside the neutral band, most extreme first."""
    order = np.argsort(-np.abs(centre), kind="stable")
    out = []
    for j in order:
        if abs(centre[j]) < NEUTRAL_BAND:
            break
        word = words[j][0] if centre[j] > 0 else words[j][1]
        if word not in out:
            out.append(word)
    return out


def _conflicts(names: dict[int, str], taken: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """Colliding names of the group: name -> members of the group carrying it."""
    by_name: dict[str, list[int]] = {}
    for i, name in names.items():
        by_name.setdefault(name, []).append(i)
    return {n: ids for n, ids in by_name.items() if n in taken or len(ids) > 1}


def _name_group(
    ids: list[int],
    centres: np.ndarray,
    words: list[tuple[str, str]],
    feature_names: list[str],
    typical: str,
    taken: dict[str, np.ndarray],
) -> dict[int, str]:
    """Unique names for the sibling segments ``ids`` given the names already ``taken``."""
    ranked = {i: _ranked_words(centres[i], words) for i in ids}
    parts = {i: ranked[i][:1] for i in ids}
    names = {i: "_".join(parts[i]) or typical for i in ids}

    # 1. Extend each colliding name with its most extreme unused word that the segments it
    #    collides with lack (ideally all of them), so the extension tells them apart.
    while conflicts := _conflicts(names, taken):
        extended = {}
        for name, members in conflicts.items():
            holder = [set(_ranked_words(taken[name], words))] if name in taken else []
            for i in members:
                rivals = [set(ranked[j]) for j in members if j != i] + holder
                best, best_count = None, 0
                for word in ranked[i]:
                    count = sum(word not in r for r in rivals)
                    if word not in parts[i] and count > best_count:
                        best, best_count = word, count
                if best is not None:
                    extended[i] = best
        if not extended:
            break
        for i, word in extended.items():
            parts[i].append(word)
            names[i] = "_".join(parts[i])

    # 2. Qualify against the segments sharing the name, on the feature where they differ most:
    #    an intensity prefix when that is the feature the name already speaks of
    #    (very_frequent_buyer), else a relative suffix (..._higher_lifetime_value).
    word_feature = {w: j for j, pair in reversed(list(enumerate(words))) for w in pair}
    for name, members in _conflicts(names, taken).items():
        group = [centres[i] for i in members] + ([taken[name]] if name in taken else [])
        if len(group) not in _QUALIFIERS:
            continue
        stacked = np.vstack(group)
        feature = int(np.argmax(np.ptp(stacked, axis=0)))
        primary = word_feature.get(parts[members[0]][0]) if parts[members[0]] else None
        values = np.abs(stacked[:, feature]) if feature == primary else stacked[:, feature]
        ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
        for pos, i in enumerate(members):
            if feature == primary:
                names[i] = f"{_INTENSITIES[len(group)][ranks[pos]]}_{name}"
            else:
                qualifier = _QUALIFIERS[len(group)][ranks[pos]]
                names[i] = f"{name}_{qualifier}_{snake_case(feature_names[feature])}"

    # 3. Numeric suffix for whatever still collides, in segment order.
    final: dict[int, str] = {}
    seen = set(taken)
    for i in ids:
        name, n = names[i], 2
        while name in seen:
            name = f"{names[i]}_{n}"
            n += 1
        seen.add(name)
        final[i] = name
    return final


def name_segments(
    axis: str,
    feature_names: list[str],
    vocabulary: dict[str, tuple[str, str]],
    centres: np.ndarray,
    parents: list[int | None],
) -> list[str]:
    """Unique snake_case names for every node of a segment hierarchy.

    Args:
        axis: the axis name, used for ``typical_<axis_short>``.
        feature_names: one per column of ``centres``.
        vocabulary: feature -> (word when high, word when low).
        centres: (n_nodes, n_features) centres in robust-scaled space.
        parents: for each node the index of its parent node, or None at the top level;
            a parent must come before its children.

    Returns:
        One name per node, in node order.
    """
    centres = np.asarray(centres, dtype=np.float64)
    words = feature_words(feature_names, vocabulary)
    typical = typical_name(axis)
    groups: dict[int | None, list[int]] = {}
    for i, parent in enumerate(parents):
        groups.setdefault(parent, []).append(i)
    taken: dict[str, np.ndarray] = {}
    names: dict[int, str] = {}
    # Top level first, then each parent's children in node order (parents precede children).
    for key in [None, *range(len(parents))]:
        if key not in groups:
            continue
        group_names = _name_group(groups[key], centres, words, feature_names, typical, taken)
        for i, name in group_names.items():
            names[i] = name
            taken[name] = centres[i]
    return [names[i] for i in range(len(parents))]
