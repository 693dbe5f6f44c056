"""Operations of triage, one concept per module: settings, taxonomy and keyword rules, model
versions (training, activation, rollback), classification of tickets, routing rules, assignment
and the accuracy report. Every function takes ``(session, actor, …)`` or is an event handler
``(session, event)`` registered in :mod:`opsdesk.reactions`; they flush and never commit."""
