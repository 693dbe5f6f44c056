"""Request and response shapes of the auth API: users, groups, tokens and browser sessions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from opsdesk.auth.enums import Availability, Role
from opsdesk.auth.models import ApiToken, Group, User


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    group_ids: list[int]
    skills: list[str]
    languages: list[str]
    time_zone: str
    capacity: int
    availability: str
    vendor: str | None
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            group_ids=user.group_ids,
            skills=list(user.skills or []),
            languages=list(user.languages or []),
            time_zone=user.time_zone,
            capacity=user.capacity,
            availability=user.availability,
            vendor=user.vendor,
            is_active=user.is_active,
            created_at=user.created_at,
        )


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str = Field(max_length=1000)


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str
    expires_at: datetime


class GroupOut(BaseModel):
    id: int
    name: str
    description: str
    member_ids: list[int]

    @classmethod
    def of(cls, group: Group, member_ids: list[int]) -> GroupOut:
        return cls(id=group.id, name=group.name, description=group.description, member_ids=member_ids)


class TokenOut(BaseModel):
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            user_id=token.user_id,
            name=token.name,
            prefix=token.prefix,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret, shown once: store it now.")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    role: Role
    password: str | None = Field(default=None, max_length=1000)
    time_zone: str = "UTC"
    languages: list[str] = Field(default_factory=lambda: ["en"])
    skills: list[str] = Field(default_factory=list)
    capacity: int = Field(default=20, ge=0)
    group_ids: list[int] = Field(default_factory=list)
    vendor: str | None = Field(default=None, max_length=120)
    seniority: int = Field(default=1, ge=1, le=10)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    password: str | None = Field(default=None, max_length=1000)
    time_zone: str | None = None
    languages: list[str] | None = None
    skills: list[str] | None = None
    capacity: int | None = Field(default=None, ge=0)
    group_ids: list[int] | None = None
    vendor: str | None = Field(default=None, max_length=120)
    seniority: int | None = Field(default=None, ge=1, le=10)
    is_active: bool | None = None
    availability: Availability | None = None


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=120)
    description: str = ""
    member_ids: list[int] = Field(default_factory=list)


class GroupPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=120)
    description: str | None = None
    member_ids: list[int] | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=120)
    user_id: int | None = Field(default=None, description="admins may issue tokens for others")
