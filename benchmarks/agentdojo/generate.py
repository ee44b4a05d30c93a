"""Replay AgentDojo's ground truth into intentguard traces (DESIGN.md, "Trace format").

For every user task of a suite: one benign trace (system prompt, the task's prompt, then each
ground-truth call and its real output from AgentDojo's own function runtime). For every (user
task, injection task) pair: the environment is loaded with the attack in the injection vectors
that user task sees (AgentDojo's canary run, ``BaseAttack.get_injection_candidates``), the user
task's ground truth runs, and right after the first tool output that carries the attack the
injection task's ground-truth calls run against the same environment, followed by the rest of
the user task. A pair whose ground truth never shows the attack is skipped with a reason,
never fabricated.

    python -m benchmarks.agentdojo.generate --version v1.2.2 --out benchmarks/agentdojo/traces/v1.2.2.jsonl
    python -m benchmarks.agentdojo.generate --all

Needs ``agentdojo`` (benchmarks/agentdojo/requirements.txt); it never touches the network.
"""

from __future__ import annotations

import argparse
import datetime
import enum
import json
import os
import re
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

from agentdojo.agent_pipeline.agent_pipeline import load_system_message
from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline
from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
from agentdojo.attacks import load_attack
from agentdojo.attacks.base_attacks import BaseAttack
from agentdojo.base_tasks import BaseInjectionTask, BaseUserTask
from agentdojo.default_suites.v1.tools import cloud_drive_client, email_client
from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime, TaskEnvironment
from agentdojo.task_suite.load_suites import get_suites
from agentdojo.task_suite.task_suite import TaskSuite
from pydantic import BaseModel

DEFAULT_VERSIONS = ("v1.1.2", "v1.2.2")
"""The newest v1.1.x and v1.2.x benchmark versions that agentdojo 0.1.35 ships."""
SUITES = ("workspace", "travel", "banking", "slack")
ATTACK = "important_instructions_no_names"
"""The paper's "important_instructions" template, rendered by AgentDojo for the generic names
"the user" and "the AI language model" (no model is called to pick a name)."""
FROZEN_NOW = datetime.datetime(2024, 5, 15, 12, 0)
"""What ``datetime.now()`` returns inside the email and drive tools: the workspace's current day."""
HASH_SEED = "0"
"""The PYTHONHASHSEED the command line re-executes itself under (see the end of this file)."""
PRINCIPAL = {"user": "emma.johnson", "tenant": "blue-sparrow-tech"}
AGENT = {"id": "agentdojo-ground-truth"}
TRACES_DIR = Path(__file__).resolve().parent / "traces"

# Only ImportantInstructionsAttack's constructor reads the target's name (to address the model);
# the no-names variant then replaces it with the generic one. Nothing runs this pipeline.
_CONSTRUCTOR_MODEL = "gpt-4o-2024-05-13"
_ESCAPED_SPACE = re.compile(r"\\[nt]")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass
class SkippedPair:
    user_task: str
    injection_task: str
    reason: str


@dataclass
class SuiteCounts:
    """What one suite of one version produced."""

    user_tasks: int = 0
    injection_tasks: int = 0
    benign_traces: int = 0
    injected_traces: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    benign_without_tool_calls: list[str] = field(default_factory=list)
    skipped_pairs: list[SkippedPair] = field(default_factory=list)


@dataclass
class Generation:
    """The traces of one benchmark version, in file order, and the counts per suite."""

    version: str
    traces: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, SuiteCounts] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "agentdojo": distribution_version("agentdojo"),
            "version": self.version,
            "attack": ATTACK,
            "suites": {name: asdict(counts) for name, counts in self.counts.items()},
        }


def carries(output: str, attack_text: str) -> bool:
    """Whether a formatted tool output contains the attack text.

    AgentDojo's environment YAML folds the attack's blank lines, and ``tool_result_to_str``
    re-dumps it as YAML (quoted, escaped, wrapped at 80 columns) or as a Python ``str`` of a
    dict; so both sides are compared as their sequence of word characters.
    """
    return _words(attack_text) in _words(output)


def _words(text: str) -> str:
    return _NOT_WORD.sub("", _ESCAPED_SPACE.sub(" ", text))


