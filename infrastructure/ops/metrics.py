"""Prometheus metrics without a client library: counters kept in process, summed in Redis.

Each worker counts in memory under a lock (a few dict updates per request). With a Redis
client, `flush()` adds what was counted since the last flush to one Redis hash, so `render()`
on any worker shows the deployment's totals; without one the figures are the process's own.
A worker killed before its flush loses at most one flush interval of counts.

Requests of tracing work (cases and their reads, exposures, the audit trail) are counted
together under one route, `tracing`: counts by route would tell whoever reads them how many
trajectories, contact lists, contact details and exports were asked for, and when. Their
statuses stay apart, so failures and refusals still show.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("fangxin.metrics")

REDIS_KEY = "fangxin:metrics"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = "fangxin_http_requests_total"
CHECK_INS = "fangxin_check_ins_total"
DURATION = "fangxin_http_request_duration_seconds"
LAG = "fangxin_projection_lag_events"
POSITION = "fangxin_projection_position"

_HELP = {
    REQUESTS: "HTTP requests answered, by method, route template and status.",
    CHECK_INS: "Check-ins recorded.",
    DURATION: "Time to answer an HTTP request, by route template.",
    LAG: "Events in the log that a projection has not applied yet.",
    POSITION: "The last notification id a projection applied.",
}

# Route templates (prefixes) counted together under TRACING.
TRACING_ROUTES = ("/v1/cases", "/v1/exposures", "/v1/audit")
TRACING = "tracing"

# Sample fields, as kept in memory and in the Redis hash: a kind, then tab-separated labels.
_REQ, _CHK, _BUCKET, _SUM, _COUNT = "req", "chk", "hb", "hs", "hc"
_SEP = "\t"


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0


class Metrics:
    """The service's counters and request-duration histogram; thread-safe."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        buckets: Iterable[float] = DURATION_BUCKETS,
        redis_key: str = REDIS_KEY,
    ) -> None:
        self._client = client
        self._key = redis_key
        self._bounds = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._durations: dict[str, _Histogram] = {}
        self._check_ins = 0
        self._flushed: dict[str, float] = {}
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        if method not in METHODS:
            method = "OTHER"  # clients choose methods; labels must stay a small set
        route = route_label(route)
        index = 0
        bounds = self._bounds
        while index < len(bounds) and seconds > bounds[index]:
            index += 1
        key = (method, route, status)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            histogram = self._durations.get(route)
            if histogram is None:
                histogram = self._durations[route] = _Histogram(len(bounds) + 1)
            histogram.counts[index] += 1
            histogram.sum += seconds

    def count_check_in(self, count: int = 1) -> None:
        """Count recorded check-ins."""
        with self._lock:
            self._check_ins += count

    def samples(self) -> dict[str, float]:
        """This process's figures since start, as sample fields (the form kept in Redis)."""
        with self._lock:
            requests = list(self._requests.items())
            durations = [(r, list(h.counts), h.sum) for r, h in self._durations.items()]
            check_ins = self._check_ins
        out: dict[str, float] = {_CHK: check_ins} if check_ins else {}
        for (method, route, status), value in requests:
            out[_SEP.join((_REQ, method, route, str(status)))] = value
        for route, counts, total in durations:
            for bound, value in zip((*self._bounds, math.inf), counts, strict=True):
                if value:
                    out[_SEP.join((_BUCKET, route, _number(bound)))] = value
            out[_SEP.join((_SUM, route))] = total
            out[_SEP.join((_COUNT, route))] = sum(counts)
        return out

    def flush(self) -> None:
        """Add the figures counted since the last flush to Redis; kept for later when it fails."""
        if self._client is None:
            return
        with self._flush_lock:
            current = self.samples()
            pipe = self._client.pipeline(transaction=True)
            changed = False
            for field, value in current.items():
                delta = value - self._flushed.get(field, 0)
                if delta:
                    changed = True
                    if isinstance(value, int):
                        pipe.hincrby(self._key, field, int(delta))
                    else:
                        pipe.hincrbyfloat(self._key, field, delta)
            if not changed:
                return
            try:
                pipe.execute()
            except (RedisConnectionError, RedisTimeoutError) as error:
                log.warning("metrics not flushed", extra={"error": type(error).__name__})
                return
            self._flushed = current

    def start(self, interval: float = 2.0) -> None:
        """Flush to Redis every `interval` seconds in a daemon thread (no-op without Redis)."""
        if self._client is None or self._flusher is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                self.flush()

        self._flusher = threading.Thread(target=run, name="fangxin-metrics", daemon=True)
        self._flusher.start()

    def stop(self) -> None:
        """Stop the flusher, flushing what is left."""
        if self._flusher is not None:
            self._stop.set()
            self._flusher.join()
            self._flusher = None
        self.flush()

    def totals(self) -> dict[str, float]:
        """The deployment's figures from Redis (this process's own without Redis)."""
        if self._client is None:
            return self.samples()
        self.flush()
        raw = self._client.hgetall(self._key)
        return {_text(k): float(v) for k, v in raw.items()}

    def render(self, projections: Mapping[str, tuple[int, int]] | None = None) -> str:
        """Prometheus text exposition (0.0.4) of the figures and of projections' (position, lag)."""
        return render(self.totals(), projections or {}, self._bounds)


