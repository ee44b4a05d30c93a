"""Intent schemas: the document a developer writes to say what one kind of task may do.

An intent schema names a task (``refund_request``), the parameters supplied when an agent
is spawned for it, how long the grant lives, which tools it may call with which argument
constraints and budgets, deny rules, delegation depth and decay. The models here are the
single source of the format: the meta-schema shipped in ``intentguard/meta/`` is generated
from them (``make meta-schema``) and a test keeps the two equal.

Loading reports every problem at once, each with the file, the JSON path and what to do
(:class:`~intentguard.errors.InvalidIntentSchema`). This module imports pydantic and is
loaded lazily, so ``import intentguard`` stays light.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_validator

from intentguard.clock import to_duration
from intentguard.errors import ConfigurationError

__all__ = [
    "ArgSpec",
    "ArgType",
    "Confirm",
    "DecayRule",
    "DenyRule",
    "DivergenceThresholds",
    "IntentSchema",
    "OnInstruction",
    "ParamRef",
    "Privilege",
    "ToolSpec",
    "UnknownArguments",
]

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
TOOL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$"
SOURCE_PATTERN = r"^(trusted|derived|any|tool:[A-Za-z_][A-Za-z0-9_.:-]{0,127}|param:[a-z][a-z0-9_]{0,63})$"
DEFAULT_FREE_TEXT = (
    "body",
    "comment",
    "comments",
    "content",
    "description",
    "message",
    "note",
    "notes",
    "review",
    "reviews",
    "snippet",
    "subject",
    "summary",
    "text",
    "title",
)


def _duration(value: Any) -> timedelta:
    try:
        return to_duration(value, what="duration")
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from exc  # pydantic reports ValueErrors with their location


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(lambda value: value.total_seconds(), return_type=float),
    WithJsonSchema(
        {
            "description": "Seconds (a positive number) or an ISO-8601 duration such as 'PT15M'.",
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {
                    "type": "string",
                    "pattern": r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$",
                },
            ],
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Privilege(enum.StrEnum):
    """How much harm a tool can do: high-privilege tools are gated, decayed and narrowed first."""

    LOW = "low"
    HIGH = "high"


class ArgType(enum.StrEnum):
    """The JSON type an argument value must have (``integer`` excludes booleans)."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"
    NULL = "null"


class Confirm(enum.StrEnum):
    """When a high-privilege tool needs a human's confirmation (beyond tainted arguments and instructions)."""

    TAINTED = "tainted"
    AFTER_UNTRUSTED = "after_untrusted"
    ALWAYS = "always"


class OnInstruction(enum.StrEnum):
    """How a run continues after an instruction addressed to the agent was found in untrusted content."""

    CONFIRM = "confirm"
    DENY = "deny"
    MATCH = "match"


class UnknownArguments(enum.StrEnum):
    """What to do with an argument the tool's ``args`` do not declare."""

    DENY = "deny"
    ALLOW = "allow"


class ParamRef(_Model):
    """A reference to a spawn-time parameter, resolved once when the grant is compiled."""

    param: str = Field(pattern=NAME_PATTERN, description="The name of a required parameter.")


Scalar = str | int | float | bool | None
Number = Annotated[int | float, Field(allow_inf_nan=False)]


class ArgSpec(_Model):
    """Constraints on one argument; every constraint given must hold (a conjunction)."""

    description: str | None = None
    type: ArgType | None = Field(None, description="The JSON type the value must have.")
    equals: str | int | float | bool | ParamRef | None = Field(
        None, description="The value must equal this (types must match); use type: null to require null."
    )
    one_of: list[Scalar] | ParamRef | None = Field(
        None, description="The value must be one of these, or a member of a list parameter."
    )
    minimum: Number | ParamRef | None = Field(None, description="Numbers: the smallest value allowed.")
    maximum: Number | ParamRef | None = Field(None, description="Numbers: the largest value allowed.")
    pattern: str | None = Field(None, description="Strings: a Python regular expression the WHOLE value must match.")
    max_length: int | None = Field(None, ge=0, description="Strings and arrays: the most characters or items.")
    prefix: str | ParamRef | None = Field(None, description="Strings: the value must start with this.")
    each: ArgSpec | None = Field(None, description="Arrays: constraints every item must satisfy.")
    optional: bool = Field(False, description="If true the argument may be absent; by default absence is denied.")
    sources: list[Annotated[str, Field(pattern=SOURCE_PATTERN)]] | None = Field(
        None,
        description=(
            "Where the value may come from: 'trusted' (user, system, developer, intent parameters), 'derived' "
            "(record fields fetched with trusted arguments), 'any', 'tool:NAME' or 'param:NAME'. "
            "Default: ['trusted'] for high-privilege tools, ['any'] for low-privilege ones."
        ),
    )
    tenant: bool = Field(
        False,
        description=(
            "The value names the tenant that owns the resource: a call whose value is not the session's "
            "tenant is denied with TENANT_MISMATCH. Read on a tool's own arguments only."
        ),
    )


