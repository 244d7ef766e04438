"""``tradewire up``: the whole exchange on one machine, in the foreground.

It is a small supervisor, not a second implementation: it finds or starts Redis (embedded, in the data
directory, unless ``REDIS_URL`` is set), then runs ``tradewire engine`` and ``tradewire gateway`` as
child processes pointed at that Redis, exactly as an operator would run them on separate machines.
A child that dies is restarted (the engine recovers from its snapshot and the journal). SIGINT or
SIGTERM stops the gateway first (no new commands), then the engine, then the embedded Redis, which
fsyncs its AOF on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import orjson
import redis.asyncio
import structlog
import typer

from tradewire import keys
from tradewire.bots import run_bots
from tradewire.gateway.limits import limits_from_env
from tradewire.gateway.secrets import MASTER_KEY_ENV, load_master_key
from tradewire.journal.archive import DEFAULT_DIRECTORY, KEEP_SECONDS
from tradewire.journal.lease import HOST, Holder
from tradewire.ops.children import die_with_parent
from tradewire.ops.logging import configure_logging
from tradewire.redisconn import (
    EmbeddedRedis,
    EmbeddedRedisError,
    RedisConnectError,
    RedisStartInterrupted,
    connect,
    redact_url,
)
from tradewire.runtime import (
    RuntimeSetupError,
    check_listen,
    data_dir_or_default,
    embedded_redis,
    hold_data_dir,
    load_config,
    reach_redis,
    redis_url,
)

log = structlog.get_logger("tradewire.up")

RESTARTS_PER_MINUTE = 5
"""A child that dies more often than this is not restarted again: something is wrong, say so and stop."""


BOTS_STOP_SECONDS = 10.0
"""How long a stop waits for the demo bots to close their connections."""


@dataclass
class Child:
    """One supervised ``tradewire`` subcommand."""

    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.starts = [t for t in self.starts if time.monotonic() - t < 60] + [time.monotonic()]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tradewire.cli", *self.args],
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        log.info("started", process=self.name, pid=self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def may_restart(self) -> bool:
        return len([t for t in self.starts if time.monotonic() - t < 60]) < RESTARTS_PER_MINUTE

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("did not stop in time; killing", process=self.name, pid=self.process.pid)
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Archiving:
    """How often ``up`` archives the journal, as an operator's cron job would (docs/operations.md)."""

    every: float
    """Seconds between runs of ``tradewire journal archive``; 0: never."""
    keep_seconds: float

    def engine_args(self) -> list[str]:
        """Only what a snapshot covers can leave Redis: the engine snapshots at least as often."""
        return ["--snapshot-seconds", str(min(60.0, self.every))] if self.every else []


async def archive_periodically(
    archiving: Archiving, directory: Path, root: Path, env: dict[str, str]
) -> None:
    """Run ``tradewire journal archive`` every ``archiving.every`` seconds and log what it did.

    A child process, not a call: the archive is the operator's command, crash-safe at any instant,
    and its synchronous Redis and file work stays off the supervisor's loop.
    """
    while True:
        await asyncio.sleep(archiving.every)
        try:
            status, out, err = await _archive_once(archiving, directory, root, env)
        except OSError as exc:  # could not start it (out of processes, memory): try again next time
            log.warning("journal archive failed", error=str(exc))
            continue
        said = err.decode(errors="replace").strip().splitlines()
        if status != 0:
            log.warning("journal archive failed", status=status, error=said[-1] if said else "")
            continue
        try:
            log.info("journal archived", **orjson.loads(out.splitlines()[-1]))
        except (orjson.JSONDecodeError, IndexError, TypeError):
            log.info("journal archived", output=out.decode(errors="replace").strip())


async def _archive_once(
    archiving: Archiving, directory: Path, root: Path, env: dict[str, str]
) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tradewire.cli", "journal", "archive", str(directory),
        "--data-dir", str(root), "--keep-seconds", str(archiving.keep_seconds),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        preexec_fn=die_with_parent(),
    )  # fmt: skip
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()  # safe at any instant: Redis keeps what no transaction moved
        await process.wait()
        raise
    return process.returncode or 0, out, err


