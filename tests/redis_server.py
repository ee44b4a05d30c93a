"""A real redis-server for tests: started on a free loopback port, no persistence, killed after.

Use :func:`redis_server` as a context manager (or through a fixture); it yields the server's
``redis://127.0.0.1:PORT/0`` URL. Without a ``redis-server`` binary the test is skipped, except
in CI (``CI=true``), where a missing server fails the test instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["redis_server"]

START_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed; CI must run the Redis tests (make system-deps)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


@contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway redis-server on loopback; yields its URL and kills it on exit."""
    import redis

    port = _free_port()
    process = subprocess.Popen(
        [_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # waiting on another process to come up, bounded
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port} (exit code {process.poll()})")
                time.sleep(0.02)
        client.close()
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)
