"""Horizontal bar charts drawn on the server as SVG, with no script and no library.

This module only computes the geometry (plain numbers and the bar's label); the template draws
the `<svg>` elements, so every label goes through Jinja's autoescaping like any other text.
Bars grow right from a zero line for positive values (towards fraud) and left for negative ones.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 660
LABEL_WIDTH = 270
VALUE_WIDTH = 70
ROW_HEIGHT = 24
BAR_HEIGHT = 16
PADDING = 8


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str
    x: float
    y: float
    width: float
    positive: bool
    text_y: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    zero_x: float
    label_x: float
    value_x: float
    bars: list[Bar]


def bar_chart(items: list[tuple[str, float]], digits: int = 3) -> BarChart:
    """A chart of (label, value) in the given order; the longest bar spans its half."""
    plot_left = LABEL_WIDTH + PADDING
    plot_width = WIDTH - plot_left - VALUE_WIDTH - PADDING
    has_negative = any(v < 0 for _, v in items)
    has_positive = any(v > 0 for _, v in items)
    if has_negative and has_positive:
        zero = plot_left + plot_width / 2
        half = plot_width / 2
    elif has_negative:
        zero = plot_left + plot_width
        half = plot_width
    else:
        zero = plot_left
        half = plot_width
    largest = max((abs(v) for _, v in items), default=0.0) or 1.0
    bars = []
    for i, (label, value) in enumerate(items):
        length = abs(value) / largest * half
        y = PADDING + i * ROW_HEIGHT
        bars.append(
            Bar(
                label=label,
                value=value,
                shown=f"{value:+.{digits}f}",
                x=round(zero if value >= 0 else zero - length, 2),
                y=y,
                width=round(max(length, 1.0), 2),
                positive=value >= 0,
                text_y=y + BAR_HEIGHT - 4,
            )
        )
    return BarChart(
        width=WIDTH,
        height=PADDING * 2 + ROW_HEIGHT * max(1, len(items)),
        zero_x=round(zero, 2),
        label_x=LABEL_WIDTH,
        value_x=WIDTH - VALUE_WIDTH + PADDING,
        bars=bars,
    )
