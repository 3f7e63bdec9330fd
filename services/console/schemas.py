"""The console's sign-in: request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr = Field(
        min_length=1, max_length=200, description="An admin token (`milepost admin-token create`)."
    )


class SessionOut(BaseModel):
    workspace: str | None = Field(description="The workspace the token opens; null: every one.")
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change.")
