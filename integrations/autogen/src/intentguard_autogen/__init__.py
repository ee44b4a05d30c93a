"""intentguard for AutoGen (autogen-agentchat 0.7): decide every tool call an agent makes.

::

    guarded = GuardedWorkbench(session, [lookup_order, issue_refund], confirm=approve)
    agent = AssistantAgent(
        "support", model_client=client, workbench=guarded, model_context=guarded.model_context()
    )

The adapter translates, it never decides: the workbench asks the session about each call and
turns the decision into a ``ToolResult``; the model context feeds the conversation to the
session's provenance ledger.
"""

from __future__ import annotations

from intentguard_autogen._context import GuardedModelContext
from intentguard_autogen._workbench import DecisionHook, GuardedWorkbench

__all__ = ["DecisionHook", "GuardedModelContext", "GuardedWorkbench"]
