"""Figures without pyplot, and the time window every view of the report reads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import Scope, Series

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

SHOWN_TIME = "%Y-%m-%d %H:%M:%S"
POINTS = 300  # points per plotted series over the range


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure of its own (no pyplot, so no global backend is switched: a notebook
    keeps its inline plots, and threads do not share state)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise OpsError(
            "report needs matplotlib: pip install 'modelmon[report]' (or pip install matplotlib)"
        ) from exc
    return Figure(figsize=(width, height), dpi=100)


def local_time(at: float) -> datetime:
    return datetime.fromtimestamp(at)


def series_times(series: Series) -> NDArray[np.datetime64]:
    """The series' times as local wall-clock times, as the axes show them."""
    return np.array([local_time(t) for t, _v in series.points], dtype="datetime64[ms]")


def no_data(axes: Axes) -> None:
    axes.text(0.5, 0.5, "no data in this range", ha="center", va="center")


def finish(figure: Figure, axes: Axes, title: str, ylabel: str, legend: bool) -> None:
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if legend:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()


@dataclass(frozen=True)
class Window:
    """Whose series, over which range (Unix times), with which range for rate()."""

    scope: Scope
    start: float
    end: float
    rate_window: str

    @classmethod
    def ending_now(cls, scope: Scope, since_seconds: float, rate_window: str) -> Window:
        end = time.time()
        return cls(scope, end - since_seconds, end, rate_window)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def step(self) -> float:
        return max(1.0, self.seconds / POINTS)

    def describe(self) -> str:
        """E.g. "2026-05-01 12:00:00 to 2026-05-01 13:00:00 (3600 s)", in local time."""
        start = time.strftime(SHOWN_TIME, time.localtime(self.start))
        end = time.strftime(SHOWN_TIME, time.localtime(self.end))
        return f"{start} to {end} ({self.seconds:g} s)"
