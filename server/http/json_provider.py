"""Response bodies encoded with orjson (the standard library's encoder was a visible share of the
REST server's CPU). Same output types as Quart's default provider: datetimes still go through its
``default`` (RFC 822), keys stay sorted; request bodies are still parsed by the default ``loads``."""

from __future__ import annotations

from typing import Any

import orjson
from quart import Quart
from quart.json.provider import DefaultJSONProvider, JSONProvider

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


class OrjsonProvider(DefaultJSONProvider):
    @classmethod
    def wrapping(cls, app: Quart, provider: JSONProvider) -> OrjsonProvider:
        """This provider, with ``provider``'s ``default`` (for types orjson does not know) and key order."""
        made = cls(app)
        made.default = getattr(provider, "default", made.default)
        made.sort_keys = getattr(provider, "sort_keys", made.sort_keys)
        return made

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # a caller's json.dumps options (indent, ...): the standard encoder honours them
            return super().dumps(obj, **kwargs)
        options = _OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
        return orjson.dumps(obj, default=self.default, option=options).decode()
