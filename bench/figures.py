"""Summaries of repeated measurements for the bench scripts: median and range, and how they print."""

from __future__ import annotations

import statistics


def spread(values: list[float]) -> dict:
    """Median, min and max of ``values`` (and the values), as every report records a figure."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def fmt(s: dict, digits: str = ",.0f") -> str:
    """``median (min..max)`` of a ``spread``."""
    return f"{s['median']:{digits}} ({s['min']:{digits}}..{s['max']:{digits}})"