def render(
    samples: Mapping[str, float],
    projections: Mapping[str, tuple[int, int]],
    bounds: Iterable[float] = DURATION_BUCKETS,
) -> str:
    """Prometheus text exposition of sample fields and projections' (position, lag)."""
    configured = {*bounds, math.inf}
    requests: dict[tuple[str, str, str], float] = {}
    buckets: dict[str, dict[float, float]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    # Routes are grouped again here: figures stored by an older version may hold them apart.
    for field, value in samples.items():
        kind, *labels = field.split(_SEP)
        if kind == _REQ and len(labels) == 3:
            key = (labels[0], route_label(labels[1]), labels[2])
            requests[key] = requests.get(key, 0) + value
        elif kind == _BUCKET and len(labels) == 2:
            seen = buckets.setdefault(route_label(labels[0]), {})
            seen[float(labels[1])] = seen.get(float(labels[1]), 0) + value
        elif kind == _SUM and len(labels) == 1:
            route = route_label(labels[0])
            sums[route] = sums.get(route, 0) + value
        elif kind == _COUNT and len(labels) == 1:
            route = route_label(labels[0])
            counts[route] = counts.get(route, 0) + value
    lines = _header(REQUESTS, "counter")
    lines += [
        f"{REQUESTS}{_labels(method=method, route=route, status=status)} {_number(value)}"
        for (method, route, status), value in sorted(requests.items())
    ]
    lines += [*_header(CHECK_INS, "counter"), f"{CHECK_INS} {_number(samples.get(_CHK, 0))}"]
    lines += _header(DURATION, "histogram")
    for route in sorted(counts):
        cumulative = 0.0
        seen = buckets.get(route, {})
        for bound in sorted(configured | seen.keys()):
            cumulative += seen.get(bound, 0)
            le = _labels(route=route, le=_number(bound))
            lines.append(f"{DURATION}_bucket{le} {_number(cumulative)}")
        lines.append(f"{DURATION}_sum{_labels(route=route)} {_number(sums.get(route, 0))}")
        lines.append(f"{DURATION}_count{_labels(route=route)} {_number(counts[route])}")
    lines += _header(POSITION, "gauge")
    lines += [f"{POSITION}{_labels(projection=n)} {p}" for n, (p, _) in sorted(projections.items())]
    lines += _header(LAG, "gauge")
    lines += [f"{LAG}{_labels(projection=n)} {lag}" for n, (_, lag) in sorted(projections.items())]
    return "\n".join(lines) + "\n"


def route_label(route: str) -> str:
    """The route a request is counted under: its template, or TRACING for tracing work."""
    return TRACING if route.startswith(TRACING_ROUTES) else route


def _header(name: str, kind: str) -> list[str]:
    return [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} {kind}"]


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
