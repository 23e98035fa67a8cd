"""Latent personas and the product catalogue of the synthetic shop.

Every customer holds one persona per behavioral axis (see shared/AXES.md). Eight axes are drawn
independently from fixed, deliberately uneven mixes; the other six are derived (from the
acquisition date, from the planted events, or from a pair of drawn axes) so that every label stays
visible in the signals the features compute. Personas are small integer codes indexing
``VOCABULARY[axis]``; -1 marks an axis that does not apply (support-only contacts never order).
"""

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

AXES: tuple[str, ...] = (
    "purchase_frequency",
    "purchase_value",
    "category_exploration",
    "price_sensitivity",
    "purchase_cadence",
    "customer_maturity",
    "repurchase_behavior",
    "return_behavior",
    "communication_preference",
    "problem_complexity_profile",
    "loyalty_trajectory",
    "product_knowledge",
    "value_sophistication",
    "support_history",
)

# Independently drawn axes, label -> share. Uneven on purpose (real shops are), but no label
# falls under ~8% of customers, so a clustering always has something to recover.
DRAWN_MIX: dict[str, dict[str, float]] = {
    "purchase_frequency": {
        "weekly_shopper": 0.08,
        "monthly_regular": 0.22,
        "occasional": 0.45,
        "one_time": 0.25,
    },
    "purchase_value": {"budget": 0.37, "mid_spender": 0.35, "premium": 0.28},
    "category_exploration": {"specialist": 0.55, "explorer": 0.45},
    "price_sensitivity": {"full_price_buyer": 0.65, "deal_hunter": 0.35},
    "purchase_cadence": {
        "weekday_business_hours": 0.40,
        "evening_owl": 0.35,
        "weekend_daytime": 0.25,
    },
    "repurchase_behavior": {"variety_seeker": 0.55, "repeat_buyer": 0.45},
    "return_behavior": {"keeper": 0.80, "high_returner": 0.20},
    "communication_preference": {"web_only": 0.50, "store_shopper": 0.20, "multichannel": 0.30},
}

_DERIVED_VOCABULARY: dict[str, tuple[str, ...]] = {
    # Tenure thirds of the history: with 36 months the cuts fall at 12 and 24 months.
    "customer_maturity": ("new", "established", "veteran"),
    # declining = churners plus customers whose frequency drops to a tenth at change_date.
    "loyalty_trajectory": ("steady", "growing", "declining"),
    # category_exploration x repurchase_behavior, in that order.
    "product_knowledge": (
        "deep_specialist",
        "category_browser",
        "routine_generalist",
        "novice_explorer",
    ),
    # (premium or not) x price_sensitivity.
    "value_sophistication": ("practical_buyer", "bargain_seeker", "connoisseur", "savvy_premium"),
    "support_history": ("no_contact", "light_contact", "heavy_contact"),
    "problem_complexity_profile": ("no_contact", "simple", "complex"),
}

VOCABULARY: dict[str, tuple[str, ...]] = {
    axis: tuple(DRAWN_MIX[axis]) if axis in DRAWN_MIX else _DERIVED_VOCABULARY[axis]
    for axis in AXES
}

CUSTOMER_ID_BASE = 7_000_000_001  # Customer_ID = base + customer index: 7000000001, ...

SUPPORT_AXES: frozenset[str] = frozenset({"support_history", "problem_complexity_profile"})

# A planted change of behavior on change_date, and the axes whose signals it moves.
CHANGE_AXES: dict[str, tuple[str, ...]] = {
    "frequency_drop": ("purchase_frequency", "loyalty_trajectory"),
    "became_deal_hunter": ("price_sensitivity", "value_sophistication"),
    "started_returning": ("return_behavior",),
}
CHANGE_KIND_MIX: tuple[float, ...] = (0.40, 0.30, 0.30)
# Population.change_kind codes, in CHANGE_AXES order (0 = no change).
FREQUENCY_DROP, BECAME_DEAL_HUNTER, STARTED_RETURNING = 1, 2, 3