WEB_ROOT = Path(__file__).parent / "web"


def ensure_page_assets(web_root: Path = WEB_ROOT, stop: Callable[[], bool] = lambda: False) -> None:
    """Fetch the page's chart library from the npm registry on the first start (the page's install step).

    The library is not copied into the repository; ``package-lock.json`` pins it. Without npm the
    exchange still runs (REST, WebSocket), and the page says that its chart is missing.
    """
    if (web_root / "node_modules" / "lightweight-charts" / "package.json").is_file():
        return
    if not (web_root / "package-lock.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        log.warning("npm not found: the page's chart library is not installed (install Node.js and npm)")
        return
    typer.echo("fetching the page's chart library from the npm registry (first start only)...")
    fetch = subprocess.Popen([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=web_root)
    while fetch.poll() is None:
        if stop():  # a stop asked for meanwhile: the next start fetches again
            fetch.terminate()
            fetch.wait()
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            fetch.wait(0.1)
    if fetch.returncode != 0:
        log.warning("npm ci failed: the page's chart library is not installed", status=fetch.returncode)


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)
    return False


async def _wait_http(url: str, child: Child, timeout: float, stop: asyncio.Event) -> bool:
    """Whether ``child`` answered ``url`` before a stop was asked for (False then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop.is_set():
            return False
        if child.exited() is not None:
            raise RuntimeSetupError(f"{child.name} exited with status {child.exited()} while starting")
        if await asyncio.to_thread(_answers, url):
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    raise RuntimeSetupError(f"{child.name} did not answer {url} within {timeout:.0f} s")


async def _wait_engine(
    client: redis.asyncio.Redis, child: Child, timeout: float, stop: asyncio.Event
) -> Holder | Literal[False] | None:
    """Once the exchange's engine is live: ``None`` when it is ``child``, the lease's holder when
    another engine is (``child`` then stands by, as it should: two ``up`` against one ``REDIS_URL``);
    False when a stop was asked for first.

    Another engine counts only once its heartbeat moves, under the lease: one that died a moment ago
    leaves both behind for seconds, and ``child`` takes over from it."""
    deadline = time.monotonic() + timeout
    seen: dict[int, float] = {}
    """The heartbeat time last read of each other engine (by pid)."""
    while time.monotonic() < deadline:
        if stop.is_set():
            return False
        if child.exited() is not None:
            raise RuntimeSetupError(f"the engine exited with status {child.exited()} while starting")
        pid, host, at = _heartbeat(cast("bytes | None", await client.get(keys.ENGINE_HEARTBEAT)))
        if pid is not None and pid == child.pid() and host == HOST:
            return None
        holder = Holder.parse(cast("bytes | None", await client.get(keys.ENGINE_LEASE)))
        if pid is not None and holder is not None and (holder.pid, holder.host) == (pid, host):
            if pid in seen and at > seen[pid]:
                return holder
            seen.setdefault(pid, at)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    raise RuntimeSetupError(f"the engine was not ready within {timeout:.0f} s")


def _heartbeat(raw: bytes | None) -> tuple[int | None, str | None, float]:
    """The pid, host and time of an engine's heartbeat (``tradewire.journal.service``), if readable."""
    try:
        beat = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        beat = None
    if not isinstance(beat, dict) or not isinstance(beat.get("pid"), int):
        return None, None, 0.0
    host, at = beat.get("host"), beat.get("at")
    return (
        beat["pid"],
        host if isinstance(host, str) else None,
        float(at) if isinstance(at, int | float) else 0.0,
    )


async def _supervise(
    url: str,
    base: str,
    children: list[Child],
    demo: bool,
    config_path: Path | None,
    stop: asyncio.Event,
    archiver: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    client = connect(url)
    engine, gateway = children
    archiving: asyncio.Task[None] | None = None
    try:
        engine.start()
        active = await _wait_engine(client, engine, 120, stop)
        if active is False:
            log.info("stopping while starting")
            return
        gateway.start()
        if not await _wait_http(f"{base}/api/v3/ping", gateway, 60, stop):
            log.info("stopping while starting")
            return
        if archiver is not None:
            archiving = asyncio.create_task(archiver())
        bots: asyncio.Task[None] | None = None
        if demo:
            config, _ = load_config(config_path, names=False)
            bots = asyncio.create_task(run_bots(url, config))
        typer.echo(f"tradewire is up: {base}/  (Redis {redact_url(url)}; Ctrl-C stops it)")
        if active is not None:
            log.warning("engine standing by", active=active.describe())
            typer.echo(
                f"its engine stands by: another engine ({active.describe()}) holds this Redis's "
                "engine lease and runs the exchange; this one takes over if that one stops"
            )
        while not stop.is_set():
            for child in children:
                status = child.exited()
                if status is None:
                    continue
                if not child.may_restart():
                    raise RuntimeSetupError(f"{child.name} keeps exiting (status {status}); giving up")
                log.warning("exited; restarting", process=child.name, status=status)
                child.start()
            if bots is not None and bots.done() and not bots.cancelled() and bots.exception() is not None:
                log.warning("demo bots stopped; restarting them", error=str(bots.exception()))
                config, _ = load_config(config_path, names=False)
                bots = asyncio.create_task(run_bots(url, config))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        if bots is not None:
            bots.cancel()
            # bounded: a stop must not hang on the bots' connections (asyncio.wait, unlike
            # wait_for, does not wait again for a task that is slow to take its cancellation)
            done, _ = await asyncio.wait({bots}, timeout=BOTS_STOP_SECONDS)
            if not done:
                log.warning("demo bots did not stop in time; leaving them", seconds=BOTS_STOP_SECONDS)
            elif not bots.cancelled() and bots.exception() is not None:
                log.warning("demo bots ended with an error", error=str(bots.exception()))
    finally:
        if archiving is not None:
            archiving.cancel()
            await asyncio.wait({archiving})
        await client.aclose()


def _stop_left_running(server: EmbeddedRedis) -> None:
    """Stop the Redis that an earlier ``up`` on this data directory left running: it died without
    stopping it (its children take SIGTERM from the kernel then, and this one may still be on its
    way out). This ``up`` holds ``up.lock``, so no other tradewire uses that server."""
    pid = server.stop_left_running()
    if pid is not None:
        log.warning("stopped the embedded Redis that an earlier tradewire up left running", pid=pid)


def _already_stopping(signum: int, _: object) -> None:
    """A signal during the stop: it goes on (each step is bounded); interrupted, it left Redis running."""
    log.info("already stopping; wait for it", signal=signal.Signals(signum).name)


class _Interrupted(BaseException):
    """SIGINT or SIGTERM while ``up`` starts, before its loop takes the signals: stop what was started.

    A ``BaseException``, as ``KeyboardInterrupt``, so that no ``except Exception`` on the way (a
    library's retry, a probe that tolerates errors) takes it for a failure to ignore."""


_signalled: list[int] = []
"""SIGINT and SIGTERM taken while ``up`` starts, acted on between its steps
(:func:`_stop_if_signalled`), by its waits, and by :func:`_run` once the event loop runs."""


def _remember(signum: int, _: object) -> None:
    """The handler while ``up`` starts. An exception raised from a handler lands between any two
    bytecodes: inside ``fork``'s bookkeeping (logging's lock, taken before a fork and released in
    the parent after it, stayed held, and the stop hung), in ``asyncio.run`` making its loop (whose
    ``__del__`` printed a traceback). So a signal is a flag, which the steps and the waits read."""
    _signalled.append(signum)


def _stop_if_signalled() -> None:
    if _signalled:
        raise _Interrupted(signal.Signals(_signalled[0]).name)


def main(
    host: str,
    port: int,
    data_dir: Path | None,
    config: Path | None,
    demo: bool,
    fsync: Literal["always", "everysec"],
    archiving: Archiving = Archiving(every=0, keep_seconds=KEEP_SECONDS),
    lease_seconds: float | None = None,
) -> None:
    # from the first instant: a signal's default action would end this process and leave running
    # whatever it had started, each child in its own session
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _remember)
    configure_logging("up")
    root = data_dir_or_default(data_dir)
    server: EmbeddedRedis | None = None
    children: list[Child] = []
    status = 0
    try:
        try:
            load_config(config, names=False)  # the engine applies the name rules to a new exchange
            limits_from_env(os.environ)  # the gateway's: refused here rather than by each of its restarts
            url = redis_url()  # a bad REDIS_URL is refused before the data directory is touched
            hold_data_dir(root)
            check_listen(host, port)
            if url is None:
                server = embedded_redis(root, fsync)
                _stop_left_running(server)
                _stop_if_signalled()
                try:
                    url = server.start(interrupted=lambda: bool(_signalled)).url
                except RedisStartInterrupted:
                    _stop_if_signalled()
                    raise
        except (RuntimeSetupError, EmbeddedRedisError, ValueError) as exc:
            typer.echo(f"tradewire up: {exc}", err=True)
            raise typer.Exit(2) from exc
        _stop_if_signalled()
        if server is None:
            try:
                reach_redis(url)  # at most its connect timeout
            except RedisConnectError as exc:
                typer.echo(f"tradewire up: {exc}", err=True)
                raise typer.Exit(1) from exc
        if fsync == "everysec" and server is not None:
            log.warning(
                "appendfsync everysec: faster, weaker durability",
                risk="a crash of the machine, or of Redis while a slow disk holds back its writes, loses "
                "the acknowledged commands of the last one to two seconds (docs/operations.md)",
            )
        _stop_if_signalled()
        ensure_page_assets(stop=lambda: bool(_signalled))
        _stop_if_signalled()
        if not os.environ.get(MASTER_KEY_ENV):
            load_master_key(root, create=True)  # before the gateway starts, so it can verify every key
        env = {**os.environ, "REDIS_URL": url, "TRADEWIRE_DATA_DIR": str(root)}
        config_args = ["--config", str(config.absolute())] if config else []
        lease_args = [] if lease_seconds is None else ["--lease-seconds", str(lease_seconds)]
        children += [
            Child(
                "engine",
                ["engine", "--data-dir", str(root), *config_args, *archiving.engine_args(), *lease_args],
                env,
            ),
            Child("gateway", ["gateway", "--host", host, "--port", str(port), "--data-dir", str(root)], env),
        ]
        _stop_if_signalled()
        asyncio.run(_run(url, host, port, root, env, children, demo, config, archiving))
    except _Interrupted as exc:
        log.info("stopping while starting", signal=str(exc))
    except RuntimeSetupError as exc:
        typer.echo(f"tradewire up: {exc}", err=True)
        status = 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the stop short
            signal.signal(signum, _already_stopping)
        started = bool(children) or (server is not None and server.running)
        for child in reversed(children):
            child.stop()
        if server is not None:
            server.stop()
        if started:  # a refusal before anything started stays one line
            log.info("stopped")
        for signum in (signal.SIGINT, signal.SIGTERM):
            # everything is stopped: a late Ctrl-C has nothing left to stop. Python's exit puts back
            # the default action of a signal that has a Python handler (not of an ignored one), under
            # which it would end this process with -SIGINT after a clean stop
            signal.signal(signum, signal.SIG_IGN)
    if status:
        raise typer.Exit(status)


async def _run(
    url: str,
    host: str,
    port: int,
    root: Path,
    env: dict[str, str],
    children: list[Child],
    demo: bool,
    config: Path | None,
    archiving: Archiving,
) -> None:
    """Supervise the children until SIGINT or SIGTERM, which the loop takes from here on."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if _signalled:  # taken while the loop was being made
            log.info("stopping while starting", signal=signal.Signals(_signalled[0]).name)
            return
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        archiver = None
        if archiving.every:
            directory = root / DEFAULT_DIRECTORY
            archiver = functools.partial(archive_periodically, archiving, directory, root, env)
        await _supervise(url, f"http://{shown}:{port}", children, demo, config, stop, archiver)
    finally:
        # closing the loop would put back the signals' default actions, under which a signal ends
        # this process before it has stopped its children
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
            signal.signal(signum, _already_stopping)
