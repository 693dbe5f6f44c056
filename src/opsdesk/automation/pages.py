"""Admin pages of automation: dead letters of the job runner (with a retry button)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.jobs import service as jobs_service
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/admin/jobs", response_class=HTMLResponse)
def dead_letters_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    jobs = jobs_service.dead_letters(session, actor)
    counts = jobs_service.job_counts(session, actor)
    rows = [
        {
            "id": job.id,
            "kind": job.kind,
            "attempts": job.attempts,
            "idempotency_key": job.idempotency_key,
            "last_error": job.last_error or "",
            "finished_at": job.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC") if job.finished_at else "",
        }
        for job in jobs
    ]
    return render(
        request,
        "automation/dead_letters.html",
        {
            "rows": rows,
            "counts": sorted(counts.items()),
            "csrf_token": csrf_token(request),
            "retried": request.query_params.get("retried"),
        },
    )


@router.post("/admin/jobs/{job_id}/retry", response_model=None)
def retry_dead_letter(
    job_id: int, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    jobs_service.retry_dead_letter(session, actor, job_id)
    return RedirectResponse(f"/admin/jobs?retried={job_id}", status_code=303)
