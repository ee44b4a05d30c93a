"""What IntentguardMiddleware adds to a LangChain tool call, measured against the same call without it.

Run ``python -m benchmarks.bench_langchain --out benchmarks/results/latency.json`` (``make bench``).
Reports, never fails on a figure. Two comparisons, each interleaved in one run (the order of the
subjects rotates every round) and with a plain-Python floor measured alongside:

- **hook**: ``middleware.wrap_tool_call(request, handler)`` against ``handler(request)``, the same
  handler (it returns the tool's prepared ``ToolMessage``): the middleware's whole added cost per
  call: reading the state's messages, ``session.check`` (all stages, audit enqueue) and observing
  the tool's output. No model call is involved. ``langchain_overhead_us_p50`` is the median over
  rounds of (guarded - bare) per call. The tool returns the same short text every call, and the
  library remembers the digest of a short text, so this observes an output seen before;
  ``langchain_overhead_fresh_us_p50`` is the same with a distinct output on every call.
- **tool node**: a graph of one ``ToolNode`` invoked with one tool call, with
  ``wrap_tool_call=middleware.wrap_tool_call`` and without, for scale: what LangGraph itself
  spends per tool call (the difference there is within its noise).

The session is in the state of a support run about to refund (``benchmarks.latency.Setup.prime``:
the user's message, the order record, 4 KB of untrusted search results), and the agent state
holds the matching messages, already observed once (as after the model's turn). Each timed call
has a fresh tool call id, so its output is observed every time, as in a real run.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from benchmarks.latency import (
    ARGS,
    ORDER_RECORD,
    SEED,
    TOOL,
    UNTRUSTED_KB,
    USER_MESSAGE,
    WARM,
    Setup,
    TextGen,
    drain,
    percentile,
    stamp,
    time_floor,
)
from benchmarks.results_file import merge_results

REFERENCE_US = 26.0  # Microsoft's agent governance toolkit's LangChain middleware, per tool call (its docs)
RESULT = "refunded 25.00 on A123"


def agent_state(untrusted: Sequence[str]) -> dict[str, Any]:
    """The messages of the run so far, as create_agent's state holds them."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    messages: list[Any] = [HumanMessage(USER_MESSAGE, id="m-user")]
    messages.append(
        AIMessage(
            "", id="m-ai-0", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A123"}, "id": "call-lookup"}]
        )
    )
    messages.append(ToolMessage(json.dumps(ORDER_RECORD), tool_call_id="call-lookup", name="lookup_order", id="m-t-0"))
    for index, text in enumerate(untrusted):
        call = {"name": "search_kb", "args": {"query": "refund policy"}, "id": f"call-kb-{index}"}
        messages.append(AIMessage("", id=f"m-ai-kb-{index}", tool_calls=[call]))
        messages.append(ToolMessage(text, tool_call_id=f"call-kb-{index}", name="search_kb", id=f"m-kb-{index}"))
    return {"messages": messages}


class Requests:
    """Tool call requests and their prepared results, handed out in batches from a cycle of ``count``
    ids: longer than the middleware remembers (4,096 keys), so every output is observed afresh."""

    def __init__(self, state: dict[str, Any], count: int) -> None:
        from langchain.agents.middleware import ToolCallRequest
        from langchain_core.messages import ToolMessage
        from langgraph.types import Command

        self.requests = [
            ToolCallRequest(
                tool_call={"name": TOOL, "args": dict(ARGS), "id": f"call-{i}", "type": "tool_call"},
                tool=None,
                state=state,
                runtime=None,  # type: ignore[arg-type]
            )
            for i in range(count)
        ]
        self.results = {f"call-{i}": ToolMessage(RESULT, tool_call_id=f"call-{i}", name=TOOL) for i in range(count)}
        # A distinct output of the same length per call id, cycling through more of them than a
        # session remembers digests (256) or words (2,048) of: each is digested afresh, its new
        # order id a word never seen before.
        self.fresh_results = {
            f"call-{i}": ToolMessage(f"refunded 25.0 on A{i:04d}", tool_call_id=f"call-{i}", name=TOOL)
            for i in range(count)
        }
        self.command = Command(update={"messages": []})
        self.at = 0

    def handler(self, request: Any) -> Any:
        """The tool: returns its prepared result (the same for the guarded and the bare call)."""
        return self.results[request.tool_call["id"]]

    def fresh_handler(self, request: Any) -> Any:
        """The tool, answering with a different output on every call id."""
        return self.fresh_results[request.tool_call["id"]]

    def commanding(self, request: Any) -> Any:
        """A tool that answers with a prepared ``Command``: the middleware leaves its output to the
        next hook, so timing it isolates the decision (state, check, audit enqueue)."""
        return self.command

    def batch(self, n: int) -> list[Any]:
        if self.at + n > len(self.requests):
            self.at = 0
        self.at += n
        return self.requests[self.at - n : self.at]


