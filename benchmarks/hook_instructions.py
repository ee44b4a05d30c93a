"""Run ``IntentguardMiddleware.wrap_tool_call`` N times, for counting instructions under valgrind.

Wall-clock figures on a shared machine move by 20-50 % between runs; instruction counts do not.
The difference between two counts, divided by the difference in calls, is the instructions one
call costs, start-up excluded::

    for n in 100 1100; do
      PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        .venv/bin/python -m benchmarks.hook_instructions fresh $n 2>&1 | grep "I *refs"
    done

Modes: ``fresh`` (a distinct tool output every call), ``same`` (the same output every call),
``decide`` (the tool answers with a ``Command``: the decision alone). The session is primed as in
``benchmarks.bench_langchain``, with no audit sink, so no writer thread adds its own work.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.bench_langchain import Requests, agent_state
from benchmarks.latency import PARAMS, SEED, UNTRUSTED_KB, Setup, TextGen, bench_schema

WARM = 300


def main(argv: Sequence[str] | None = None) -> int:
    from intentguard_langchain import IntentguardMiddleware

    import intentguard as ig

    mode, calls = (argv if argv is not None else sys.argv[1:])[:2]
    with tempfile.TemporaryDirectory(prefix="hook-instructions-") as directory:
        setup = Setup(Path(directory), "instructions")
        setup.guard = ig.Guard(schemas=[bench_schema()], clock=ig.SystemClock())  # no audit sink
        setup.intent = setup.guard.intent("refund_request", PARAMS)
        untrusted = TextGen(SEED).results(UNTRUSTED_KB * 1024)
        session = setup.start()
        setup.prime(session, untrusted)
        requests = Requests(agent_state(untrusted), 8192)
        handler = {"fresh": requests.fresh_handler, "same": requests.handler, "decide": requests.commanding}[mode]
        hook = IntentguardMiddleware(session).wrap_tool_call
        made = session.used_total
        for request in requests.batch(WARM) + requests.batch(int(calls)):
            hook(request, handler)
        if session.used_total - made != WARM + int(calls):
            raise SystemExit("some calls were not allowed; the count would describe another path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
