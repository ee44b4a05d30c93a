"""Latency of the guard's hot path, as ratios to a plain-Python floor measured in the same run.

Run ``python -m benchmarks.latency --out benchmarks/results/latency.json`` (``make bench``).
The budgets are those of DESIGN.md, "Budgets"; this script reports against them and never
fails on a figure. See benchmarks/README.md for what each key means and how it is measured.

The guarded session is in a realistic state when it is timed: it has observed a user message, the
record of the order it looked up and a few KB of untrusted tool output, so the provenance stage
looks every high-privilege argument up in a populated ledger. A second part compares a session
whose ledger holds 1 MB of untrusted text with one holding 1 KB (seeded, generated text).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import accumulate, repeat
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from benchmarks.results_file import merge_results

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "intent_schemas" / "refund_request.yaml"
PARAMS = {"order_id": "A123", "customer_email": "ann@example.com", "max_refund": 50}
TOOL = "issue_refund"
ARGS = {"order_id": "A123", "amount": 25.0}
LOW_TOOL = "search_kb"
LOW_ARGS = {"query": "refund policy for a duplicate card charge"}
LARGE_BUDGET = 10**9

# What the timed session has observed before the first timed call (Setup.prime): the user's
# message (trusted), the order record fetched with a trusted order id (derived), and untrusted
# search results. The amount 25.0 is in the user's message and in the record.
USER_MESSAGE = (
    "Hi, I was charged twice for my order A123 last week. Please refund the duplicate charge of $25.00 "
    "to my card. Thanks, Ann (ann@example.com)"
)
ORDER_RECORD = {
    "order_id": "A123",
    "customer": {"email": "ann@example.com", "name": "Ann Example"},
    "placed": "2024-05-02",
    "items": [
        {"sku": "SKU-MUG-12", "title": "Enamel mug, blue", "price": 25.0, "qty": 1},
        {"sku": "SKU-TEA-03", "title": "Green tea, 100 g", "price": 15.5, "qty": 1},
    ],
    "payments": [
        {"id": "pay_8c1f20", "method": "visa-4242", "amount": 40.5, "status": "captured"},
        {"id": "pay_8c1f21", "method": "visa-4242", "amount": 25.0, "status": "captured"},
    ],
    "total": 40.5,
}
UNTRUSTED_KB = 4  # KB of untrusted tool output in the timed session's ledger
SMALL_KB, LARGE_KB = 1, 1024  # the ledger-size comparison
CHUNK = 4096  # characters of untrusted text per tool result when a ledger is filled
SEED = 20240501
FRESH = 4500  # distinct amounts for the fresh-argument figure: more than ledger caches hold (4,096)

# figure key: (budget, how the figure reads)
BUDGETS: dict[str, tuple[float, str]] = {
    "policy_ratio_p50": (2.0, "policy stages p50 / floor p50"),
    "pipeline_ratio_p50": (15.0, "check(issue_refund) p50 / floor"),
    "pipeline_ratio_p99": (40.0, "check(issue_refund) p99 / floor"),
    "pipeline_low_ratio_p50": (15.0, "check(search_kb) p50 / floor"),
    "pipeline_low_ratio_p99": (40.0, "check(search_kb) p99 / floor"),
    "call1000_vs_call1": (1.2, "call #1000 / call #1 (medians)"),
    "provenance_1mb_vs_1kb": (1.2, "check, 1 MB / 1 KB ledger, p50"),
    "import_ms": (100.0, "import intentguard, ms"),
}

TABLE = {TOOL: (math.inf, LARGE_BUDGET)}


def floor(name: str, now: float, used: int) -> bool:
    """The floor: a dict lookup plus two comparisons, as DESIGN.md defines it."""
    spec = TABLE[name]
    return now < spec[0] and used < spec[1]


# Each timer first makes WARM untimed calls, then times one batch with the collector off and
# returns nanoseconds per call. The warm-up matters: whatever ran in between (an audit flush
# above all) leaves caches and branch predictors cold, and a cold call costs 10-100x a warm one,
# the floor's included. All timers share one loop shape (itertools.repeat, locals only) so the
# loop costs the same in each.
WARM = 100


def time_loop(n: int) -> float:
    for _ in repeat(None, WARM):
        pass
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        pass
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_floor(n: int, name: str, now: float, used: int) -> float:
    fn = floor
    for _ in repeat(None, WARM):
        fn(name, now, used)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        fn(name, now, used)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_policy(n: int, grant: Any, name: str, args: Any, now: float, used: int, used_total: int) -> float:
    for _ in repeat(None, WARM):
        grant.evaluate(name, args, now, used, used_total)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        grant.evaluate(name, args, now, used, used_total)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_pipeline(n: int, session: Any, call: Any) -> float:
    for _ in repeat(None, WARM):
        session.check(call)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        session.check(call)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_stage(n: int, stage: Any, session: Any, call: Any, now: float) -> float:
    for _ in repeat(None, WARM):
        stage(session, call, now)
    gc.disable()
    start = perf_counter_ns()
    for _ in repeat(None, n):
        stage(session, call, now)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


class Fresh:
    """Calls that differ in one argument, handed out in a cycle longer than any cache of values.

    Times the provenance stage on a value it has not just looked up; ``next_batch`` returns the
    next ``n`` calls as a list, so the timed loop iterates a list instead of ``repeat``.
    """

    def __init__(self, calls: Sequence[Any]) -> None:
        self.calls = list(calls)
        self.at = 0

    def next_batch(self, n: int) -> list[Any]:
        if self.at + n > len(self.calls):
            self.at = 0
        self.at += n
        return self.calls[self.at - n : self.at]


def time_stage_fresh(n: int, stage: Any, session: Any, fresh: Fresh, now: float) -> float:
    for call in fresh.next_batch(WARM):
        stage(session, call, now)
    calls = fresh.next_batch(n)
    gc.disable()
    start = perf_counter_ns()
    for call in calls:
        stage(session, call, now)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_one(session: Any, call: Any) -> int:
    gc.disable()
    start = perf_counter_ns()
    session.check(call)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in (0, 100])."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


_WORDS = """
the of and to a in is it you that for on was with as have be at this are from or by not but what all were we when
your can said there use an each which she do how their if will up other about out many then them these so some her
would make like him into time has look two more write go see number no way could people my than first water been
order refund payment shipping delivery invoice account customer service support package return item items charge
charged duplicate credit balance please thanks thank regards hello team ticket issue status update received sent
week today tomorrow yesterday monday tuesday wednesday thursday friday business days within policy eligible
original method processing processed pending approved warehouse carrier tracking label address street city
product size color quantity price total subtotal tax discount coupon promotion store online purchase receipt
damaged missing wrong late arrived box replacement exchange bank transfer statement month year contact phone
reply message note follow request information details available unfortunately however also still
""".split()  # noqa: SIM905 - a word list reads better as text
_SYLLABLES = "ka ri to mo ne sa lu ven dor tal bri ex pro ser vin gal tor mi la ze qua fen ros pel dra kin ost".split()  # noqa: SIM905
_FIRST = "anna ben carla david elena farid grace hugo ines jonas karin liam maria nora oscar paula sofia tomas".split()  # noqa: SIM905
_LAST = "schmidt garcia rossi novak smith muller dubois kowalski jensen silva tanaka okafor larsen weber".split()  # noqa: SIM905
_COMPANIES = "acme globex initech umbrella hooli vandelay stark wayne wonka tyrell cyberdyne soylent".split()  # noqa: SIM905
_TLDS = ("com", "net", "org", "io", "de", "co.uk", "fr")
_MONTHS = "January February March April May June July August September October November December".split()  # noqa: SIM905


class TextGen:
    """Deterministic, realistic-looking untrusted text: e-mails, help pages and order logs.

    Words follow a Zipf law over ~200 common words and ~5,000 made-up ones; about half of the
    sentences carry an entity (an e-mail, URL, amount, date, id, phone number or IBAN), and
    every entity is drawn afresh, so the ledger indexes many distinct values, as real text makes it.
    """

    def __init__(self, seed: int) -> None:
        self.r = r = random.Random(seed)
        made_up = {"".join(r.choice(_SYLLABLES) for _ in range(r.randint(2, 4))) for _ in range(6000)}
        self.vocab = _WORDS + sorted(made_up - set(_WORDS))
        self.cum = list(accumulate(1.0 / rank for rank in range(1, len(self.vocab) + 1)))

    def words(self, k: int) -> list[str]:
        return self.r.choices(self.vocab, cum_weights=self.cum, k=k)

    def host(self) -> str:
        r = self.r
        return f"{r.choice(_COMPANIES)}{r.choice(('', '-shop', 'mail', '-eu'))}.{r.choice(_TLDS)}"

    def name(self) -> tuple[str, str]:
        return self.r.choice(_FIRST), self.r.choice(_LAST)

    def email(self, name: tuple[str, str] | None = None) -> str:
        first, last = name or self.name()
        return f"{first}.{last}{self.r.choice(('', str(self.r.randint(1, 99))))}@{self.host()}"

    def url(self) -> str:
        r = self.r
        path = "/".join(self.words(r.randint(1, 3)))
        slug = f"{r.choice(self.vocab)}-{r.randint(1, 99999)}"
        return f"https://{r.choice(('www', 'help', 'shop', 'docs'))}.{self.host()}/{path}/{slug}"

    def amount(self) -> str:
        r = self.r
        value = r.choice((r.randint(1, 99), r.randint(100, 9999))) + r.choice((0, r.randint(0, 99) / 100))
        return r.choice((f"${value:,.2f}", f"€{value:.2f}", f"{value:.2f} EUR", f"USD {value:,.2f}", f"£{value:g}"))

    def date(self) -> str:
        r = self.r
        y, m, d = r.randint(2021, 2025), r.randint(1, 12), r.randint(1, 28)
        return r.choice((f"{y}-{m:02d}-{d:02d}", f"{d} {_MONTHS[m - 1]} {y}", f"{_MONTHS[m - 1]} {d}, {y}"))

    def ident(self) -> str:
        r = self.r
        n = r.randint(1000, 99999999)
        return r.choice(
            (
                f"ORD-{n}",
                f"{r.choice('BCDEFGHK')}{n}",
                f"INV-{r.randint(2021, 2025)}-{n % 100000:05d}",
                f"TCK{n}",
                f"{r.getrandbits(32):08x}",
                f"SKU-{r.choice(self.vocab)[:4].upper()}-{n % 1000}",
            )
        )

    def phone(self) -> str:
        r = self.r
        return r.choice(
            (
                f"+1 {r.randint(200, 989)} 555 {r.randint(0, 9999):04d}",
                f"({r.randint(200, 989)}) 555-{r.randint(0, 9999):04d}",
                f"+49 30 {r.randint(1000000, 99999999)}",
            )
        )

    def iban(self) -> str:
        bban = f"{self.r.randint(10**7, 10**8 - 1)}{self.r.randint(10**9, 10**10 - 1)}"
        compact = f"DE{98 - int(bban + '131400') % 97:02d}{bban}"  # a valid check sum
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))

    def sentence(self) -> str:
        r = self.r
        words = self.words(r.randint(6, 18))
        if r.random() < 0.5:
            make = r.choice((self.email, self.url, self.amount, self.amount, self.date, self.ident, self.ident))
            words.insert(r.randint(0, len(words)), (self.phone if r.random() < 0.1 else make)())
        if r.random() < 0.05:
            words.append('"' + " ".join(self.words(3)) + '"')
        if r.random() < 0.02:
            words.insert(r.randint(0, len(words)), self.iban())
        text = " ".join(words)
        return text[0].upper() + text[1:] + r.choice(".?!.")

    def paragraphs(self, low: int, high: int) -> str:
        r = self.r
        sentences = (" ".join(self.sentence() for _ in range(r.randint(2, 6))) for _ in range(r.randint(low, high)))
        return "\n\n".join(sentences)

    def document(self) -> str:
        r = self.r
        kind = r.random()
        if kind < 0.5:
            first, last = name = self.name()
            return (
                f"From: {self.email(name)}\nTo: {self.email()}\nDate: {self.date()}\n"
                f"Subject: Re: {' '.join(self.words(4))} {self.ident()}\n\nHello {r.choice(_FIRST).title()},\n\n"
                f"{self.paragraphs(1, 4)}\n\nBest regards,\n{first.title()} {last.title()}\n{self.phone()}\n"
            )
        if kind < 0.8:
            return f"{' '.join(self.words(r.randint(3, 7))).title()}\n{self.url()}\n\n{self.paragraphs(2, 5)}\n"
        status = ("open", "shipped", "refunded", "pending", "closed")
        return "".join(
            f"{self.date()} {r.randint(0, 23):02d}:{r.randint(0, 59):02d} {self.ident()} status={r.choice(status)} "
            f"amount={self.amount()} {' '.join(self.words(r.randint(2, 6)))}\n"
            for _ in range(r.randint(3, 12))
        )

    def results(self, size: int, chunk: int = CHUNK) -> list[str]:
        """``size`` characters of documents, cut into tool results of about ``chunk`` characters."""
        out: list[str] = []
        current, total = "", 0
        while total < size:
            current += self.document() + "\n"
            if len(current) >= chunk or total + len(current) >= size:
                current = current[: size - total]
                out.append(current)
                total += len(current)
                current = ""
        return out


def bench_schema() -> Any:
    """refund_request.yaml with budgets and lifetimes large enough that every call stays ALLOW."""
    import yaml

    from intentguard.loader import parse_schema

    document = yaml.safe_load(SCHEMA_FILE.read_text("utf-8"))
    document["max_calls"] = LARGE_BUDGET
    for tool in document["tools"].values():
        tool["max_calls"] = LARGE_BUDGET
    document["ttl"] = "PT2H"
    for rule in document.get("decay", []):
        rule["after"] = "PT1H"
    return parse_schema(document, source="benchmarks:refund_request")


class Setup:
    """A guard with a real JsonlSink in a temporary directory, the bound intent and the calls."""

    def __init__(self, directory: Path, label: str) -> None:
        import intentguard as ig

        self.ig = ig
        self.sink = ig.JsonlSink(directory / f"{label}.jsonl")
        self.guard = ig.Guard(schemas=[bench_schema()], clock=ig.SystemClock(), audit=[self.sink])
        self.intent = self.guard.intent("refund_request", PARAMS)
        self.principal = ig.Principal(user="u-7", tenant="acme", auth_event="login-42")
        self.agent = ig.AgentIdentity(id="support-bot")
        self.call = ig.ToolCall(TOOL, dict(ARGS), "call-1")
        self.low_call = ig.ToolCall(LOW_TOOL, dict(LOW_ARGS), "call-2")
        self.allow = ig.Effect.ALLOW

    def start(self) -> Any:
        return self.guard.start(self.intent, principal=self.principal, agent=self.agent)

    def prime(self, session: Any, untrusted: Sequence[str]) -> None:
        """What a support run has seen before it refunds: the user's message, the order record
        (looked up with the trusted order id, so its fields are derived), and search results."""
        self.prime_trusted(session)
        self.ingest(session, untrusted)

    def prime_trusted(self, session: Any) -> None:
        ig = self.ig
        session.observe(USER_MESSAGE, source=ig.Source.USER)
        lookup = ig.ToolCall("lookup_order", {"order_id": PARAMS["order_id"]}, "call-lookup")
        if session.check(lookup).effect is not self.allow:
            raise SystemExit("lookup_order is not allowed; the benchmark schema no longer fits the library")
        session.observe_result("call-lookup", "lookup_order", json.dumps(ORDER_RECORD))

    def ingest(self, session: Any, untrusted: Sequence[str]) -> None:
        for index, text in enumerate(untrusted):
            session.observe_result(f"call-kb-{index}", LOW_TOOL, text)

    def close(self) -> None:
        self.guard.close()


def clean_ledger(session: Any) -> None:
    """Fail unless the ledger took the plain path: no instruction found, not saturated."""
    ledger = session.ledger
    if ledger.instructions or ledger.saturated or not ledger.untrusted_seen:
        raise SystemExit(
            f"the generated text gave {len(ledger.instructions)} instructions (saturated: {ledger.saturated}); "
            "the timed path would not be the common one"
        )


def fresh_calls(setup: Setup, session: Any, now: float, count: int = FRESH) -> list[Any]:
    """``issue_refund`` calls with ``count`` distinct amounts (0.01, 0.02, ...) that the ledger has
    not seen: the provenance stage looks each up, finds nothing and passes it (unseen is not tainted)."""
    from intentguard.pipeline import provenance_stage

    calls = []
    for cents in range(1, 100 * PARAMS["max_refund"] + 1):
        candidate = setup.ig.ToolCall(TOOL, {**ARGS, "amount": cents / 100}, "call-1")
        if not session.ledger.origins(candidate.args["amount"]) and provenance_stage(session, candidate, now) is None:
            calls.append(candidate)
            if len(calls) == count:
                return calls
    raise SystemExit(f"fewer than {count} amounts up to max_refund are unseen; the fresh-argument figure needs them")


def measure_rounds(setup: Setup, *, rounds: int, batch: int, untrusted: Sequence[str]) -> dict[str, list[float]]:
    """Interleave loop, floor, policy, both pipelines and the provenance stage; rotate their
    order every round."""
    from intentguard.pipeline import provenance_stage

    session = setup.start()
    setup.prime(session, untrusted)
    clean_ledger(session)
    grant = session.grant
    call, low = setup.call, setup.low_call
    now = grant.issued_at + 1.0
    for checked in (call, low):
        if session.check(checked).effect is not setup.allow:
            raise SystemExit(f"{checked.name} is not allowed; the benchmark schema no longer fits the library")
    if grant.evaluate(TOOL, call.args, now, 0, 0):
        raise SystemExit("benchmark call fails the grant; the benchmark schema no longer fits the library")
    fresh = Fresh(fresh_calls(setup, session, now))
    subjects: list[tuple[str, Callable[[], float]]] = [
        ("loop", lambda: time_loop(batch)),
        ("floor", lambda: time_floor(batch, TOOL, now, 0)),
        ("policy", lambda: time_policy(batch, grant, TOOL, call.args, now, 0, 0)),
        ("pipeline", lambda: time_pipeline(batch, session, call)),
        ("pipeline_low", lambda: time_pipeline(batch, session, low)),
        ("stage", lambda: time_stage(batch, provenance_stage, session, call, now)),
        ("stage_fresh", lambda: time_stage_fresh(batch, provenance_stage, session, fresh, now)),
    ]
    audited = {"pipeline", "pipeline_low"}
    results: dict[str, list[float]] = {name: [] for name, _ in subjects}
    results["audit_write"] = []
    for _ in range(max(20, rounds // 20)):  # warm-up
        for _, run in subjects:
            run()
        setup.guard.flush()
    made = session.used_total
    for index in range(rounds):
        shift = index % len(subjects)
        for name, run in subjects[shift:] + subjects[:shift]:
            results[name].append(run())
            if name in audited:
                results["audit_write"].append(drain(setup, batch + WARM))
    if session.used_total - made != rounds * len(audited) * (batch + WARM):
        raise SystemExit("some timed pipeline calls were not allowed; the figures would be wrong")
    return results


def drain(setup: Setup, records: int) -> float:
    """Drain the audit queue (untimed) as the writer thread would between an agent's calls;
    returns what that cost per record (reported as audit_write_ns_per_record)."""
    start = perf_counter_ns()
    setup.guard.flush()
    cost = (perf_counter_ns() - start) / records
    # Let a writer thread that woke meanwhile take the GIL now, find the queue empty and go
    # back to sleep, rather than in the middle of the next timed batch.
    time.sleep(0.0002)
    return cost


def ledger_bytes(ledger: Any) -> int | None:
    """Approximate memory of a ledger's index: the dict, its keys, origin lists and distinct origins."""
    index = getattr(ledger, "_index", None)
    if not isinstance(index, dict):
        return None  # the ledger keeps its index elsewhere now; the size is not reported
    origins = {id(origin): origin for seen in index.values() for origin in seen}
    return (
        sys.getsizeof(index)
        + sum(sys.getsizeof(key) + sys.getsizeof(seen) for key, seen in index.items())
        + sum(sys.getsizeof(origin) + sys.getsizeof(origin.label) for origin in origins.values())
    )


