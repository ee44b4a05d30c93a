"""One results file, many benchmarks: each script merges its own keys and leaves the others'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["merge_results"]


def merge_results(path: Path, result: dict[str, Any]) -> None:
    """Write ``result``'s keys into the JSON object at ``path``, keeping keys other benchmarks wrote.

    Nested objects (``budgets``, ``environment``) are merged one level deep, so each script's
    budget lines and environment facts sit beside the others'.
    """
    merged: dict[str, Any] = {}
    if path.exists():
        merged = json.loads(path.read_text(encoding="utf-8"))
    for key, value in result.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