def time_bare(n: int, requests: Requests) -> float:
    handler = requests.handler
    for request in requests.batch(WARM):
        handler(request)
    batch = requests.batch(n)
    gc.disable()
    start = perf_counter_ns()
    for request in batch:
        handler(request)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def time_hook(n: int, requests: Requests, hook: Callable[[Any, Any], Any], handler: Callable[[Any], Any]) -> float:
    for request in requests.batch(WARM):
        hook(request, handler)
    batch = requests.batch(n)
    gc.disable()
    start = perf_counter_ns()
    for request in batch:
        hook(request, handler)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


NODE_WARM = 5  # a graph invocation costs milliseconds: a few untimed ones warm it up


def time_node(n: int, node: Any, inputs: list[dict[str, Any]]) -> float:
    for item in inputs[:NODE_WARM]:
        node.invoke(item)
    timed = inputs[NODE_WARM : NODE_WARM + n]
    gc.disable()
    start = perf_counter_ns()
    for item in timed:
        node.invoke(item)
    elapsed = perf_counter_ns() - start
    gc.enable()
    return elapsed / n


def node_inputs(state: dict[str, Any], count: int, prefix: str) -> list[dict[str, Any]]:
    """ToolNode inputs: the run's messages plus a model message asking for one refund (fresh ids)."""
    from langchain_core.messages import AIMessage

    inputs = []
    for i in range(count):
        call = {"name": TOOL, "args": dict(ARGS), "id": f"{prefix}-{i}"}
        inputs.append({"messages": [*state["messages"], AIMessage("", id=f"{prefix}-ai-{i}", tool_calls=[call])]})
    return inputs


def tool_graph(node: Any) -> Any:
    """START -> tools -> END: a ToolNode runs only inside a graph."""
    from langgraph.graph import END, START, MessagesState, StateGraph

    graph = StateGraph(MessagesState)
    graph.add_node("tools", node)
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    return graph.compile()


