"""The simulated source: synthetic metric series with daily seasonality, noise and incidents,
run through real streaming detectors that publish anomalies, detector changes and health.

Everything random comes from one ``random.Random(seed)``: the same seed and the same sequence of
``step`` calls give the same series, incidents, anomaly ids and events (timestamps come from the
injected clock). Tests script incidents with ``inject``; the edge paces ``step`` with ``Pacer``.
"""

from __future__ import annotations

import math
import random

import attrs

from reactive_aiops.server.config import SimulationConfig
from reactive_aiops.server.detection import RobustZScoreDetector, severity_for
from reactive_aiops.server.state import AiopsState, AnomalyRecord, DetectorRecord

DAY = 86400.0
_METRICS = ("cpu.utilization", "http.latency_p99", "http.error_rate", "queue.depth",
            "db.connections", "disk.io_wait", "memory.rss", "cache.hit_ratio")


@attrs.define
class Incident:
    """A shift of ``magnitude`` noise-sigmas on one series for ``remaining`` samples."""

    magnitude: float
    remaining: int


@attrs.define
class SyntheticSeries:
    """``base + amplitude * sin(daily phase) + gaussian noise (+ incident shift)``."""

    base: float
    amplitude: float
    noise: float
    phase: float
    incident: Incident | None = None

    def sample(self, metric_time: float, rng: random.Random) -> float:
        """The value at ``metric_time`` (seconds), consuming one incident sample if any."""
        value = self.base + self.amplitude * math.sin(2 * math.pi * metric_time / DAY + self.phase)
        value += rng.gauss(0.0, self.noise)
        if self.incident is not None:
            value += self.incident.magnitude * self.noise
            self.incident.remaining -= 1
            if self.incident.remaining <= 0:
                self.incident = None
        return value


class Pacer:
    """Turns wall time into a number of due samples at ``rate`` per second (no drift)."""

    def __init__(self, rate: float, now: float, max_burst: int = 10_000) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self._start = now
        self._done = 0
        self._max_burst = max_burst

    def due(self, now: float) -> int:
        """How many samples to run now; a long stall is skipped rather than replayed in a burst."""
        target = int((now - self._start) * self.rate)
        count = target - self._done
        if count > self._max_burst:
            self._done = target - self._max_burst
            count = self._max_burst
        self._done += max(count, 0)
        return max(count, 0)


