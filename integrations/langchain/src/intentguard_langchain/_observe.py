"""Provenance from LangChain messages: each message of a run reaches the session's ledger once.

Human and system text is trusted; a tool's output goes to ``observe_result`` (untrusted unless the
schema declares the tool a system of record); any other message with text (another agent's,
a framework's) is untrusted. The model's own messages are not evidence of anything and are skipped:
its tool calls are what the guard checks.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

import intentguard as ig

__all__ = ["MessageFeed", "messages_of", "output_of"]

_LIMIT = 4096  # keys remembered; an evicted message seen again is observed again, which only adds origins
_INLINE = 256  # texts up to this long are part of their key (at most ~1 MB of keys per middleware)


def messages_of(state: Any) -> Sequence[Any]:
    """The messages in a LangGraph state: an agent state dict, a bare list, or a model with ``messages``."""
    if isinstance(state, dict):
        found = state.get("messages", ())
    elif isinstance(state, list | tuple):
        found = state
    else:
        found = getattr(state, "messages", ())
    return found if isinstance(found, list | tuple) else ()


def output_of(message: ToolMessage) -> Any:
    """What a tool returned, as the ledger reads it: the content string (JSON is parsed by the
    ledger for system-of-record tools), or the text of a list of content blocks."""
    return message.content if isinstance(message.content, str) else message.text


def _fingerprint(text: str) -> str | bytes:
    """A short text stands for itself; a long one by its SHA-256 (bytes: never equal to a text)."""
    if len(text) <= _INLINE:
        return text
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _tool_key(message: ToolMessage, output: Any) -> Hashable:
    # Keyed by the call, the tool and its output: the output the middleware observed as the tool
    # returned it is the same message the graph later adds to its state (with a fresh message id).
    # The call id alone is the model's to choose: reused, it would keep a later output (or the same
    # output of another tool, with its own origin) out of the ledger.
    return ("tool", message.tool_call_id, message.name, _fingerprint(str(output)))


def _key(message: Any) -> Hashable:
    if isinstance(message, ToolMessage):
        return _tool_key(message, output_of(message))
    if message.id:
        return ("id", message.id)
    return (message.type, _fingerprint(message.text))


class MessageFeed:
    """Feeds a session the messages of its run, each once (bounded memory, thread-safe).

    A state's messages normally only grow, so after the first full pass only the new tail is
    read; a state whose history was rewritten (trimmed, summarised) is read again in full.
    """

    def __init__(self, session: ig.Session) -> None:
        self._session = session
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        self._lock = threading.Lock()
        self._count = 0  # how long the last state was, its last message and that message's key
        self._last_message: Any = None
        self._last: Hashable = None

    def feed(self, messages: Sequence[Any], *, system: Any = None) -> None:
        """Observe every message of ``messages`` (and the ``system`` message) not observed before."""
        # Held while observing: a parallel call must not check against a message that another
        # thread has claimed but not yet put into the ledger.
        with self._lock:
            if system is not None:
                self._take((system,))
            count = len(messages)
            start = self._count
            # The same object as last time needs no key: hashing a long tool output on every call
            # would cost more than the check. LangGraph replaces a changed message, never edits it.
            if not (
                0 < start <= count
                and (messages[start - 1] is self._last_message or self._last == _key(messages[start - 1]))
            ):
                start = 0
            self._take(messages[start:] if start else messages)
            if count:
                self._count = count
                if messages[-1] is not self._last_message:
                    self._last_message = messages[-1]
                    self._last = _key(messages[-1])

    def output(self, message: ToolMessage) -> None:
        """Observe a tool's output as it comes back, before the graph adds it to the state."""
        output = output_of(message)
        key = _tool_key(message, output)
        with self._lock:
            if key not in self._seen:
                self._add(key)
                self._session.observe_result(message.tool_call_id, message.name or "", output)

    def mark(self, message: ToolMessage) -> None:
        """Remember that ``message`` is the guard's own refusal, never to be observed."""
        with self._lock:
            self._add(_key(message))

    def _take(self, messages: Iterable[Any]) -> None:
        for message in messages:
            if not isinstance(message, BaseMessage) or isinstance(message, AIMessage):
                continue
            key = _key(message)
            if key in self._seen:
                continue
            self._add(key)
            if isinstance(message, ToolMessage):
                self._session.observe_result(message.tool_call_id, message.name or "", output_of(message))
            elif isinstance(message, HumanMessage):
                self._session.observe(message.text, source=ig.Source.USER)
            elif isinstance(message, SystemMessage):
                self._session.observe(message.text, source=ig.Source.SYSTEM)
            elif message.text:
                self._session.observe(message.text, source=ig.Source.AGENT, origin=f"message:{message.type}")

    def _add(self, key: Hashable) -> None:
        if len(self._seen) >= _LIMIT:
            self._seen.popitem(last=False)
        self._seen[key] = None
