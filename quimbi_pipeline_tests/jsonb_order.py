"""A JSON reader that asserts every object lists its keys in jsonb's storage order."""

import json


def loads_in_jsonb_order(text: str) -> object:
    """``json.loads(text)``, failing when an object's keys are not shorter-first, then bytewise.

    PostgreSQL skips its per-object key sort when the keys come in that order.
    """

    def keys_in_order(pairs: list[tuple[str, object]]) -> dict:
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys, key=lambda k: (len(k.encode()), k.encode())), keys
        return dict(pairs)

    return json.loads(text, object_pairs_hook=keys_in_order)
