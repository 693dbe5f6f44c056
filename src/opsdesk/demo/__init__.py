"""Demo data: ``opsdesk seed`` and ``opsdesk demo``.

The seeder makes a believable SaaS company (Brightline, a time-tracking and invoicing product):
staff and groups, accounts of every tier, people, and tickets with whole conversations whose
metric columns agree with their messages and status history. Other domains add their own demo
data through ``opsdesk.<domain>.seed.seed(session, context)``.
"""