def measure(*, rounds: int, batch: int, node_rounds: int, node_batch: int) -> dict[str, Any]:
    from intentguard_langchain import IntentguardMiddleware
    from langchain_core.tools import tool
    from langgraph.prebuilt import ToolNode

    @tool
    def issue_refund(order_id: str, amount: float, reason: str = "") -> str:
        """Refund part or all of an order."""
        return RESULT

    with tempfile.TemporaryDirectory(prefix="bench-langchain-") as directory:
        setup = Setup(Path(directory), "langchain")
        untrusted = TextGen(SEED).results(UNTRUSTED_KB * 1024)
        session = setup.start()
        setup.prime(session, untrusted)
        state = agent_state(untrusted)
        middleware = IntentguardMiddleware(session)
        hook = middleware.wrap_tool_call
        warm_rounds = max(10, rounds // 20)
        requests = Requests(state, 8192)
        made = session.used_total
        subjects: list[tuple[str, Callable[[], float]]] = [
            ("floor", lambda: time_floor(batch, TOOL, 0.0, 0)),
            ("bare", lambda: time_bare(batch, requests)),
            ("hook", lambda: time_hook(batch, requests, hook, requests.handler)),
            ("decide", lambda: time_hook(batch, requests, hook, requests.commanding)),
            ("hook_fresh", lambda: time_hook(batch, requests, hook, requests.fresh_handler)),
        ]
        series: dict[str, list[float]] = {name: [] for name, _ in subjects}
        for index in range(warm_rounds + rounds):
            shift = index % len(subjects)
            for name, run in subjects[shift:] + subjects[:shift]:
                value = run()
                if index >= warm_rounds:
                    series[name].append(value)
                if name in ("hook", "decide", "hook_fresh"):
                    drain(setup, batch + WARM)
        if session.used_total - made != 3 * (warm_rounds + rounds) * (batch + WARM):
            raise SystemExit("some timed calls were not allowed; the figures would describe another path")

        plain = tool_graph(ToolNode([issue_refund]))
        guarded = tool_graph(ToolNode([issue_refund], wrap_tool_call=hook))
        per_round = node_batch + NODE_WARM
        plain_inputs = node_inputs(state, node_rounds * per_round, "plain")
        guarded_inputs = node_inputs(state, node_rounds * per_round, "guarded")
        node_series: dict[str, list[float]] = {"plain": [], "guarded": []}
        for index in range(node_rounds):
            window = slice(index * per_round, (index + 1) * per_round)
            pair = [("plain", plain, plain_inputs[window]), ("guarded", guarded, guarded_inputs[window])]
            for name, node, inputs in pair if index % 2 == 0 else pair[::-1]:
                node_series[name].append(time_node(node_batch, node, inputs))
            drain(setup, per_round)
        setup.close()

    overheads = [hook_ns - bare_ns for hook_ns, bare_ns in zip(series["hook"], series["bare"], strict=True)]
    fresh = [hook_ns - bare_ns for hook_ns, bare_ns in zip(series["hook_fresh"], series["bare"], strict=True)]
    deciding = [hook_ns - bare_ns for hook_ns, bare_ns in zip(series["decide"], series["bare"], strict=True)]
    floor_p50 = statistics.median(series["floor"])
    overhead_p50 = statistics.median(overheads)
    node_plain = statistics.median(node_series["plain"])
    node_guarded = statistics.median(node_series["guarded"])
    return {
        "langchain_overhead_us_p50": overhead_p50 / 1000,
        "langchain_overhead_us_p99": percentile(overheads, 99) / 1000,
        "langchain_overhead_ratio_p50": overhead_p50 / floor_p50,
        "langchain_overhead_vs_reference": overhead_p50 / 1000 / REFERENCE_US,
        "langchain_overhead_fresh_us_p50": statistics.median(fresh) / 1000,
        "langchain_overhead_fresh_us_p99": percentile(fresh, 99) / 1000,
        "langchain_decision_us_p50": statistics.median(deciding) / 1000,
        "langchain_decision_us_p99": percentile(deciding, 99) / 1000,
        "langchain_hook_p50_ns": statistics.median(series["hook"]),
        "langchain_bare_p50_ns": statistics.median(series["bare"]),
        "langchain_floor_p50_ns": floor_p50,
        "langchain_toolnode_p50_us": node_plain / 1000,
        "langchain_toolnode_guarded_p50_us": node_guarded / 1000,
        "langchain_state_messages": len(state["messages"]),
        "budgets": {"langchain_overhead_us_p50": REFERENCE_US},
        "method": {
            "langchain_rounds": rounds,
            "langchain_batch": batch,
            "langchain_node_rounds": node_rounds,
            "langchain_node_batch": node_batch,
        },
    }


def report(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"IntentguardMiddleware.wrap_tool_call, {result['langchain_state_messages']} messages in the state, "
            f"floor p50 {result['langchain_floor_p50_ns']:.0f} ns",
            f"  added per tool call: p50 {result['langchain_overhead_us_p50']:.1f} us "
            f"(p99 {result['langchain_overhead_us_p99']:.1f} us), "
            f"{result['langchain_overhead_ratio_p50']:.0f}x the floor; "
            f"reference {REFERENCE_US:g} us -> {result['langchain_overhead_vs_reference']:.2f}x of it",
            "  with a distinct output every call (digested afresh): "
            f"p50 {result['langchain_overhead_fresh_us_p50']:.1f} us "
            f"(p99 {result['langchain_overhead_fresh_us_p99']:.1f} us)",
            f"  of which deciding (state, check, audit enqueue): p50 {result['langchain_decision_us_p50']:.1f} us "
            f"(p99 {result['langchain_decision_us_p99']:.1f} us); the rest observes the tool's output",
            f"  hook {result['langchain_hook_p50_ns']:.0f} ns vs bare handler {result['langchain_bare_p50_ns']:.0f} ns",
            f"  ToolNode.invoke of one call: {result['langchain_toolnode_p50_us']:.0f} us plain, "
            f"{result['langchain_toolnode_guarded_p50_us']:.0f} us guarded",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="IntentguardMiddleware's added cost per LangChain tool call.")
    parser.add_argument("--out", type=Path, help="merge the figures into this JSON file")
    parser.add_argument("--rounds", type=int, default=200, help="interleaved rounds, hook vs bare handler")
    parser.add_argument("--batch", type=int, default=50, help="calls per timed batch")
    parser.add_argument("--node-rounds", type=int, default=20, help="interleaved rounds, ToolNode with and without")
    parser.add_argument("--node-batch", type=int, default=10, help="ToolNode invocations per timed batch")
    options = parser.parse_args(argv)
    began = time.perf_counter()
    result = measure(
        rounds=options.rounds, batch=options.batch, node_rounds=options.node_rounds, node_batch=options.node_batch
    )
    stamp(result, "langchain", began)
    print(report(result))
    if options.out is not None:
        merge_results(options.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
