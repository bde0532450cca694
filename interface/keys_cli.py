"""`fangxin keys`: master key versions, the rotation that retires one, and key store upkeep.

Retiring the master key version that was in force when someone was erased is what makes their
erasure final in every copy PostgreSQL made (WAL, archives, base backups, replicas): see
docs/erasure.md. Each command that changes the master key is on the audit trail first.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.casework import ADMIN_ACTOR
from domain.errors import AuditUnavailableError
from domain.ports import AuditRecord
from infrastructure.audit.trail import DurableAuditTrail
from infrastructure.bootstrap import open_audit, open_keys
from infrastructure.keys.keystore import ROTATION_BATCH, KeyStore
from infrastructure.keys.masterkeys import MASTER_KEY_FILE, MasterKeyFile, MasterKeys
from infrastructure.settings import Settings, load_settings

# A worker that still wraps new keys under an older version makes a pass find more; after
# this many the rotation stops and says so.
ROTATION_PASSES = 3


def add_commands(commands: Any) -> None:
    """Register `fangxin keys ...` on the command's subparsers."""
    keys = commands.add_parser("keys", help="master key rotation and key store upkeep")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    sub.add_parser(
        "new-master",
        help="add a master key version that wraps new keys from now on"
        " (embedded: into data/master.key; else: print the new FANGXIN_MASTER_KEY)",
    ).set_defaults(func=new_master)
    rotate = sub.add_parser(
        "rotate-master",
        help="rewrap every live data key under the newest master key version (resumable)",
    )
    rotate.add_argument("--batch", type=int, default=ROTATION_BATCH, help="keys per transaction")
    rotate.set_defaults(func=rotate_master)
    retire = sub.add_parser(
        "retire-master",
        help="remove master key versions that wrap no key any more (default: every older one)",
    )
    retire.add_argument("versions", nargs="*", type=int, metavar="VERSION")
    retire.set_defaults(func=retire_master)
    sub.add_parser(
        "compact", help="rewrite the parts of the key table that held destroyed keys"
    ).set_defaults(func=compact)


def new_master(_: argparse.Namespace) -> int:
    """Add a new current master key version."""
    settings = load_settings()
    keys = open_keys(settings)
    try:
        renewed = keys.master.with_new_version()
        if not _audited(settings, keys, "add master key version", renewed.current):
            return 1
        if settings.master_key:
            print(renewed.render())
            _say(
                f"version {renewed.current} added. Give every worker this FANGXIN_MASTER_KEY and"
                " restart them, then run `fangxin keys rotate-master`."
            )
        else:
            MasterKeyFile(_master_file(settings)).write(renewed)
            _say(
                f"version {renewed.current} added to {_master_file(settings)}; the service wraps"
                " new keys under it within a second. Now run `fangxin keys rotate-master`."
            )
    finally:
        keys.close()
    return 0


def rotate_master(args: argparse.Namespace) -> int:
    """Rewrap every live key under the current master key version, with a progress bar."""
    settings = load_settings()
    keys = open_keys(settings)
    try:
        current = keys.master.current
        if not _audited(settings, keys, "rotate master key", current):
            return 1
        started = time.perf_counter()
        rewrapped = 0
        for _ in range(ROTATION_PASSES):
            done = keys.rotate_master(_progress_bar(started), batch=args.batch)
            rewrapped += done
            stale = _stale(keys, current)
            if not stale or not done:
                break
        print(file=sys.stderr)
        if stale:
            _say(
                f"{sum(stale.values()):,} keys are still wrapped under older versions"
                f" ({_listed(stale)}): some worker wraps new keys under an older version. Give"
                f" every worker version {current} first, then run this again."
            )
            return 1
        older = sorted(v for v in keys.master.keys if v != current)
        _say(
            f"{rewrapped:,} keys rewrapped in {time.perf_counter() - started:.1f} s; every live"
            f" key is under master key version {current}."
            + (
                f" Versions {', '.join(map(str, older))} wrap nothing now: retire them"
                " (`fangxin keys retire-master`)."
                if older
                else ""
            )
        )
    finally:
        keys.close()
    return 0


def retire_master(args: argparse.Namespace) -> int:
    """Remove master key versions that no live key is wrapped under any more."""
    settings = load_settings()
    keys = open_keys(settings)
    try:
        master = keys.master
        versions = sorted(set(args.versions or (v for v in master.keys if v != master.current)))
        if master.current in versions or not set(versions) <= set(master.keys):
            _say(
                f"only versions other than the current one ({master.current}) and among"
                f" {sorted(master.keys)} can be retired"
            )
            return 2
        in_use = {v: n for v, n in keys.versions().items() if v in versions}
        if in_use:
            _say(
                f"versions {_listed(in_use)} still wrap live keys: run"
                " `fangxin keys rotate-master` first"
            )
            return 1
        if not versions:
            _say(f"only version {master.current} is configured; nothing to retire")
            return 0
        if not _audited(settings, keys, "retire master key version", *versions):
            return 1
        _retire(settings, master, versions)
    finally:
        keys.close()
    return 0


def compact(_: argparse.Namespace) -> int:
    """Rewrite what destroyed keys left in the key table (as its owner, when workers cannot)."""
    settings = load_settings()
    keys = open_keys(settings)
    try:
        _say(f"{keys.backend.compact()} parts of the key table rewritten")
    finally:
        keys.close()
    return 0


def _retire(settings: Settings, master: MasterKeys, versions: list[int]) -> None:
    remaining = master.without(versions)
    retired = ", ".join(map(str, versions))
    if settings.master_key:
        print(remaining.render())
        _say(
            f"no key is wrapped under versions {retired}. Give every worker this"
            " FANGXIN_MASTER_KEY, restart them, and destroy the retired versions wherever"
            " they are kept: from then on no copy of a key wrapped under them can be read."
        )
    else:
        MasterKeyFile(_master_file(settings)).write(remaining)
        _say(f"versions {retired} retired from {_master_file(settings)}")


def _audited(settings: Settings, keys: KeyStore, action: str, *versions: int) -> bool:
    """Put the action on the audit trail before it is done; False (said why) when refused."""
    audit = open_audit(settings, keys)
    try:
        DurableAuditTrail(audit).record(
            AuditRecord(
                at=datetime.now(UTC),
                actor=ADMIN_ACTOR,
                action=action,
                ref=f"master-key:{uuid.uuid4()}",
                subject="versions " + ", ".join(map(str, versions)),
            )
        )
    except AuditUnavailableError as refused:
        _say(str(refused))
        return False
    finally:
        audit.close()
    return True


def _progress_bar(started: float) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(
            f"\rrotate-master [{bar:<30}] {done:>9,}/{total:,} keys {rate:>9,.0f}/s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return progress


def _stale(keys: KeyStore, current: int) -> dict[int, int]:
    return {v: n for v, n in keys.versions().items() if v != current}


def _listed(counts: dict[int, int]) -> str:
    return ", ".join(f"{v}: {n:,} keys" for v, n in sorted(counts.items()))


def _master_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / MASTER_KEY_FILE


def _say(message: str) -> None:
    print(f"fangxin: {message}", file=sys.stderr, flush=True)
