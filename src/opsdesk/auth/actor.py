"""Who is acting: a staff user (through the web, the API or a token), a rule, a macro, an
integration, a customer or the system. Every service takes an actor; the audit trail records it.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsdesk.auth.enums import ActorKind, Role
from opsdesk.auth.models import User


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    name: str
    via: str
    user: User | None = None
    actor_id: int | None = None
    token_id: int | None = None

    @property
    def role(self) -> Role | None:
        return Role(self.user.role) if self.user is not None else None

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None

    @property
    def is_staff(self) -> bool:
        return self.user is not None

    @classmethod
    def for_user(cls, user: User, *, via: str = "web", token_id: int | None = None) -> Actor:
        kind = ActorKind.API_TOKEN if token_id is not None else ActorKind.USER
        return cls(kind=kind, name=user.name, via=via, user=user, actor_id=user.id, token_id=token_id)

    @classmethod
    def system(cls, name: str = "opsdesk", *, via: str = "system") -> Actor:
        return cls(kind=ActorKind.SYSTEM, name=name, via=via)

    @classmethod
    def rule(cls, name: str, rule_id: int | None = None, *, via: str = "rule") -> Actor:
        return cls(kind=ActorKind.RULE, name=name, via=via, actor_id=rule_id)

    @classmethod
    def macro(cls, name: str, macro_id: int, user: User) -> Actor:
        return cls(
            kind=ActorKind.MACRO, name=f"{name} (by {user.name})", via="macro", user=user, actor_id=macro_id
        )

    @classmethod
    def integration(cls, name: str, *, via: str) -> Actor:
        return cls(kind=ActorKind.INTEGRATION, name=name, via=via)

    @classmethod
    def customer(cls, name: str, person_id: int | None, *, via: str) -> Actor:
        return cls(kind=ActorKind.CUSTOMER, name=name, via=via, actor_id=person_id)
