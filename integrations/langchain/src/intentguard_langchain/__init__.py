"""intentguard for LangChain 1.x agents.

``IntentguardMiddleware(session)`` goes into ``create_agent(..., middleware=[...])`` (or its
``wrap_tool_call`` into a ``ToolNode``); ``guard_tool(tool, session)`` guards a ``BaseTool`` for
code that runs tools itself. Adapters translate; the session decides.
"""

from __future__ import annotations

from intentguard_langchain._confirm import KIND, ConfirmationPayload, ReasonPayload, ResumeAnswer
from intentguard_langchain.middleware import IntentguardMiddleware, refusal
from intentguard_langchain.tools import guard_tool

__all__ = [
    "KIND",
    "ConfirmationPayload",
    "IntentguardMiddleware",
    "ReasonPayload",
    "ResumeAnswer",
    "guard_tool",
    "refusal",
]
