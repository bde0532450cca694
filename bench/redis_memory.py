"""Redis memory per check-in in the production deployment (issue 21: at most 100 bytes).

    python -m bench.redis_memory [--duration 20] [--concurrency 32]

Starts a production deployment of its own (PostgreSQL schema and Redis key prefix, two workers,
rate limits off, as `bench.compare` does), seeds it with the peer's `seed.py` (2,000 visitors,
200 venues), then loads it with the peer's wrk script (check-ins only, no Idempotency-Key) and
prints, before and after the load: Redis's `used_memory` (the whole server's: noisy when others
use it), the bytes of this deployment's own keys (`MEMORY USAGE` of each, exact), and the
deployment's keys counted by kind (the name's part after the prefix, up to its first `:`).
The figure is the growth of the deployment's own keys divided by the successful check-ins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import redis

from bench.compare import REDIS_URL, ROOT, fangxin, load, seed

TARGET_BYTES = 100


def kind_of(key: str, prefix: str) -> str:
    """`visit`, `open`, `rl`, … : what follows the deployment's prefix (and its hash tag)."""
    rest = key[len(prefix) :]
    if rest.startswith("{"):
        rest = rest[rest.index("}") + 2 :]
    return rest.split(":", 1)[0]


def census(client: redis.Redis, prefix: str) -> tuple[int, Counter[str], Counter[str]]:
    """(bytes of the deployment's keys, keys by kind, bytes by kind)."""
    keys, sizes = Counter[str](), Counter[str]()
    names = [k.decode() for k in client.scan_iter(match=prefix + "*", count=1000)]
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.memory_usage(name, samples=0)
        for name, size in zip(chunk, pipe.execute(), strict=True):
            kind = kind_of(name, prefix)
            keys[kind] += 1
            sizes[kind] += int(size or 0)
    return sum(sizes.values()), keys, sizes


def used_memory(client: redis.Redis) -> int:
    """The whole server's `used_memory`."""
    info = client.info("memory")
    return int(info["used_memory"])


def report(label: str, client: redis.Redis, prefix: str) -> tuple[int, int, Counter[str]]:
    """Print one line of figures; (used_memory, deployment bytes, bytes by kind)."""
    total, keys, sizes = census(client, prefix)
    used = used_memory(client)
    kinds = {kind: [keys[kind], sizes[kind]] for kind in sorted(keys)}
    print(
        json.dumps({"at": label, "used_memory": used, "deployment_bytes": total, "kinds": kinds}),
        flush=True,
    )
    return used, total, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    client = redis.Redis.from_url(REDIS_URL)
    os.environ.setdefault("WARMUP", "0")  # every check-in counts
    with fangxin(production=True) as deployment, tempfile.TemporaryDirectory() as work:
        prefix = deployment.prefix
        pairs = seed(deployment.url, Path(work), python=ROOT / ".venv" / "bin" / "python")
        used0, own0, sizes0 = report("seeded", client, prefix)
        result = load(deployment.url, pairs, args.concurrency, args.duration)
        check_ins = int(result["requests"] - result["non2xx"])
        used1, own1, sizes1 = report("loaded", client, prefix)
    grown = {kind: sizes1[kind] - sizes0[kind] for kind in sizes1 | sizes0}
    figures = {
        "check_ins": check_ins,
        "rps": result["rps"],
        "non2xx": result["non2xx"],
        "bytes_per_check_in": round((own1 - own0) / max(check_ins, 1), 1),
        "used_memory_per_check_in": round((used1 - used0) / max(check_ins, 1), 1),
        "growth_by_kind": dict(sorted(grown.items(), key=lambda kv: -kv[1])),
        "target": TARGET_BYTES,
    }
    print(json.dumps(figures), flush=True)
    if figures["bytes_per_check_in"] > TARGET_BYTES:
        print("bench: over the target", file=sys.stderr)


if __name__ == "__main__":
    main()
