"""The helpdesk pages: views with counts, ticket lists, the ticket page, people and accounts.

Each module parses the request, calls the ticket services, builds a typed view model and renders
a template extending ``web/base.html``; templates print the model and run no queries.
"""

from fastapi import APIRouter

from opsdesk.tickets.pages import customers, lists, ticket, view_editor

router = APIRouter(include_in_schema=False)
# The editor's fixed paths (/views/new, /views/manage) before the list's /views/{view_id}.
router.include_router(view_editor.router)
router.include_router(lists.router)
router.include_router(ticket.router)
router.include_router(customers.router)