MATURITY_MIX: dict[str, float] = {"veteran": 0.30, "established": 0.30, "new": 0.40}
COHORT_SHARE = 0.5  # of veterans: the customers the shop already had on day one
COHORT_DAYS = 30
CHANGER_SHARE = 0.15
CHURNER_SHARE = 0.10
GROWER_SHARE = 0.12
SUPPORT_ONLY_SHARE = 0.02  # of ticket filers: contacts who never order
HEAVY_CONTACT_SHARE = 0.40  # of ticket filers
COMPLEX_SHARE = 0.40  # of ticket filers
MIN_HISTORY_DAYS = 183  # an event needs ~6 months of the customer's history before it
MIN_AFTER_DAYS = 90  # and ~3 months after it, or nothing could show it


def code_of(axis: str, label: str) -> int:
    """The integer code of ``label`` on ``axis``."""
    return VOCABULARY[axis].index(label)


@dataclass(frozen=True)
class Population:
    """Latent truth per customer; all arrays have one entry per customer."""

    codes: dict[str, np.ndarray]  # axis -> int8 persona code, -1 = not applicable
    planned_first_day: np.ndarray  # days since start; -1 for support-only contacts
    change_day: np.ndarray  # -1 when no change
    change_kind: np.ndarray  # 0 = none, else 1 + position in CHANGE_AXES
    churn_day: np.ndarray  # last day the customer may order; -1 when no churn
    has_orders: np.ndarray
    has_tickets: np.ndarray


def _draw(rng: np.random.Generator, n: int, shares: dict[str, float]) -> np.ndarray:
    p = np.array(list(shares.values()))
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def _planned_first_day(rng: np.random.Generator, n: int, total_days: int) -> np.ndarray:
    """Acquisition day: a cohort on day one, the rest spread over the history by band."""
    band = _draw(rng, n, MATURITY_MIX)  # 0 veteran, 1 established, 2 new
    third = total_days / 3
    day = (band + rng.random(n)) * third
    cohort = (band == 0) & (rng.random(n) < COHORT_SHARE)
    day[cohort] = rng.integers(0, COHORT_DAYS, size=int(cohort.sum()))
    return np.minimum(day.astype(np.int32), total_days - 1)