def measure_ledger(setup: Setup, *, rounds: int, batch: int) -> dict[str, Any]:
    """session.check and the provenance stage alone on a session whose ledger holds 1 KB of
    untrusted text and on one holding 1 MB, interleaved like measure_rounds."""
    from intentguard.pipeline import provenance_stage

    small_text = TextGen(SEED + 1).results(SMALL_KB * 1024)
    large_text = TextGen(SEED + 2).results(LARGE_KB * 1024)
    small, large = setup.start(), setup.start()
    setup.prime(small, small_text)
    setup.prime_trusted(large)
    setup.guard.flush()
    gc.collect()
    start = perf_counter_ns()
    setup.ingest(large, large_text)  # the collector stays on: ingest allocates, as it would in production
    ingest_ns = perf_counter_ns() - start
    setup.guard.flush()
    call = setup.call
    now = small.grant.issued_at + 1.0
    for session in (small, large):
        clean_ledger(session)
        if session.check(call).effect is not setup.allow or provenance_stage(session, call, now) is not None:
            raise SystemExit("the benchmark call is not a plain ALLOW on a filled ledger; the figures would be wrong")
    subjects: list[tuple[str, Callable[[], float]]] = [
        ("check_1kb", lambda: time_pipeline(batch, small, call)),
        ("check_1mb", lambda: time_pipeline(batch, large, call)),
        ("stage_1kb", lambda: time_stage(batch, provenance_stage, small, call, now)),
        ("stage_1mb", lambda: time_stage(batch, provenance_stage, large, call, now)),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in subjects}
    for _ in range(max(10, rounds // 20)):  # warm-up
        for _, run in subjects:
            run()
        setup.guard.flush()
    made = small.used_total + large.used_total
    for index in range(rounds):
        shift = index % len(subjects)
        for name, run in subjects[shift:] + subjects[:shift]:
            results[name].append(run())
            if name.startswith("check"):
                drain(setup, batch + WARM)
    if small.used_total + large.used_total - made != rounds * 2 * (batch + WARM):
        raise SystemExit("some timed calls on the filled ledgers were not allowed; the figures would be wrong")
    size = ledger_bytes(large.ledger)
    return {
        "series": results,
        "ingest_1mb_ms": ingest_ns / 1e6,
        "ingest_1mb_results": len(large_text),
        "ledger_1kb_values": len(small.ledger),
        "ledger_1mb_values": len(large.ledger),
        "ledger_1mb_mib": None if size is None else size / 2**20,
    }


def measure_growth(setup: Setup, *, sessions: int, length: int = 1000) -> tuple[list[int], list[int]]:
    """Time call #1 and call #``length`` of many fresh sessions, both with warm caches.

    Call #``length`` follows ``length - 2`` calls of its own session; call #1 follows WARM
    calls of a long-lived session, so both run after the same code, not after the session's
    creation or an audit flush. The audit queue is drained between sessions, untimed.
    """
    first: list[int] = []
    last: list[int] = []
    call = setup.call
    warmer = setup.start()
    for _ in range(sessions):
        session = setup.start()
        for _ in repeat(None, WARM):
            warmer.check(call)
        first.append(time_one(session, call))
        for _ in repeat(None, length - 2):
            session.check(call)
        last.append(time_one(session, call))
        if session.used_total != length:
            raise SystemExit("some calls in the growth run were not allowed; the figures would be wrong")
        setup.guard.flush()
    return first, last


IMPORT_PROBE = """
import json, sys, time
heavy = ("pydantic", "jsonschema", "yaml", "numpy", "sklearn", "langchain", "autogen_agentchat", "redis")
start = time.perf_counter()
import intentguard
imported = time.perf_counter()
loaded = [name for name in heavy if name in sys.modules]
intentguard.Guard
used = time.perf_counter()
print(json.dumps({"ms": (imported - start) * 1000, "guard_ms": (used - start) * 1000, "loaded": loaded,
                  "guard_loaded": [name for name in heavy if name in sys.modules]}))
"""


def measure_import(runs: int) -> dict[str, Any]:
    """``import intentguard`` (and, for information, first use of ``intentguard.Guard``) in fresh
    interpreters; a first run, which may compile bytecode, is discarded."""
    probes = []
    for _ in range(runs + 1):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
        probes.append(json.loads(out))
    probes = probes[1:]
    return {
        "import_ms": statistics.median(probe["ms"] for probe in probes),
        "import_ms_runs": [round(probe["ms"], 2) for probe in probes],
        "import_loaded": probes[-1]["loaded"],
        "import_guard_ms": statistics.median(probe["guard_ms"] for probe in probes),
        "import_guard_loaded": probes[-1]["guard_loaded"],
    }


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()


def stamp(result: dict[str, Any], prefix: str, began: float) -> None:
    """Mark one script's figures with how long it ran (since ``began``, a ``perf_counter``), when
    and on what machine, under its key prefix."""
    result[f"{prefix}_duration_s"] = time.perf_counter() - began
    result[f"{prefix}_timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    result[f"{prefix}_machine"] = machine()


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit: str | None = _git("rev-parse", "--short", "HEAD")
        dirty: bool | None = bool(_git("status", "--porcelain", "--", "intentguard"))
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "git_commit": commit,
        "intentguard_modified_since_commit": dirty,
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"intentguard latency, python {result['machine']['python']} on {result['machine']['cpu']} "
        f"({result['machine']['cpu_count']} cpus), load {result['loadavg_start']} -> {result['loadavg_end']}",
        f"floor p50 {result['floor_p50_ns']:.0f} ns (p99 {result['floor_p99_ns']:.0f} ns); "
        f"empty loop {result['loop_overhead_ns']:.1f} ns/iteration is inside every figure",
        "",
        f"{'figure':<34}{'value':>12}{'budget':>9}  status  raw",
    ]
    raw = {
        "policy_ratio_p50": f"{result['policy_p50_ns']:.0f} ns",
        "pipeline_ratio_p50": f"{result['pipeline_p50_ns']:.0f} ns",
        "pipeline_ratio_p99": f"{result['pipeline_p99_ns']:.0f} ns",
        "pipeline_low_ratio_p50": f"{result['pipeline_low_p50_ns']:.0f} ns",
        "pipeline_low_ratio_p99": f"{result['pipeline_low_p99_ns']:.0f} ns",
        "call1000_vs_call1": f"{result['call1_p50_ns']:.0f} -> {result['call1000_p50_ns']:.0f} ns",
        "provenance_1mb_vs_1kb": f"{result['check_1kb_p50_ns']:.0f} -> {result['check_1mb_p50_ns']:.0f} ns",
        "import_ms": f"loads {', '.join(result['import_loaded']) or 'no heavy module'}; "
        f"first use of ig.Guard: {result['import_guard_ms']:.0f} ms ({', '.join(result['import_guard_loaded'])})",
    }
    for key, (budget, label) in BUDGETS.items():
        value = result[key]
        unit = "ms" if key == "import_ms" else "x"
        status = "OK" if value <= budget else "OVER"
        lines.append(f"{label:<34}{f'{value:.2f}{unit}':>12}{f'{budget:g}{unit}':>9}  {status:<6}  {raw[key]}")
    lines += [
        "",
        f"provenance stage alone, same call: {result['provenance_stage_p50_ns']:.0f} ns; "
        f"a fresh amount every call: {result['provenance_stage_fresh_p50_ns']:.0f} ns (p50)",
        f"provenance stage alone, 1 MB / 1 KB ledger, p50: {result['provenance_stage_1mb_vs_1kb']:.2f}x "
        f"({result['provenance_stage_1kb_p50_ns']:.0f} -> {result['provenance_stage_1mb_p50_ns']:.0f} ns)",
        f"ingest of 1 MB untrusted text ({result['ingest_1mb_results']} tool results): "
        f"{result['ingest_1mb_ms']:.0f} ms; ledger {result['ledger_1mb_values']} values"
        + ("" if result["ledger_1mb_mib"] is None else f", ~{result['ledger_1mb_mib']:.1f} MiB")
        + f" (1 KB: {result['ledger_1kb_values']} values)",
        "audit record build+write (writer side, off the hot path): "
        f"~{result['audit_write_ns_per_record']:.0f} ns/record",
        f"{result['method']['rounds']} rounds x {result['method']['batch']} calls, "
        f"{result['method']['ledger_rounds']} ledger rounds, {result['method']['sessions']} sessions, "
        f"{result['method']['import_runs']} imports, {result['duration_s']:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Latency of the guard's hot path as ratios to a plain-Python floor.")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--rounds", type=int, default=800, help="interleaved rounds (one batch per subject each)")
    parser.add_argument("--ledger-rounds", type=int, default=200, help="interleaved rounds, 1 KB vs 1 MB ledger")
    parser.add_argument("--batch", type=int, default=100, help="calls per timed batch")
    parser.add_argument("--sessions", type=int, default=100, help="fresh sessions for call #1 vs call #1000")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters timing the import")
    options = parser.parse_args(argv)

    began = time.perf_counter()
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    imports = measure_import(options.import_runs)
    untrusted = TextGen(SEED).results(UNTRUSTED_KB * 1024)

    directory = Path(tempfile.mkdtemp(prefix="intentguard-bench-"))
    try:
        setup = Setup(directory, "rounds")
        try:
            rounds = measure_rounds(setup, rounds=options.rounds, batch=options.batch, untrusted=untrusted)
        finally:
            setup.close()
        (directory / "rounds.jsonl").unlink()
        setup = Setup(directory, "growth")
        try:
            first, last = measure_growth(setup, sessions=options.sessions)
        finally:
            setup.close()
        (directory / "growth.jsonl").unlink()
        setup = Setup(directory, "ledger")
        try:
            ledger = measure_ledger(setup, rounds=options.ledger_rounds, batch=options.batch)
        finally:
            setup.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    floor_p50 = statistics.median(rounds["floor"])
    policy_p50 = statistics.median(rounds["policy"])
    p50 = {name: statistics.median(values) for name, values in ledger.pop("series").items()}
    result: dict[str, Any] = {
        "floor_p50_ns": floor_p50,
        "floor_p99_ns": percentile(rounds["floor"], 99),
        "loop_overhead_ns": statistics.median(rounds["loop"]),
        "policy_p50_ns": policy_p50,
        "policy_p99_ns": percentile(rounds["policy"], 99),
        "policy_ratio_p50": policy_p50 / floor_p50,
    }
    for name in ("pipeline", "pipeline_low"):
        result[f"{name}_p50_ns"] = statistics.median(rounds[name])
        result[f"{name}_p99_ns"] = percentile(rounds[name], 99)
        result[f"{name}_ratio_p50"] = result[f"{name}_p50_ns"] / floor_p50
        result[f"{name}_ratio_p99"] = result[f"{name}_p99_ns"] / floor_p50
    result |= {
        "provenance_stage_p50_ns": statistics.median(rounds["stage"]),
        "provenance_stage_fresh_p50_ns": statistics.median(rounds["stage_fresh"]),
        "call1_p50_ns": statistics.median(first),
        "call1000_p50_ns": statistics.median(last),
        "call1000_vs_call1": statistics.median(last) / statistics.median(first),
        "check_1kb_p50_ns": p50["check_1kb"],
        "check_1mb_p50_ns": p50["check_1mb"],
        "provenance_1mb_vs_1kb": p50["check_1mb"] / p50["check_1kb"],
        "provenance_stage_1kb_p50_ns": p50["stage_1kb"],
        "provenance_stage_1mb_p50_ns": p50["stage_1mb"],
        "provenance_stage_1mb_vs_1kb": p50["stage_1mb"] / p50["stage_1kb"],
        **ledger,
        **imports,
        "audit_write_ns_per_record": statistics.median(rounds["audit_write"]),
        "budgets": {key: budget for key, (budget, _) in BUDGETS.items()},
        "method": {
            "rounds": options.rounds,
            "ledger_rounds": options.ledger_rounds,
            "batch": options.batch,
            "sessions": options.sessions,
            "import_runs": options.import_runs,
            "untrusted_kb": UNTRUSTED_KB,
            "tool_result_chars": CHUNK,
            "seed": SEED,
            "fresh_amounts": FRESH,
            "gc": "disabled inside every timed batch and single-call timing, re-enabled after; on during ingest",
            "percentiles": "over per-batch means (ns per call); nearest rank",
        },
        "machine": machine(),
        "loadavg_start": loadavg_start,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
    }
    result["within_budget"] = {key: result[key] <= budget for key, (budget, _) in BUDGETS.items()}
    print(report(result))
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        merge_results(options.out, result)
        print(f"wrote {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
