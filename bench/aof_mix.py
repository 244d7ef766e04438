"""What each journal command makes Redis append to its AOF, by command and key family.

Under ``appendfsync always`` every byte appended is written and synced before Redis answers anyone,
and how much of the time Redis spends rewriting its AOF follows from how fast the AOF grows: with a
rewrite at each doubling, one comes every D / A seconds (D the dataset, A the bytes appended per
second) and lasts about D / S (S the speed at which the rewrite's child writes the dataset out), so
the share of time spent rewriting is about A / S, whatever the dataset's size. This script measures
A per command and where it comes from.

On a private redis-server (AOF on, ``everysec``, never rewritten) ``tradewire engine`` applies the
workload's setup (``bench/workload.py``); then ``--commands`` main-phase commands are appended at
``--rate`` per second, in the small batches of the latency measurement of ``bench/pipeline.py``.
The AOF bytes appended meanwhile are read back and summed by command and key, user ids and markets
folded (``tw:orders:*``, ``md:*:depth``); Redis's ``used_memory`` growth is printed beside them.

Run from the repository root::

    python bench/aof_mix.py                       # 100,000 commands at 10,000/s
    python bench/aof_mix.py --commands 50000 --rate 1000 --json mix.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import _paced, command_lines, engine, fill, redis_server, wait_applied
from workload import generate

from tradewire.journal.wire import Connection

_FOLDED = re.compile(rb"\{[^}]*\}|^u[0-9]+$")


def family(key: bytes) -> str:
    """``tw:orders:u0042`` -> ``tw:orders:*``, ``md:{BTC-USDT}:depth`` -> ``md:*:depth``."""
    parts = [_FOLDED.sub(b"*", part) for part in key.split(b":")[:3]]
    return b":".join(parts).decode(errors="replace")


def appended(aof: bytes) -> tuple[Counter[str], Counter[str]]:
    """Bytes and commands per ``COMMAND key-family`` in ``aof``, a run of RESP arrays."""
    size: Counter[str] = Counter()
    count: Counter[str] = Counter()
    at, end = 0, len(aof)
    while at < end:
        start = at
        eol = aof.index(b"\r\n", at)
        if aof[at : at + 1] != b"*":  # not an array (Redis writes only arrays here): skip the line
            at = eol + 2
            continue
        args = []
        at = eol + 2
        for _ in range(int(aof[start + 1 : eol])):
            eol = aof.index(b"\r\n", at)
            length = int(aof[at + 1 : eol])
            args.append(aof[eol + 2 : eol + 2 + length])
            at = eol + 2 + length + 2
        name = f"{args[0].decode().upper()} {family(args[1]) if len(args) > 1 else ''}".rstrip()
        size[name] += at - start
        count[name] += 1
    return size, count


async def measure(commands: int, rate: float, seed: int) -> dict[str, object]:
    workload = generate(commands, seed)
    exchange = workload.config()
    setup = command_lines(workload, workload.setup)
    main = command_lines(workload, workload.main)[:commands]
    del workload
    config_path = Path(tempfile.mkdtemp(prefix="tw-aofmix-")) / "exchange.json"
    config_path.write_bytes(orjson.dumps(exchange))
    with redis_server("everysec", None, "delete") as url:
        client = redis.Redis.from_url(url)
        directory = Path(str(client.config_get("dir")["dir"])) / "appendonlydir"
        conn = await Connection.open(url, timeout=120)
        replies = await Connection.open(url, timeout=120)
        try:
            last = await fill(conn, setup)
            with engine(url, config_path):
                await wait_applied(conn, last)
                [incr] = sorted(directory.glob("*.incr.aof"))
                before, memory = incr.stat().st_size, client.info("memory")["used_memory"]
                await replies.call(b"SUBSCRIBE", b"tw:reply:bench")
                received = 0

                async def listen() -> None:
                    nonlocal received
                    while received < commands:
                        message = await replies.reply(timeout=30)
                        received += message[2].count(b"\n") + 1  # a reply per line

                # every reply came: each in the transaction of its command's batch, all in the AOF
                await _paced(conn, main, [0] * commands, commands, rate, listen)
            grown = client.info("memory")["used_memory"] - memory
            size, count = appended(incr.read_bytes()[before:])
        finally:
            await conn.close()
            await replies.close()
            client.close()
    total = sum(size.values())
    return {
        "commands": commands,
        "rate": rate,
        "aof_bytes_per_command": total / commands,
        "memory_bytes_per_command": grown / commands,
        "by_family": [
            {
                "op": name,
                "bytes_per_command": size[name] / commands,
                "ops_per_command": count[name] / commands,
            }
            for name, _ in size.most_common()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=10_000, help="commands appended per second")
    parser.add_argument("--top", type=int, default=25, help="families printed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.commands, args.rate, args.seed))
    print(
        f"{result['commands']:,} commands at {args.rate:,.0f}/s: "
        f"{result['aof_bytes_per_command']:,.0f} AOF bytes per command, "
        f"Redis's used_memory +{result['memory_bytes_per_command']:,.0f} bytes per command"
    )
    for row in result["by_family"][: args.top]:  # type: ignore[index]
        print(f"  {row['bytes_per_command']:8.1f} B  {row['ops_per_command']:6.3f} ops  {row['op']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
