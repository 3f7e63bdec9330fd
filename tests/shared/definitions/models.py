"""Small growth-path-like models for the definition loader tests."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from shared.definitions import DefinitionInvalid


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Wait(Strict):
    kind: Literal["wait"]
    name: str
    due: str

    @field_validator("due")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        if not (value.startswith("P") and value[-1:] in ("D", "W")):
            raise ValueError("Input should be a valid ISO 8601 duration")
        return value


class Goto(Strict):
    kind: Literal["goto"]
    name: str
    goto: str


class Stage(Strict):
    name: str
    nodes: list[Annotated[Wait | Goto, Field(discriminator="kind")]]

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [node.name for node in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique within a stage")
        return self


class GrowthPath(Strict):
    name: str
    stages: list[Stage]
    labels: dict[str, int] = {}

    @model_validator(mode="after")
    def _gotos_exist(self) -> Self:
        names = {node.name for stage in self.stages for node in stage.nodes}
        for i, stage in enumerate(self.stages):
            for j, node in enumerate(stage.nodes):
                if isinstance(node, Goto) and node.goto not in names:
                    raise DefinitionInvalid(
                        ("stages", i, "nodes", j, "goto"),
                        f"node {node.goto!r} referenced by goto does not exist",
                    )
        return self


class Playbook(Strict):
    """A model whose check reads outside facts from the validation context."""

    content: list[str]

    @field_validator("content")
    @classmethod
    def _content_known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = (info.context or {}).get("content", set())
        for i, key in enumerate(value):
            if key not in known:
                raise DefinitionInvalid((i,), f"content {key!r} is not in the library")
        return value
