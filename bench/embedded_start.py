"""How long the embedded server takes to start with 10⁶ events in its log.

    python -m bench.embedded_start [--events 1000000] [--data DIR] [--code TREE]

Writes a synthetic log (500 venues, 5,000 visitors, visits checked in and out over 28 days,
and a few thousand visits left open) into an embedded data folder through the application
(`bench.rebuild.write_log`), unless `--data` names a folder seeded already. Then starts the
embedded deployment on it three times, each in a fresh process, as `make run` does
(`build_services`, then `start`): the first (which builds the history from the whole log when
the folder has none yet), a second one with nothing new, and a third after 1,002 more events.
Prints each start's time (imports apart), the position it resumed from and how many visits
of the visitors it checked in it found open, so two code trees can be compared:
`--code /path/to/other/checkout` runs the starts with that tree's code (same .venv).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPEN_VISITS = 2000

# Run in a fresh process with the code tree as working directory: one server start.
START = """
import resource, sys, time
began = time.perf_counter()
from infrastructure.bootstrap import build_services
from infrastructure.settings import load_settings
imported = time.perf_counter()
services = build_services(load_settings({}, data_dir=sys.argv[1]))
services.start()
ready = time.perf_counter()
print(f"{imported - began:.3f} {ready - imported:.3f} {services.runner.position}", end=" ")
from uuid import UUID
open_now = sum(len(services.visits.open_of(UUID(p))) for p in sys.argv[2:])
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(open_now, rss)
services.close()
"""


def seed(data: Path, n_events: int) -> list[str]:
    """The synthetic log, and a few thousand visits left open; returns their visitors."""
    from bench.rebuild import write_log

    write_log(data, n_events - OPEN_VISITS, seed=1)
    return add_open_visits(data, OPEN_VISITS)


def add_open_visits(data: Path, count: int) -> list[str]:
    """Check `count` new visitors in at the first venue, now; returns their ids."""
    from domain.people import Merchant, Visitor
    from domain.venues import Venue
    from domain.visits import Visit
    from infrastructure.bootstrap import build_services
    from infrastructure.settings import load_settings

    services = build_services(load_settings({}, data_dir=str(data)), replay=False)
    try:
        store = services.store
        merchant = Merchant(
            id=uuid.uuid4(), name="Open", contact_phone="+8613900000001", token_hash=""
        )
        venue = Venue(
            id=uuid.uuid4(),
            merchant_id=merchant.id,
            name="Open venue",
            address="Road",
            region="110105",
            category="shop",
            capacity=None,
            max_dwell_minutes=24 * 60,
        )
        store.save(merchant, venue)
        rng = random.Random(count)
        now = datetime.now(UTC)
        ids: list[str] = []
        for start in range(0, count, 500):
            batch = []
            for i in range(start, min(count, start + 500)):
                visitor = Visitor(
                    id=uuid.uuid4(),
                    name=f"Open {i}",
                    phone=f"+86137{i:08d}",
                    phone_index=f"open{i:060x}",
                    token_hash=f"open{i:060x}",
                    dependent_ids=[],
                    dependent_names=[],
                    assisted=False,
                )
                at = now - timedelta(minutes=rng.randrange(1, 60))
                visit = Visit(
                    id=uuid.uuid4(),
                    visitor_id=visitor.id,
                    guardian_id=visitor.id,
                    venue_id=venue.id,
                    at=at,
                    via="scan",
                )
                batch += [visitor, visit]
                ids.append(str(visitor.id))
            store.save(*batch)
    finally:
        services.close()
    return ids


def start(code: Path, data: Path, people: list[str]) -> tuple[float, float, int, int, int]:
    """One server start in a fresh process: (import s, start s, position, open visits, peak
    memory in MB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANGXIN_")}
    env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-c", START, str(data), *people],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the start failed:\n{done.stderr[-3000:]}")
    imported, started, position, open_now, rss = done.stdout.split()
    return float(imported), float(started), int(position), int(open_now), int(rss)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--data", default="", help="a data folder seeded already (kept)")
    ap.add_argument("--code", default=str(ROOT), help="the code tree whose start is timed")
    a = ap.parse_args()
    data = Path(a.data) if a.data else Path(tempfile.mkdtemp(prefix="fangxin-start-"))
    people_file = data / "open-visitors.txt"
    try:
        if not people_file.exists():
            began = time.perf_counter()
            people_file.write_text("\n".join(seed(data, a.events)))
            print(f"seeded {a.events:,} events in {time.perf_counter() - began:.0f} s: {data}")
        people = people_file.read_text().split()
        code = Path(a.code).resolve()
        print(f"code: {code}")
        labels = ("start 1 (a history to build?)", "start 2, nothing new", "start 3, +1,002 events")
        for label in labels:
            if label.startswith("start 3"):
                people += add_open_visits(data, 500)
                people_file.write_text("\n".join(people))
            imported, started, position, open_now, rss = start(code, data, people)
            print(
                f"{label:<30} start {started:6.2f} s (imports {imported:.2f} s), "
                f"position {position:,}, open visits of the seeded visitors {open_now:,}, "
                f"peak memory {rss:,} MB"
            )
    finally:
        if not a.data:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
