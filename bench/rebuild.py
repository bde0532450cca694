"""How fast `fangxin rebuild` replays the log: 10⁶ encrypted events by default.

    python -m bench.rebuild [--events 1000000] [--redis redis://127.0.0.1:6379/0]

Writes a synthetic log (venues, visitors, visits checked in and out over 28 days) into a
fresh embedded data folder through the application, then runs `fangxin rebuild` on it: into
memory (embedded read models) and, with --redis, into Redis. Prints events/s of each.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.people import Merchant, Visitor
from domain.venues import Venue
from domain.visits import CheckoutReason, Visit
from infrastructure.bootstrap import build_services
from infrastructure.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 10, 26, tzinfo=UTC)
BATCH = 2000


def write_log(data: Path, n_events: int, seed: int) -> int:
    """A synthetic log of about n_events events; returns how many were written."""
    rng = random.Random(seed)
    services = build_services(load_settings({}, data_dir=str(data)), replay=False)
    store = services.store
    written = 0
    try:
        merchant = Merchant(
            id=uuid.uuid4(), name="M", contact_phone="+8613900000000", token_hash=""
        )
        venues = [
            Venue(
                id=uuid.uuid4(),
                merchant_id=merchant.id,
                name=f"Venue {i}",
                address="Road",
                region="110105",
                category="shop",
                capacity=None,
                max_dwell_minutes=180,
            )
            for i in range(500)
        ]
        visitors = [
            Visitor(
                id=uuid.uuid4(),
                name=f"Visitor {i}",
                phone=f"+86138{i:08d}",
                phone_index=f"{i:064x}",
                token_hash=f"{i:064x}",
                dependent_ids=[],
                dependent_names=[],
                assisted=False,
            )
            for i in range(5000)
        ]
        people: list[Merchant | Venue | Visitor] = [merchant, *venues, *visitors]
        for i in range(0, len(people), BATCH):
            written += len(store.save(*people[i : i + BATCH]))
        started = time.perf_counter()
        while written < n_events:
            visits = []
            for _ in range(BATCH // 2):
                at = START + timedelta(minutes=rng.randrange(28 * 24 * 60))
                visitor = rng.choice(visitors)
                visit = Visit(
                    id=uuid.uuid4(),
                    visitor_id=visitor.id,
                    guardian_id=visitor.id,
                    venue_id=rng.choice(venues).id,
                    at=at,
                    via="scan",
                )
                visit.check_out(at + timedelta(minutes=rng.randrange(5, 120)), CheckoutReason.SCAN)
                visits.append(visit)
            written += len(store.save(*visits))
            rate = written / (time.perf_counter() - started)
            print(
                f"\rwriting the log: {written:>9,} events ({rate:,.0f}/s)", end="", file=sys.stderr
            )
        print(file=sys.stderr)
    finally:
        services.close()
    return written


def rebuild(data: Path, extra_env: dict[str, str]) -> str:
    """Run `fangxin rebuild` and return its summary line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANGXIN_")}
    env.update(FANGXIN_DATA_DIR=str(data), **extra_env)
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "fangxin"), "rebuild"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"fangxin rebuild failed:\n{done.stderr[-3000:]}")
    line = done.stdout.strip().splitlines()[-1]
    match = re.search(r"rebuilt ([\d,]+) events in ([\d.]+) s: ([\d,]+) events/s", line)
    if match is None:
        raise SystemExit(f"unexpected rebuild output: {done.stdout}\n{done.stderr}")
    return line


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--redis", default="")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="fangxin-rebuild-"))
    try:
        written = write_log(data, a.events, a.seed)
        print(f"log: {written:,} encrypted events in {data}")
        print(f"into memory (embedded): {rebuild(data, {})}")
        if a.redis:
            prefix = f"rebuildbench:{uuid.uuid4().hex[:8]}:"
            try:
                line = rebuild(data, {"FANGXIN_REDIS_URL": a.redis, "FANGXIN_REDIS_PREFIX": prefix})
                print(f"into Redis: {line}")
            finally:
                import redis

                client = redis.Redis.from_url(a.redis)
                batch = list(client.scan_iter(match=prefix + "*", count=5000))
                for i in range(0, len(batch), 5000):
                    client.delete(*batch[i : i + 5000])
                client.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