def _event_day(rng: np.random.Generator, first_day: np.ndarray, total_days: int) -> np.ndarray:
    """A day in the second half with enough history before and after it; -1 if none fits."""
    lo = np.maximum(total_days // 2, first_day + MIN_HISTORY_DAYS)
    hi = total_days - 1 - MIN_AFTER_DAYS
    day = lo + (rng.random(first_day.size) * (hi - lo + 1)).astype(np.int32)
    return np.where(lo <= hi, day, -1).astype(np.int32)


def _pick(rng: np.random.Generator, eligible: np.ndarray, share: float, base: int) -> np.ndarray:
    """Pick about ``share * base`` customers among ``eligible``."""
    p = min(1.0, share * base / max(1, int(eligible.sum())))
    return eligible & (rng.random(eligible.size) < p)


def draw_population(
    rng: np.random.Generator, n: int, total_days: int, ticket_share: float
) -> Population:
    """Draw every customer's personas, acquisition day and planted change or churn."""
    codes = {axis: _draw(rng, n, mix) for axis, mix in DRAWN_MIX.items()}
    has_tickets = rng.random(n) < ticket_share
    has_orders = ~(has_tickets & (rng.random(n) < SUPPORT_ONLY_SHARE))
    first_day = _planned_first_day(rng, n, total_days)
    buyers = int(has_orders.sum())

    repeat = has_orders & (codes["purchase_frequency"] != code_of("purchase_frequency", "one_time"))
    event_day = _event_day(rng, first_day, total_days)
    eligible = repeat & (event_day >= 0)
    changer = _pick(rng, eligible, CHANGER_SHARE, buyers)
    churner = _pick(rng, eligible & ~changer, CHURNER_SHARE, buyers)
    kind = _draw(rng, n, dict(zip(CHANGE_AXES, CHANGE_KIND_MIX, strict=True))) + 1
    # A deal hunter cannot become one, a high returner cannot start returning: they drop instead.
    is_deal = codes["price_sensitivity"] == code_of("price_sensitivity", "deal_hunter")
    is_returner = codes["return_behavior"] == code_of("return_behavior", "high_returner")
    kind[((kind == BECAME_DEAL_HUNTER) & is_deal) | ((kind == STARTED_RETURNING) & is_returner)] = (
        FREQUENCY_DROP
    )
    kind = np.where(changer, kind, 0).astype(np.int8)
    grows = repeat & (first_day <= total_days - 1 - MIN_HISTORY_DAYS) & ~changer & ~churner
    grower = _pick(rng, grows, GROWER_SHARE, buyers)

    loyalty = np.where(grower, code_of("loyalty_trajectory", "growing"), 0)
    declining = churner | (kind == FREQUENCY_DROP)
    codes["loyalty_trajectory"] = np.where(
        declining, code_of("loyalty_trajectory", "declining"), loyalty
    ).astype(np.int8)
    explorer = codes["category_exploration"] == code_of("category_exploration", "explorer")
    variety = codes["repurchase_behavior"] == code_of("repurchase_behavior", "variety_seeker")
    codes["product_knowledge"] = (2 * explorer + variety).astype(np.int8)
    premium = codes["purchase_value"] == code_of("purchase_value", "premium")
    codes["value_sophistication"] = (2 * premium + is_deal).astype(np.int8)
    heavy = rng.random(n) < HEAVY_CONTACT_SHARE
    complex_ = rng.random(n) < COMPLEX_SHARE
    codes["support_history"] = np.where(has_tickets, 1 + heavy, 0).astype(np.int8)
    codes["problem_complexity_profile"] = np.where(has_tickets, 1 + complex_, 0).astype(np.int8)
    # The planned band; ground_truth relabels from the realised first order (a few days apart).
    codes["customer_maturity"] = maturity_codes(first_day, total_days)
    for axis in AXES:
        if axis not in SUPPORT_AXES:
            codes[axis] = np.where(has_orders, codes[axis], -1).astype(np.int8)
    return Population(
        codes={axis: codes[axis] for axis in AXES},
        planned_first_day=np.where(has_orders, first_day, -1).astype(np.int32),
        change_day=np.where(changer, event_day, -1).astype(np.int32),
        change_kind=kind,
        churn_day=np.where(churner, event_day, -1).astype(np.int32),
        has_orders=has_orders,
        has_tickets=has_tickets,
    )


def maturity_codes(first_day: np.ndarray, total_days: int) -> np.ndarray:
    """Maturity from the first-order day: veteran in the first third of the history, new last."""
    third = total_days / 3
    code = np.where(first_day < third, 2, np.where(first_day < 2 * third, 1, 0))
    return np.where(first_day >= 0, code, -1).astype(np.int8)


def _dates(start: date, day: np.ndarray) -> pl.Series:
    """Days since ``start`` as a Date series, null where ``day`` is negative."""
    epoch_day = (start - date(1970, 1, 1)).days
    values = pl.Series(np.where(day >= 0, epoch_day + day, 0).astype(np.int32))
    return pl.select(pl.when(pl.Series(day >= 0)).then(values.cast(pl.Date))).to_series()


def ground_truth(
    pop: Population, first_day: np.ndarray, start: date, total_days: int
) -> pl.DataFrame:
    """One row per customer: the persona on each axis and the planted dates.

    Args:
        first_day: realised first-order day per customer (-1 for support-only contacts); it,
            not the planned day, sets customer_maturity and first_order_date.
    """
    codes = pop.codes | {"customer_maturity": maturity_codes(first_day, total_days)}
    changed = pl.Series(
        [[], *(list(axes) for axes in CHANGE_AXES.values())], dtype=pl.List(pl.String)
    )
    ids = (CUSTOMER_ID_BASE + np.arange(first_day.size)).astype(str)
    columns = {"customer_id": pl.Series(ids)}
    for axis in AXES:
        code = pl.Series(codes[axis].astype(np.int64))
        index = pl.select(pl.when(code >= 0).then(code)).to_series()
        columns[f"persona__{axis}"] = pl.Series(VOCABULARY[axis]).gather(index)
    columns |= {
        "first_order_date": _dates(start, first_day),
        "change_date": _dates(start, pop.change_day),
        "changed_axes": changed.gather(pl.Series(pop.change_kind.astype(np.int64))),
        "churn_date": _dates(start, pop.churn_day),
        "has_tickets": pl.Series(pop.has_tickets),
    }
    return pl.DataFrame(columns)


# Category -> product types. Three price tiers per type keep value and category independent.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Kitchen": ("Cookware", "Utensils", "Drinkware"),
    "Home Decor": ("Candles", "Wall Art", "Textiles"),
    "Bath & Body": ("Soap", "Lotion", "Bath Salts"),
    "Apparel": ("Tops", "Bottoms", "Outerwear"),
    "Footwear": ("Sneakers", "Boots", "Sandals"),
    "Outdoor": ("Camping", "Garden", "Cycling"),
    "Electronics": ("Audio", "Chargers", "Smart Home"),
    "Toys & Games": ("Puzzles", "Board Games", "Plush"),
    "Pet Supplies": ("Dog", "Cat", "Aquarium"),
    "Beauty": ("Skincare", "Makeup", "Hair Care"),
    "Books": ("Fiction", "Cookbooks", "Kids Books"),
    "Grocery": ("Coffee", "Tea", "Snacks"),
}
TIERS: tuple[str, ...] = ("budget", "mid", "premium")
PRODUCTS_PER_BLOCK = 56  # per (category, tier): 12 x 3 x 56 = 2,016 products
TIER_MEDIAN_PRICE: tuple[float, ...] = (12.0, 40.0, 140.0)
# Popularity of categories for explorers and for drawing specialists' home category.
CATEGORY_WEIGHTS: np.ndarray = (
    np.linspace(1.6, 0.5, len(CATEGORIES)) / np.linspace(1.6, 0.5, len(CATEGORIES)).sum()
)
_ADJECTIVES = ("Classic", "Everyday", "Rustic", "Modern", "Deluxe", "Compact", "Organic", "Pro")
_COLOURS = ("Black", "Sage", "Navy", "Oat", "Terracotta", "Slate")
PRODUCT_ID_BASE = 8_000_000_000


