"""Errors as ``application/problem+json`` (RFC 9457), with a field list on 422."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from opsdesk.errors import FieldProblem

PROBLEM_JSON = "application/problem+json"


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    code: str,
    fields: Sequence[FieldProblem],
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://opsdesk.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if fields:
        body["errors"] = [
            {
                "location": list(problem.location),
                "field": ".".join(str(part) for part in problem.location),
                "message": problem.message,
                "code": problem.code,
            }
            for problem in fields
        ]
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=all_headers or None)


def validation_problem(request: Request, errors: Sequence[Any]) -> JSONResponse:
    fields = [
        FieldProblem(
            tuple(part for part in error.get("loc", ()) if part != "body") or ("body",),
            str(error.get("msg", "invalid")),
            str(error.get("type", "invalid")),
        )
        for error in errors
    ]
    return problem_response(
        request, 422, "Validation failed", "the request has invalid fields", "validation_failed", fields
    )
