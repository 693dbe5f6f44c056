"""Permissions and the roles that hold them. Services call :func:`require`; handlers never
decide permissions on their own.

Non-person actors (system, rules, integrations, customers through a channel) act on behalf of the
configuration an admin made, so they pass permission checks; what they may do is bounded by the
service call that runs them.
"""

from __future__ import annotations

from enum import StrEnum

from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import Role
from opsdesk.auth.errors import PermissionDeniedError


class Permission(StrEnum):
    TICKET_READ = "ticket.read"
    TICKET_WRITE = "ticket.write"
    TICKET_REPLY = "ticket.reply"
    TICKET_BULK = "ticket.bulk"
    TICKET_MERGE = "ticket.merge"
    PEOPLE_READ = "people.read"
    PEOPLE_WRITE = "people.write"
    ACCOUNT_READ = "account.read"
    ACCOUNT_WRITE = "account.write"
    PAYMENT_READ = "payment.read"
    BILLING_WRITE = "billing.write"
    USER_READ = "user.read"
    USER_MANAGE = "user.manage"
    GROUP_MANAGE = "group.manage"
    VIEW_MANAGE_SHARED = "view.manage_shared"
    VIEW_MANAGE_OWN = "view.manage_own"
    FIELD_MANAGE = "field.manage"
    STATUS_MANAGE = "status.manage"
    TOKEN_OWN = "token.own"  # noqa: S105 - a permission name, not a secret
    AUDIT_READ = "audit.read"
    RULE_MANAGE = "rule.manage"
    REPORT_READ = "report.read"
    JOB_MANAGE = "job.manage"
    CHANNEL_MANAGE = "channel.manage"
    CHANNEL_READ = "channel.read"  # see channel settings (brands, mailboxes, Slack), never secrets


_STAFF_BASE = {
    Permission.TICKET_READ,
    Permission.TICKET_WRITE,
    Permission.TICKET_REPLY,
    Permission.PEOPLE_READ,
    Permission.PEOPLE_WRITE,
    Permission.ACCOUNT_READ,
    Permission.USER_READ,
    Permission.VIEW_MANAGE_OWN,
    Permission.TOKEN_OWN,
    Permission.AUDIT_READ,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.LEAD: frozenset(
        _STAFF_BASE
        | {
            Permission.TICKET_BULK,
            Permission.TICKET_MERGE,
            Permission.ACCOUNT_WRITE,
            Permission.PAYMENT_READ,
            Permission.VIEW_MANAGE_SHARED,
            Permission.RULE_MANAGE,
            Permission.REPORT_READ,
            Permission.CHANNEL_READ,
        }
    ),
    Role.AGENT: frozenset(
        _STAFF_BASE | {Permission.TICKET_BULK, Permission.TICKET_MERGE, Permission.PAYMENT_READ}
    ),
    Role.BILLING: frozenset(
        _STAFF_BASE | {Permission.PAYMENT_READ, Permission.BILLING_WRITE, Permission.ACCOUNT_WRITE}
    ),
    Role.CSM: frozenset(
        _STAFF_BASE | {Permission.ACCOUNT_WRITE, Permission.PAYMENT_READ, Permission.REPORT_READ}
    ),
    # Contractors work tickets of their own groups only, and never see payment details.
    Role.CONTRACTOR: frozenset(
        {
            Permission.TICKET_READ,
            Permission.TICKET_WRITE,
            Permission.TICKET_REPLY,
            Permission.PEOPLE_READ,
            Permission.ACCOUNT_READ,
            Permission.VIEW_MANAGE_OWN,
            Permission.TOKEN_OWN,
            Permission.AUDIT_READ,
        }
    ),
    Role.VIEWER: frozenset(
        {
            Permission.TICKET_READ,
            Permission.PEOPLE_READ,
            Permission.ACCOUNT_READ,
            Permission.USER_READ,
            Permission.AUDIT_READ,
            Permission.REPORT_READ,
            Permission.TOKEN_OWN,
        }
    ),
}


def has_permission(actor: Actor, permission: Permission) -> bool:
    if actor.user is None:
        return True
    if not actor.user.is_active:
        return False
    return permission in ROLE_PERMISSIONS[Role(actor.user.role)]


def require(actor: Actor, permission: Permission) -> None:
    """Refuse the action unless the actor holds the permission."""
    if not has_permission(actor, permission):
        raise PermissionDeniedError(f"{actor.name} ({actor.role}) may not {permission.value}")


def is_group_scoped(actor: Actor) -> bool:
    """Contractors only see tickets (and accounts) of the groups they belong to."""
    return actor.user is not None and actor.user.role == Role.CONTRACTOR