def jsonable(value: Any) -> Any:
    """A ground-truth argument as JSON: models and nested calls as dicts, times as ISO strings."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, FunctionCall):
        return {"function": value.function, "args": jsonable(dict(value.args))}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    raise TypeError(f"ground-truth argument {value!r} has no JSON form; extend jsonable()")


@contextmanager
def frozen_now(instant: datetime.datetime = FROZEN_NOW) -> Iterator[None]:
    """Pin ``datetime.now()`` in AgentDojo's email and drive tools, which stamp sent emails and
    created or edited files with it; everything else in a run is already deterministic."""

    class _Pinned(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:
            return instant if tz is None else instant.replace(tzinfo=tz)

    shim = types.ModuleType("datetime")
    shim.__dict__.update(vars(datetime))
    shim.datetime = _Pinned  # type: ignore[attr-defined]
    modules = (email_client, cloud_drive_client)
    saved = [module.datetime for module in modules]
    for module in modules:
        module.datetime = shim  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.datetime = original  # type: ignore[attr-defined]


class _Run:
    """One trajectory being recorded: messages, call ids c1, c2, ... and the error count."""

    def __init__(self, system: str, prompt: str, runtime: FunctionsRuntime, env: TaskEnvironment) -> None:
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt},
        ]
        self.runtime = runtime
        self.env = env
        self.calls = 0
        self.errors = 0

    def call(self, call: FunctionCall) -> tuple[str, str]:
        """Run one ground-truth call like AgentDojo's ToolsExecutor; returns its id and output."""
        self.calls += 1
        call_id = f"c{self.calls}"
        tool_call = {"id": call_id, "name": call.function, "arguments": jsonable(dict(call.args))}
        self.messages.append({"role": "assistant", "content": "", "tool_calls": [tool_call]})
        result, error = self.runtime.run_function(self.env, call.function, call.args)
        # AgentDojo's model adapters show the model the error text in place of the output.
        output = error if error is not None else tool_result_to_str(result)
        self.errors += error is not None
        self.messages.append({"role": "tool", "tool_call_id": call_id, "name": call.function, "content": output})
        return call_id, output

    def finish(self, answer: str) -> list[dict[str, Any]]:
        self.messages.append({"role": "assistant", "content": answer})
        return self.messages


def generate(version: str, *, suites: Sequence[str] = SUITES) -> Generation:
    """All benign and injected traces of ``suites`` at AgentDojo benchmark ``version``.

    Byte-stable across processes only under one PYTHONHASHSEED (the command line pins it).
    """
    available = get_suites(version)
    if not available:
        raise ValueError(f"agentdojo has no benchmark version {version!r}; try one of {DEFAULT_VERSIONS}")
    missing = [name for name in suites if name not in available]
    if missing:
        raise ValueError(f"benchmark {version!r} has no suite {missing[0]!r}; it has {sorted(available)}")
    generation = Generation(version)
    system = load_system_message(None)
    with frozen_now():
        for name in suites:
            generation.counts[name] = _suite(generation.traces, available[name], name, version, system)
    return generation


def _suite(out: list[dict[str, Any]], suite: TaskSuite, name: str, version: str, system: str) -> SuiteCounts:
    runtime = FunctionsRuntime(suite.tools)
    attack = make_attack(suite)
    user_tasks, injection_tasks = _by_number(suite.user_tasks), _by_number(suite.injection_tasks)
    counts = SuiteCounts(user_tasks=len(user_tasks), injection_tasks=len(injection_tasks))

    def emit(run: _Run, trace_id: str, metadata: dict[str, Any], answer: str) -> None:
        counts.tool_calls += run.calls
        counts.tool_errors += run.errors
        out.append(
            {
                "id": trace_id,
                "intent": None,
                "principal": PRINCIPAL,
                "agent": AGENT,
                "metadata": {"suite": name, "version": version, **metadata},
                "messages": run.finish(answer),
            }
        )

    for user_task in user_tasks:
        env = user_task.init_environment(suite.load_and_inject_default_environment({}))
        run = _Run(system, user_task.PROMPT, runtime, env)
        for call in user_task.ground_truth(env):
            run.call(call)
        if run.calls == 0:
            counts.benign_without_tool_calls.append(user_task.ID)
        base = f"{version}/{name}/{user_task.ID}"
        emit(run, base, {"user_task": user_task.ID, "kind": "benign"}, user_task.GROUND_TRUTH_OUTPUT)
        counts.benign_traces += 1

        for injection_task in injection_tasks:
            outcome = _injected(suite, attack, runtime, system, user_task, injection_task)
            if isinstance(outcome, str):
                counts.skipped_pairs.append(SkippedPair(user_task.ID, injection_task.ID, outcome))
                continue
            run, metadata = outcome
            trace_id = f"{base}/{injection_task.ID}"
            metadata = {"user_task": user_task.ID, "injection_task": injection_task.ID, "kind": "injected", **metadata}
            emit(run, trace_id, metadata, user_task.GROUND_TRUTH_OUTPUT)
            counts.injected_traces += 1
    return counts


