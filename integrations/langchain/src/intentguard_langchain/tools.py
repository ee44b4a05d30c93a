"""``guard_tool``: a ``BaseTool`` that asks the session before it runs, for code without middleware.

Code that runs tools itself (an older agent loop, a hand-written executor) wraps each tool once:
``guard_tool(tool, session)``. A CONFIRM is put to the guard's confirmation handler (there is no
graph to interrupt); a refusal is a ``ToolException`` carrying the decision's sentence, which
LangChain turns into an error ``ToolMessage`` (``handle_tool_error`` is on). The wrapper observes
the tool's output; the caller still feeds user text with ``session.observe``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import PrivateAttr

import intentguard as ig

__all__ = ["guard_tool"]


class _GuardedTool(BaseTool):
    """``inner`` behind the session's decision; same name, description and argument schema."""

    inner: BaseTool
    session: Any  # an intentguard Session (not a pydantic type)
    _ids: Iterator[int] = PrivateAttr(default_factory=lambda: itertools.count(1))

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ig.ToolCall:
        # A string input reaches the tool positionally; the guard sees it under a name it can refuse.
        named = kwargs if not args else {**kwargs, "input": args[0] if len(args) == 1 else list(args)}
        # LangChain does not hand a tool its call id; this one ties the decision to the output.
        return ig.ToolCall(self.name, named, f"{self.name}#{next(self._ids)}")

    def _run(self, *args: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        call = self._call(args, kwargs)
        _raise_unless_allowed(self.session.decide(call))
        output = self.inner.invoke(dict(call.args), config)
        self.session.observe_result(call.id, call.name, output)
        return output

    async def _arun(self, *args: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        call = self._call(args, kwargs)
        _raise_unless_allowed(await self.session.adecide(call))
        output = await self.inner.ainvoke(dict(call.args), config)
        self.session.observe_result(call.id, call.name, output)
        return output


def _raise_unless_allowed(decision: ig.Decision) -> None:
    if decision.effect is not ig.Effect.ALLOW:
        raise ToolException(decision.explain())


def guard_tool(tool: BaseTool, session: ig.Session) -> BaseTool:
    """``tool`` behind ``session``: every run is decided first (CONFIRM through the guard's
    confirmation handler) and runs only on ALLOW; its output is observed as the tool's result."""
    if not isinstance(tool, BaseTool):
        raise ig.ConfigurationError(f"guard_tool() needs a langchain BaseTool, not {tool!r}; wrap functions with @tool")
    return _GuardedTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema,
        return_direct=tool.return_direct,
        handle_tool_error=True,
        inner=tool,
        session=session,
    )