class Simulator:
    """Drives ``config.detectors`` synthetic series through detectors into ``state``."""

    def __init__(self, state: AiopsState, config: SimulationConfig, *,
                 id_prefix: str = "") -> None:
        self.state = state
        #: put in every anomaly id, so that a source taking over from another (a new fencing
        #: token) never reuses an id the previous one gave out
        self.id_prefix = id_prefix
        self.config = config
        self.rng = random.Random(config.seed)
        self.samples = 0
        self._series: list[SyntheticSeries] = []
        self._detectors: list[RobustZScoreDetector] = []
        self._ids: list[str] = []
        self._open: dict[str, str] = {}  # detector id -> its current anomaly id
        self._anomaly_count = 0
        self._last_health_at: float | None = None
        self._last_health_count = 0
        for index in range(config.detectors):
            base = self.rng.uniform(20, 200)
            # The seasonal slope per sample stays well under the noise, so the detector's
            # rolling baseline (frozen while an anomaly is open) does not drift out of band.
            self._series.append(SyntheticSeries(
                base=base, amplitude=base * self.rng.uniform(0.05, 0.15),
                noise=base * self.rng.uniform(0.02, 0.04), phase=self.rng.uniform(0, 2 * math.pi)))
            self._detectors.append(RobustZScoreDetector(window=30, min_samples=20))
            self._ids.append(f"det-{index}")

    @property
    def detector_ids(self) -> tuple[str, ...]:
        """The ids of the simulated detectors, in order."""
        return tuple(self._ids)

    def start(self) -> None:
        """Publish every detector (status ``training``) unless the state already knows it."""
        now = self.state.clock()
        for index, detector_id in enumerate(self._ids):
            if detector_id not in self.state.detectors:
                metric = _METRICS[index % len(_METRICS)]
                self.state.upsert_detector(DetectorRecord(
                    id=detector_id, name=f"{metric} robust z-score", metric=metric,
                    status="training", updated_at=now))

    def adopt_open_anomalies(self) -> None:
        """Continue the episodes a previous source left open in ``state`` (after a takeover):
        each detector's newest unresolved anomaly is the one its next samples update."""
        newest: dict[str, AnomalyRecord] = {}
        for anomaly in self.state.anomalies.values():
            if anomaly.state != "resolved" and anomaly.detector_id in self._ids:
                seen = newest.get(anomaly.detector_id)
                if seen is None or anomaly.started_at >= seen.started_at:
                    newest[anomaly.detector_id] = anomaly
        self._open = {detector_id: a.id for detector_id, a in newest.items()}

    def inject(self, detector_id: str, *, samples: int, magnitude: float = 12.0) -> None:
        """Start an incident on ``detector_id``'s series from its next sample."""
        self._series[self._ids.index(detector_id)].incident = Incident(magnitude, samples)

    def step(self) -> None:
        """Produce one sample (detectors take turns) and publish what it changed."""
        index = self.samples % len(self._series)
        metric_time = (self.samples // len(self._series)) * self.config.metric_seconds_per_sample
        self.samples += 1
        series = self._series[index]
        if series.incident is None and self.rng.random() < self.config.incident_probability:
            length = self.rng.randint(self.config.incident_min_samples,
                                      self.config.incident_max_samples)
            series.incident = Incident(self.rng.choice((-1, 1)) * self.rng.uniform(5, 18), length)
        value = series.sample(metric_time, self.rng)
        detector_id = self._ids[index]
        record = self.state.detectors.get(detector_id)
        if record is None or record.status == "paused":
            return
        step = self._detectors[index].update(value)
        now = self.state.clock()
        if step.warmed_up and record.status == "training":
            self.state.upsert_detector(attrs.evolve(record, status="active", updated_at=now))
        if step.opened:
            self._anomaly_count += 1
            anomaly_id = f"{detector_id}-{self.id_prefix}a{self._anomaly_count}"
            self._open[detector_id] = anomaly_id
            self.state.upsert_anomaly(AnomalyRecord(
                id=anomaly_id, detector_id=detector_id, metric=record.metric,
                severity=severity_for(step.score), score=round(step.score, 4),
                value=round(value, 4), started_at=now, updated_at=now))
            return
        open_id = self._open.get(detector_id)
        if open_id is None:
            return
        anomaly = self.state.anomalies.get(open_id)
        # An episode adopted from a previous source ends once this detector, warmed up, does
        # not see it (its own detector never opened it).
        closed = step.closed or (step.warmed_up and not self._detectors[index].anomalous)
        if anomaly is None or anomaly.state == "resolved":
            # An operator resolved it; the episode still has to close before a new one opens.
            if closed:
                del self._open[detector_id]
            return
        if closed:
            del self._open[detector_id]
            self.state.upsert_anomaly(attrs.evolve(
                anomaly, state="resolved", resolved_at=now, updated_at=now))
            return
        peak = self._detectors[index].peak
        self.state.upsert_anomaly(attrs.evolve(
            anomaly, score=round(step.score, 4), value=round(value, 4),
            severity=severity_for(peak), updated_at=now))

    def run(self, count: int) -> None:
        """Run ``count`` steps."""
        for _ in range(count):
            self.step()

    def tick(self, now: float) -> bool:
        """Publish health if ``health_interval`` has passed since the last; True if it did."""
        published = self.state.published
        if self._last_health_at is None:
            self._last_health_at, self._last_health_count = now, published
            self.state.update_health(self.state.compute_health(0.0))
            return True
        elapsed = now - self._last_health_at
        if elapsed < self.config.health_interval:
            return False
        rate = (published - self._last_health_count) / elapsed if elapsed > 0 else 0.0
        self._last_health_at, self._last_health_count = now, published
        self.state.update_health(self.state.compute_health(rate))
        return True
