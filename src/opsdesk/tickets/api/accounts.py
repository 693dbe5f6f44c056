"""Accounts: the customer companies (payment details only for roles that may see them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from opsdesk.tickets.enums import AccountTier
from opsdesk.tickets.schemas import AccountCreate, AccountList, AccountOut, AccountPatch
from opsdesk.tickets.service import accounts
from opsdesk.web.auth import ApiActor
from opsdesk.web.pagination import decode_after_id, encode_after_id
from opsdesk.web.sessions import DbSession

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


@router.post("", status_code=201)
def create_account(body: AccountCreate, actor: ApiActor, session: DbSession) -> AccountOut:
    account = accounts.create_account(session, actor, body.model_dump(mode="json", exclude_unset=False))
    return AccountOut.of(account, with_payment=accounts.may_see_payment(actor))


@router.get("")
def list_accounts(
    actor: ApiActor,
    session: DbSession,
    q: Annotated[str | None, Query(description="part of the name")] = None,
    tier: AccountTier | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AccountList:
    rows = accounts.list_accounts(
        session,
        actor,
        query=q,
        tier=tier.value if tier else None,
        after_id=decode_after_id(cursor),
        limit=limit + 1,
    )
    items = rows[:limit]
    payment = accounts.may_see_payment(actor)
    return AccountList(
        items=[AccountOut.of(account, with_payment=payment) for account in items],
        next_cursor=encode_after_id(items[-1].id) if len(rows) > limit else None,
    )


@router.get("/{account_id}")
def get_account(account_id: int, actor: ApiActor, session: DbSession) -> AccountOut:
    account = accounts.access_account(session, actor, account_id)
    return AccountOut.of(account, with_payment=accounts.may_see_payment(actor))


@router.patch("/{account_id}")
def update_account(account_id: int, body: AccountPatch, actor: ApiActor, session: DbSession) -> AccountOut:
    account = accounts.access_account(session, actor, account_id)
    accounts.update_account(session, actor, account, body.model_dump(mode="json", exclude_unset=True))
    return AccountOut.of(account, with_payment=accounts.may_see_payment(actor))


@router.delete("/{account_id}", status_code=204, response_class=Response)
def delete_account(account_id: int, actor: ApiActor, session: DbSession) -> Response:
    accounts.delete_account(session, actor, accounts.access_account(session, actor, account_id))
    return Response(status_code=204)
