"""Divergence on AgentDojo: held-out separation, and what narrowing changes (``divergence`` in agentdojo.json).

1. **Split by task**: per suite, ``--holdout`` of the user tasks (seeded, ``--seed``) are held out;
   both versions' runs of a task land on the same side. The baselines, the TF-IDF and the weights
   are fitted on the training tasks only (:func:`intentguard.divergence_train.train`), and the
   thresholds are chosen there: ``narrow`` touches at most ``--target-burden`` of the benign training
   runs, ``revoke`` at most a fifth of that.
2. **Held-out separation**: AUROC of the score over every call of the held-out runs (injected calls
   against all others), and the precision and recall of ``score >= narrow``.
3. **Narrowing**: the held-out runs are replayed four times: the shipping pipeline (``full``: grant,
   provenance, gate) and the grant alone (``grant_only``: stages 1-3, as if provenance saw nothing),
   each without and with the thresholds. Per arm: the first injected call ALLOWed
   (``attack_calls_allowed``), any injected call ALLOWed, an injected write ALLOWed, injected calls
   ALLOWed (of all), and the benign cost: runs with a CONFIRM (``confirm_burden``), runs with a
   DENY, runs with either (``benign_interrupted``).

    python -m benchmarks.agentdojo.divergence_eval --out benchmarks/results/agentdojo.json

merges its figures under ``divergence`` and leaves the file's other keys alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.agentdojo import evaluate as ev
from benchmarks.results_file import merge_results
from intentguard.divergence import DivergenceConfig, DivergenceModel
from intentguard.divergence_train import task_of, train
from intentguard.guard import Guard
from intentguard.pipeline import CORE_STAGES, DEFAULT_STAGES
from intentguard.replay import Trace, read_traces
from intentguard.testing import FrozenClock

ARMS = {"full": DEFAULT_STAGES, "grant_only": CORE_STAGES}
STOCK_SCHEMAS = Path(__file__).resolve().parents[2] / "intent_schemas"
SYNTHETIC = Path(__file__).resolve().parent / "traces" / "synthetic.jsonl"


def load(paths: Sequence[Path], suites: Sequence[str] | None = None) -> list[Trace]:
    """Every trace of the files (only ``suites`` when given)."""
    traces: list[Trace] = []
    for path in paths:
        with path.open(encoding="utf-8") as source:
            traces.extend(t for t in read_traces(source) if not suites or t.metadata.get("suite") in suites)
    return traces


def arm_metrics(results: Sequence[ev.TraceResult]) -> dict[str, Any]:
    """The security and cost figures of one replay of the held-out runs."""
    m = ev.metrics(results)
    injected = [r for r in results if r.injected]
    benign = [r for r in results if not r.injected]
    calls = [r.effects.get(c) for r in injected for c in r.injection_call_ids]
    interrupted = sum(any(e != "ALLOW" for e in r.effects.values()) for r in benign)
    c = m["counts"]
    return {
        "attack_calls_allowed": m["attack_calls_allowed"],
        "attack_any_allowed": m["attack_any_allowed"],
        "attack_writes_allowed": m["attack_writes_allowed"],
        "injected_calls_allowed": ev._fraction(calls.count("ALLOW"), len(calls)),
        "confirm_burden": m["confirm_burden"],
        "benign_denied": ev._fraction(len(benign) - c["benign_kept"], len(benign)),
        "benign_interrupted": ev._fraction(interrupted, len(benign)),
        "counts": {
            "injected_traces": len(injected),
            "benign_traces": len(benign),
            "attack_calls_allowed": c["attack_calls_allowed"],
            "attack_any_allowed": c["attack_any_allowed"],
            "attack_writes_allowed": c["attack_writes_allowed"],
            "injected_calls": len(calls),
            "injected_calls_allowed": calls.count("ALLOW"),
            "benign_with_confirm": c["benign_with_confirm"],
            "benign_with_deny": len(benign) - c["benign_kept"],
            "benign_interrupted": interrupted,
            "benign_calls": c["benign_calls"],
            "benign_calls_confirmed": c["benign_calls_confirmed"],
            "benign_calls_denied": c["benign_calls_denied"],
        },
    }


def replay_arm(
    traces: Sequence[Trace], model: DivergenceModel, stages: Any, thresholds: dict[str, float] | None, schemas: Path
) -> list[ev.TraceResult]:
    """Replay ``traces`` with ``stages`` and the model, with the thresholds or without (score only)."""
    config = DivergenceConfig(
        model=model,
        narrow=thresholds["narrow"] if thresholds else None,
        revoke=thresholds["revoke"] if thresholds else None,
    )
    from benchmarks.agentdojo.resolver import resolve

    with Guard(schemas=[schemas], clock=FrozenClock(), divergence=config) as guard:
        guard.stages = stages  # an ablation: the stages a guard runs are a plain attribute
        return list(ev.replay(traces, guard, resolve))


def run(
    traces: Sequence[Trace],
    *,
    schemas: Path = ev.SCHEMAS_DIR,
    holdout: float = 0.3,
    seed: int = 0,
    target_burden: float = 0.05,
    synthetic: Sequence[Trace] = (),
) -> dict[str, Any]:
    """Train on some tasks, measure on the others; the ``divergence`` block of agentdojo.json.
    With ``synthetic`` runs (benchmarks/divergence_runs.py) they join training (their own tasks,
    split alike), and a second training without them says what they change."""
    from benchmarks.agentdojo.resolver import resolve

    started = time.perf_counter()
    guard = Guard(schemas=[schemas, STOCK_SCHEMAS], clock=FrozenClock())
    options = {"holdout": holdout, "seed": seed, "target_burden": target_burden}
    model, report = train([*traces, *synthetic], guard, resolve, **options)
    test_tasks = set(report["split"]["test_tasks"])
    held_out = [t for t in traces if task_of(t) in test_tasks]
    effect: dict[str, Any] | None = None
    if synthetic:
        plain, plain_report = train(traces, ev.build_guard(schemas), resolve, **options)
        effect = {
            "runs": len(synthetic),
            "with": _summary(model, report.get("heldout_recorded") or report["heldout"], report),
            "without": _summary(plain, plain_report["heldout"], plain_report),
            "heldout_synthetic": report.get("heldout_synthetic"),
        }
    thresholds = {key: float(value) for key, value in model.thresholds.items()}
    arms: dict[str, Any] = {}
    for arm, stages in ARMS.items():
        arms[arm] = {
            "without_narrowing": arm_metrics(replay_arm(held_out, model, stages, None, schemas)),
            "with_narrowing": arm_metrics(replay_arm(held_out, model, stages, thresholds, schemas)),
        }
    held = report.get("heldout_recorded") or report["heldout"] or {}
    return {
        "auroc": held.get("auroc"),
        "precision_at_narrow": held.get("precision_at_narrow"),
        "recall_at_narrow": held.get("recall_at_narrow"),
        "thresholds": thresholds,
        "attacks_allowed": {
            arm: {
                "without_narrowing": block["without_narrowing"]["attack_any_allowed"],
                "with_narrowing": block["with_narrowing"]["attack_any_allowed"],
            }
            for arm, block in arms.items()
        },
        "confirm_burden": {
            arm: {
                "without_narrowing": block["without_narrowing"]["confirm_burden"],
                "with_narrowing": block["with_narrowing"]["confirm_burden"],
            }
            for arm, block in arms.items()
        },
        "arms": arms,
        "heldout": held,
        "split": {**report["split"], "held_out_traces": len(held_out), "train_calls": report["train"]["calls"]},
        "model": {"weights": dict(model.weights), "bias": model.bias},
        "cross_validation": report["cross_validation"],
        "synthetic_runs": effect,
        "duration_s": round(time.perf_counter() - started, 1),
    }


def _summary(model: DivergenceModel, held: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    keys = ("auroc", "precision_at_narrow", "recall_at_narrow", "benign_run_burden")
    return {
        **{key: held.get(key) for key in keys},
        "thresholds": dict(model.thresholds),
        "cv_auroc": report["cross_validation"]["auroc_by_c"][report["cross_validation"]["c"]],
        "weights": {name: model.weights[name] for name in ("depth", "grant_age", "unplanned", "budget_pressure")},
    }


def table(block: dict[str, Any]) -> str:
    """The arms as a fixed-width table."""
    head = f"{'arm':<11} {'narrowing':<9} {'first':>7} {'any':>7} {'writes':>7} {'calls':>7} {'confirm':>8} {'deny':>7}"
    rows = [head, "-" * len(head)]
    for arm, pair in block["arms"].items():
        for label, key in (("off", "without_narrowing"), ("on", "with_narrowing")):
            m = pair[key]
            cells = [
                f"{ev._percent(m[name]):>7}"
                for name in ("attack_calls_allowed", "attack_any_allowed", "attack_writes_allowed")
            ]
            cells += [f"{ev._percent(m['injected_calls_allowed']):>7}", f"{ev._percent(m['confirm_burden']):>8}"]
            rows.append(f"{arm:<11} {label:<9} " + " ".join(cells) + f" {ev._percent(m['benign_denied']):>7}")
    thresholds = block["thresholds"]
    rows.append(
        f"held-out AUROC {block['auroc']}, precision {block['precision_at_narrow']} and recall "
        f"{block['recall_at_narrow']} at narrow {thresholds['narrow']} (revoke {thresholds['revoke']})"
    )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.agentdojo.divergence_eval", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--traces", type=Path, action="append", help="trace files (default: traces/VERSION.jsonl)")
    parser.add_argument("--suite", action="append", choices=ev.SUITES, help="only this suite (repeatable)")
    parser.add_argument("--holdout", type=float, default=0.3, help="fraction of each suite's tasks held out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task split")
    parser.add_argument("--target-burden", type=float, default=0.05, help="benign training runs narrow may touch")
    parser.add_argument("--out", type=Path, help="merge the figures into this JSON file under 'divergence'")
    parser.add_argument("--synthetic", type=Path, default=SYNTHETIC, help="generated runs joining training")
    parser.add_argument("--no-synthetic", action="store_true", help="train on the AgentDojo runs alone")
    args = parser.parse_args(argv)
    paths = args.traces or [ev.TRACES_DIR / f"{version}.jsonl" for version in ev.VERSIONS]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        parser.error(f"no trace file {missing[0]}; run python -m benchmarks.agentdojo.generate --all")
    synthetic = [] if args.no_synthetic else load([args.synthetic])
    block = run(
        load(paths, args.suite),
        holdout=args.holdout,
        seed=args.seed,
        target_burden=args.target_burden,
        synthetic=synthetic,
    )
    print(table(block))
    print(f"{block['split']['held_out_traces']} held-out traces in {block['duration_s']} s", file=sys.stderr)
    if args.out is not None:
        merge_results(args.out, {"divergence": json.loads(json.dumps(block))})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
