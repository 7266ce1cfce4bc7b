"""A number as a table cell shows it: the one formatting every table, every format and every
report shares ("–" for a missing number)."""

from __future__ import annotations

import math

import pandas as pd


def missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def number(x, digits=2) -> str:
    return "–" if missing(x) else f"{x:.{digits}f}"


def p_value(x) -> str:
    if missing(x):
        return "–"
    if x == 0:
        return "<1e-300"  # below double precision (the normal approximation's tail underflows)
    return f"{x:.2g}" if x >= 0.001 else f"{x:.1e}"


def interval(low, high, digits=2) -> str:
    if missing(low) or missing(high):
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def count(x) -> str:
    return "–" if missing(x) else f"{int(x):,}"