@dataclass(frozen=True)
class Catalogue:
    """Products ordered by (category, tier) so a block is one contiguous index range."""

    products: pl.DataFrame  # Sku, ProductId, Title, ProductType, Category
    price: np.ndarray


def build_catalogue(rng: np.random.Generator) -> Catalogue:
    """Generate ~2,000 products in 12 categories and three price tiers."""
    n_cat, n_tier, per = len(CATEGORIES), len(TIERS), PRODUCTS_PER_BLOCK
    idx = np.arange(n_cat * n_tier * per)
    cat, tier = idx // (n_tier * per), (idx // per) % n_tier
    ptype = rng.integers(0, 3, idx.size)
    median = np.asarray(TIER_MEDIAN_PRICE)[tier]
    price = np.floor(median * rng.lognormal(0.0, 0.35, idx.size)) + 0.99
    adjective = rng.integers(0, len(_ADJECTIVES), idx.size)
    # Commas and inch marks in titles make sure the CSV quoting is exercised downstream.
    suffix = rng.choice(3, size=idx.size, p=[0.5, 0.4, 0.1])
    colour = rng.integers(0, len(_COLOURS), idx.size)
    names = list(CATEGORIES)
    types = [CATEGORIES[names[c]][t] for c, t in zip(cat, ptype, strict=True)]
    titles = [
        f"{_ADJECTIVES[a]} {typ} No. {i % per + 1}"
        + ("" if s == 0 else f", {_COLOURS[k]}" if s == 1 else f' {8 + 2 * (i % 4)}"')
        for i, a, typ, s, k in zip(idx, adjective, types, suffix, colour, strict=True)
    ]
    skus = [
        f"{names[c][:3].upper()}-{TIERS[t][0].upper()}{i:04d}"
        for i, c, t in zip(idx, cat, tier, strict=True)
    ]
    products = pl.DataFrame(
        {
            "Sku": skus,
            "ProductId": PRODUCT_ID_BASE + idx,
            "Title": titles,
            "ProductType": types,
            "Category": [names[c] for c in cat],
        }
    )
    return Catalogue(products=products, price=price)