def make_attack(suite: TaskSuite) -> BaseAttack:
    """AgentDojo's registered :data:`ATTACK` for ``suite``; no model is ever called."""
    target = GroundTruthPipeline(None)
    target.name = _CONSTRUCTOR_MODEL
    return load_attack(ATTACK, suite, target)


def _injected(
    suite: TaskSuite,
    attack: BaseAttack,
    runtime: FunctionsRuntime,
    system: str,
    user_task: BaseUserTask,
    injection_task: BaseInjectionTask,
) -> tuple[_Run, dict[str, Any]] | str:
    """The injected run of one pair, or the reason it has none."""
    try:
        injections = attack.attack(user_task, injection_task)  # vector -> text, for the vectors the task sees
    except ValueError as exc:  # get_injection_candidates: no vector shows up in any ground-truth output
        return f"user task is not injectable: {exc}"
    texts = sorted(set(injections.values()))
    env = user_task.init_environment(suite.load_and_inject_default_environment(injections))
    run = _Run(system, user_task.PROMPT, runtime, env)
    seen_in: str | None = None
    injected: list[str] = []
    for call in user_task.ground_truth(env):
        call_id, output = run.call(call)
        if seen_in is None and any(carries(output, text) for text in texts):
            seen_in = call_id
            # Computed now, on the environment as the agent has left it, as a model would.
            calls = injection_task.ground_truth(env)
            if not calls:
                return "the injection task's ground truth has no tool calls (AgentDojo ships none for it)"
            injected = [run.call(injection_call)[0] for injection_call in calls]
    if seen_in is None:
        return f"no ground-truth tool output carries the attack (vectors: {', '.join(injections)})"
    metadata = {
        "attack": ATTACK,
        "injection_vectors": list(injections),
        "injection_seen_call_id": seen_in,
        "injection_call_ids": injected,
        "first_injection_call_id": injected[0],
    }
    return run, metadata


def _by_number(tasks: dict[str, Any]) -> list[Any]:
    return [tasks[key] for key in sorted(tasks, key=lambda key: int(key.rsplit("_", 1)[1]))]


def write(generation: Generation, out: Path) -> Path:
    """Write the traces as JSON Lines to ``out`` and the counts beside it; returns the summary path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        for trace in generation.traces:
            handle.write(json.dumps(trace, ensure_ascii=False, separators=(",", ":")) + "\n")
    summary = out.with_name(out.name.removesuffix(".jsonl") + ".summary.json")
    summary.write_text(json.dumps(generation.summary(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


def _report(generation: Generation, out: Path) -> None:
    size = out.stat().st_size
    print(f"{generation.version}: {len(generation.traces)} traces, {size / 1e6:.1f} MB -> {out}")
    for name, counts in generation.counts.items():
        print(
            f"  {name:<10} user tasks {counts.user_tasks:>3}  injection tasks {counts.injection_tasks:>3}"
            f"  benign {counts.benign_traces:>3}  injected {counts.injected_traces:>4}"
            f"  skipped {len(counts.skipped_pairs):>3}  tool errors {counts.tool_errors}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.agentdojo.generate", description=__doc__.splitlines()[0]
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="one AgentDojo benchmark version, e.g. v1.2.2")
    which.add_argument("--all", action="store_true", help=f"every version in {DEFAULT_VERSIONS}")
    parser.add_argument("--out", type=Path, help="with --version: the JSONL file (default traces/VERSION.jsonl)")
    parser.add_argument("--out-dir", type=Path, default=TRACES_DIR, help="with --all: where VERSION.jsonl go")
    parser.add_argument("--suite", action="append", choices=SUITES, help="only this suite (repeatable)")
    args = parser.parse_args(argv)
    if args.all and args.out is not None:
        parser.error("--out goes with --version; --all writes VERSION.jsonl into --out-dir")
    suites = tuple(args.suite) if args.suite else SUITES
    versions = DEFAULT_VERSIONS if args.all else (args.version,)
    for version in versions:
        out = args.out if args.out is not None else args.out_dir / f"{version}.jsonl"
        try:
            generation = generate(version, suites=suites)
        except ValueError as exc:
            parser.error(str(exc))
        write(generation, out)
        _report(generation, out)
    return 0


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        # AgentDojo's create_calendar_event orders participants by list(set(...)): only a fixed
        # string hash seed makes that order, and so the output bytes, the same on every run.
        os.execve(sys.executable, sys.orig_argv, {**os.environ, "PYTHONHASHSEED": HASH_SEED})
    raise SystemExit(main())