class ToolSpec(_Model):
    """One tool the intent may use, how dangerous it is, how often, and with which arguments."""

    description: str | None = None
    privilege: Privilege = Field(
        Privilege.HIGH, description="'low' or 'high'; a tool is high-privilege unless it says otherwise."
    )
    max_calls: int = Field(ge=1, description="How many times the tool may run in one session.")
    unknown_arguments: UnknownArguments = Field(
        UnknownArguments.DENY, description="What to do with an argument not listed in 'args'."
    )
    args: dict[str, ArgSpec] = Field(default_factory=dict, description="Constraints per argument name.")
    confirm: Confirm = Field(
        Confirm.TAINTED,
        description=(
            "High-privilege tools: when to ask a human. 'tainted' (default): when an argument's value came "
            "only from sources its 'sources' do not allow; 'after_untrusted': also whenever untrusted content "
            "has entered the run; 'always': every call."
        ),
    )
    record: bool = Field(
        False,
        description=(
            "The tool is a system of record: fields of its structured output are labelled 'record' (and "
            "'derived' when the call's own arguments were trusted), except its free-text fields."
        ),
    )
    free_text: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FREE_TEXT),
        description="Field names in a record's output that hold free text and stay untrusted.",
    )
    feature: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description=(
            "The plan feature the tool needs; when the tenant context no longer lists it, the tool "
            "drops out of every live grant of that tenant."
        ),
    )


class DenyRule(_Model):
    """A call matching ``tool`` (a glob) whose listed arguments all satisfy their specs is denied."""

    tool: str = Field("*", min_length=1, description="A glob over tool names, e.g. 'send_*'.")
    args: dict[str, ArgSpec] = Field(
        default_factory=dict, description="The rule fires only if each listed argument is present and matches."
    )
    reason: str = Field(min_length=1, description="The sentence shown to people when the rule fires.")


class DecayRule(_Model):
    """After ``after`` has passed since the grant started, tools drop out of it for good."""

    after: Duration
    drop: Privilege | None = Field(None, description="Drop every tool of this privilege.")
    tools: list[Annotated[str, Field(pattern=TOOL_PATTERN)]] = Field(
        default_factory=list, description="Drop these tools by name."
    )


class DivergenceThresholds(_Model):
    """Divergence scores at which a session is narrowed (high-privilege tools leave the grant) or revoked."""

    narrow: float | None = Field(
        None, gt=0, le=1, description="From this score on, high-privilege tools leave the grant for the session."
    )
    revoke: float | None = Field(None, gt=0, le=1, description="From this score on, the session is revoked.")

    @model_validator(mode="after")
    def _narrow_first(self) -> DivergenceThresholds:
        if self.narrow is not None and self.revoke is not None and self.narrow > self.revoke:
            raise ValueError(f"narrow {self.narrow!r} is above revoke {self.revoke!r}; a session narrows first")
        return self


class IntentSchema(_Model):
    """A kind of task an agent may be spawned for, and everything that task may do."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://intentguard.dev/schemas/intent-schema/1.json",
        },
    )

    schema_uri: str | None = Field(None, alias="$schema", description="Optional, for editors.")
    name: str = Field(pattern=NAME_PATTERN, description="The intent's name, e.g. 'refund_request'.")
    version: str = Field(pattern=r"^\d+(\.\d+){0,2}$", description="The schema's version, e.g. '1.2'.")
    description: str = Field(min_length=1, description="What the task is, in words a reviewer reads.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "additionalProperties": False},
        description="A JSON Schema (2020-12) of type 'object' for the values supplied at spawn time.",
    )
    ttl: Duration = Field(description="How long a grant for this intent lives.")
    max_calls: int | None = Field(None, ge=1, description="The most tool calls of any kind in one session.")
    max_depth: int = Field(0, ge=0, le=16, description="How many delegation hops are allowed below the root.")
    hop_ttl_factor: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A delegated session lives at most this fraction of its parent's remaining lifetime.",
    )
    tools: Annotated[dict[Annotated[str, Field(pattern=TOOL_PATTERN)], ToolSpec], Field(min_length=1)] = Field(
        description="The tools the intent may use, by name."
    )
    on_instruction: OnInstruction = Field(
        OnInstruction.CONFIRM,
        description=(
            "What happens to the rest of the run once an instruction addressed to the agent was found in "
            "untrusted content: 'confirm' (default) every later call needs a person; 'deny' every later call "
            "is denied; 'match' only calls that carry a value or the verb the instruction named are gated."
        ),
    )
    deny: list[DenyRule] = Field(default_factory=list, description="Calls denied even when a tool allows them.")
    decay: list[DecayRule] = Field(default_factory=list, description="Tools that drop out as the grant ages.")
    divergence: DivergenceThresholds | None = Field(
        None,
        description=(
            "Thresholds on the divergence score (0-1) of each call; the guard's own, if lower, win. "
            "Without them the score is only reported."
        ),
    )

    def tool_names(self) -> frozenset[str]:
        """The names of every tool the schema declares."""
        return frozenset(self.tools)


def generate_meta_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of intent schema documents, generated from these models."""
    return IntentSchema.model_json_schema(by_alias=True, mode="validation")


if __name__ == "__main__":  # pragma: no cover - `make meta-schema`
    import json

    print(json.dumps(generate_meta_schema(), indent=2, sort_keys=True))
