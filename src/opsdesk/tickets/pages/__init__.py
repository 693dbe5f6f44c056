"""The helpdesk pages: views with counts, ticket lists, the ticket page, people and accounts.

Each module parses the request, calls the ticket services, builds a typed view model and renders
a template extending ``web/base.html``; templates print the model and run no queries.
"""

from fastapi import APIRouter

from opsdesk.tickets.pages import customers, lists, ticket

router = APIRouter(include_in_schema=False)
router.include_router(lists.router)
router.include_router(ticket.router)
router.include_router(customers.router)