TICKET_CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "social")
# Rows: web_only, store_shopper, multichannel, support-only contact (no purchase persona).
TICKET_CHANNEL_MIX = np.array(
    [
        [0.55, 0.40, 0.0, 0.05],
        [0.30, 0.10, 0.60, 0.0],
        [0.30, 0.30, 0.20, 0.20],
        [0.4, 0.3, 0.2, 0.1],
    ]
)
TOPICS: tuple[str, ...] = (
    "shipping",
    "product_question",
    "account",
    "billing",
    "returns",
    "damaged_item",
)
# Rows: simple, complex problems, over TOPICS.
TOPIC_MIX = np.array([[0.35, 0.35, 0.20, 0.10, 0.0, 0.0], [0.20, 0.0, 0.0, 0.25, 0.25, 0.30]])
UNRATED_SHARE = 0.25
TICKET_ID_BASE = 900_000_001


def _categorical(rng: np.random.Generator, rows: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """One draw per element from the categorical distribution in ``mix[rows]``."""
    cum = np.cumsum(mix, axis=1)[rows]
    return (rng.random(rows.size)[:, None] > cum[:, :-1]).sum(axis=1).astype(np.int8)


def simulate_tickets(
    rng: np.random.Generator,
    pop: Population,
    first_day: np.ndarray,
    total_days: int,
    epoch_day: int,
) -> pl.DataFrame:
    """Support tickets in TICKET_COLUMNS order (chronological), from the support personas.

    Args:
        first_day: realised first-order day per customer (-1 for support-only contacts).
        epoch_day: the history's first day as days since 1970-01-01.
    """
    heavy = pop.codes["support_history"] == code_of("support_history", "heavy_contact")
    lo = np.where(pop.has_orders, first_day, 0)
    hi = np.where(pop.churn_day >= 0, pop.churn_day, total_days - 1)
    months = (hi - lo + 1) / 30.4
    # light: 1-2 tickets in all; heavy: at least 3 plus one every ~3 months of tenure.
    count = np.where(heavy, 3 + rng.poisson(months / 3), 1 + (rng.random(lo.size) < 0.4))
    count = np.where(pop.has_tickets, count, 0)
    owner = np.repeat(np.arange(lo.size), count)
    n = owner.size
    day = lo[owner] + (rng.random(n) * (hi - lo + 1)[owner]).astype(np.int64)
    seconds = rng.integers(8 * 3600, 22 * 3600, n)
    micros = ((epoch_day + day) * 86_400 + seconds) * 1_000_000
    order = np.lexsort((owner, micros))
    owner, micros = owner[order], micros[order]

    comm = pop.codes["communication_preference"][owner]
    channel = _categorical(rng, np.where(comm >= 0, comm, 3), TICKET_CHANNEL_MIX)
    complex_ = pop.codes["problem_complexity_profile"][owner] == code_of(
        "problem_complexity_profile", "complex"
    )
    topic = _categorical(rng, complex_.astype(np.int64), TOPIC_MIX)
    # High returners write about returns half the time, whatever their complexity.
    returner = pop.codes["return_behavior"][owner] == code_of("return_behavior", "high_returner")
    topic = np.where(returner & (rng.random(n) < 0.5), TOPICS.index("returns"), topic)
    messages = np.where(complex_, 4 + rng.poisson(5.0, n), 1 + (rng.random(n) < 0.4))
    hours = rng.lognormal(np.where(complex_, np.log(60.0), np.log(3.0)), 0.5, n)
    score = np.where(
        complex_,
        rng.choice([1, 2, 3], size=n, p=[0.45, 0.35, 0.2]),
        rng.choice([3, 4, 5], size=n, p=[0.1, 0.3, 0.6]),
    )
    rated = rng.random(n) >= UNRATED_SHARE
    return pl.DataFrame(
        {
            "ticket_id": TICKET_ID_BASE + np.arange(n, dtype=np.int64),
            "customer_id": CUSTOMER_ID_BASE + owner.astype(np.int64),
            "created_at": pl.Series(micros).cast(pl.Datetime("us")),
            "channel": pl.Series(TICKET_CHANNELS).gather(pl.Series(channel)),
            "topic": pl.Series(TOPICS).gather(pl.Series(topic)),
            "message_count": messages.astype(np.int64),
            "resolution_hours": np.round(hours, 2),
            "satisfaction": score.astype(np.int64),
        }
    ).with_columns(pl.when(pl.Series(rated)).then(pl.col("satisfaction")).alias("satisfaction"))
