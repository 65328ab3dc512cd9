"""Streaming anomaly detection: a rolling robust z-score with hysteresis.

The score of a sample is ``(x - median) / (1.4826 * MAD)`` over the last ``window`` normal
samples (median absolute deviation: a few outliers do not move it). An anomaly *opens* after
``open_after`` consecutive samples with ``|z| >= open_threshold`` and *closes* after
``close_after`` consecutive samples with ``|z| < close_threshold``; the gap between the two
thresholds (hysteresis) stops a noisy series from flapping open/closed. While an anomaly is open its
samples are kept out of the baseline, so a long incident does not become the new normal.
"""

from __future__ import annotations

import bisect
from collections import deque

import attrs

MAD_TO_SIGMA = 1.4826


@attrs.frozen
class Step:
    """What one sample did: its ``score``, and whether it ``opened`` or ``closed`` an anomaly."""

    score: float
    anomalous: bool
    opened: bool = False
    closed: bool = False
    warmed_up: bool = True


def severity_for(score: float) -> str:
    """Map an absolute z-score to the contract's severity (low < medium < high < critical)."""
    magnitude = abs(score)
    if magnitude >= 14:
        return "critical"
    if magnitude >= 9:
        return "high"
    if magnitude >= 6:
        return "medium"
    return "low"


class RobustZScoreDetector:
    """One metric's detector; feed samples in order with ``update``."""

    def __init__(
        self,
        *,
        window: int = 60,
        min_samples: int = 20,
        open_threshold: float = 4.0,
        close_threshold: float = 2.0,
        open_after: int = 2,
        close_after: int = 3,
        min_scale: float = 1e-6,
    ) -> None:
        if not 0 < close_threshold < open_threshold:
            raise ValueError("need 0 < close_threshold < open_threshold")
        if not 2 <= min_samples <= window or open_after < 1 or close_after < 1:
            raise ValueError("need 2 <= min_samples <= window and open/close_after >= 1")
        self.window = window
        self.min_samples = min_samples
        self.open_threshold = open_threshold
        self.close_threshold = close_threshold
        self.open_after = open_after
        self.close_after = close_after
        self.min_scale = min_scale
        self._recent: deque[float] = deque()
        self._sorted: list[float] = []
        self._streak = 0
        self.anomalous = False
        self.peak = 0.0

    @property
    def warmed_up(self) -> bool:
        """True once the baseline holds ``min_samples`` samples."""
        return len(self._sorted) >= self.min_samples

    def _remember(self, value: float) -> None:
        self._recent.append(value)
        bisect.insort(self._sorted, value)
        if len(self._recent) > self.window:
            old = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def score(self, value: float) -> float:
        """The robust z-score of ``value`` against the current baseline (0 before warm-up)."""
        data = self._sorted
        n = len(data)
        if n < self.min_samples:
            return 0.0
        mid = n // 2
        median = data[mid] if n % 2 else (data[mid - 1] + data[mid]) / 2
        deviations = sorted(abs(x - median) for x in data)
        mad = deviations[mid] if n % 2 else (deviations[mid - 1] + deviations[mid]) / 2
        return (value - median) / max(MAD_TO_SIGMA * mad, self.min_scale)

    def update(self, value: float) -> Step:
        """Score ``value``, advance the hysteresis state, and learn it if it looks normal."""
        if not self.warmed_up:
            self._remember(value)
            return Step(0.0, False, warmed_up=False)
        z = self.score(value)
        if not self.anomalous:
            self._streak = self._streak + 1 if abs(z) >= self.open_threshold else 0
            if self._streak >= self.open_after:
                self.anomalous, self._streak, self.peak = True, 0, abs(z)
                return Step(z, True, opened=True)
            if self._streak == 0:
                self._remember(value)
            return Step(z, False)
        self.peak = max(self.peak, abs(z))
        self._streak = self._streak + 1 if abs(z) < self.close_threshold else 0
        if self._streak >= self.close_after:
            self.anomalous, self._streak = False, 0
            self._remember(value)
            return Step(z, False, closed=True)
        return Step(z, True)

    def reset(self) -> None:
        """Forget the baseline and any open anomaly (e.g. after a long pause)."""
        self._recent.clear()
        self._sorted.clear()
        self._streak = 0
        self.anomalous = False
        self.peak = 0.0
