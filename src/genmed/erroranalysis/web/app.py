"""The tagging UI: a small Starlette app with server-rendered pages (jinja2).

It shows each misclassified eyeball example (image, true and predicted label), lets a
reviewer toggle tags by mouse or keys 1-9, add tags and a note, move on (n / p or arrows),
and shows the ceiling table live. Security rules:
- only misclassified *eyeball* examples exist for the app: anything else (blackbox ids,
  correct examples, unknown ids) is 404;
- images are looked up by example id in the predictions file, never by a path from the
  request, so no path traversal is possible;
- the app accepts only Host headers 127.0.0.1/localhost (no DNS rebinding), and state
  changes only as JSON POSTs (a cross-site form cannot send them without a preflight);
- `serve` binds 127.0.0.1 and refuses any other host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from genmed.errors import UserError
from genmed.erroranalysis.categories import category_table
from genmed.erroranalysis.split import eyeball_ids
from genmed.erroranalysis.store import TagStore
from genmed.erroranalysis.web.images import render_png

LOCAL_HOSTS = ("127.0.0.1", "localhost")
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Review:
    """What the app serves: the eyeball errors (in order), their images and the store."""

    predictions: pd.DataFrame
    ids: list[str]  # misclassified eyeball ids, the only examples the app knows
    images: dict[str, Path | None]  # id -> image path from the predictions file
    store: TagStore
    reviewer: str = ""
    start_tags: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        predictions: pd.DataFrame,
        sets: pd.Series,
        store: TagStore,
        *,
        base_dir: str | os.PathLike = ".",
        reviewer: str = "",
        start_tags: list[str] | None = None,
    ) -> "Review":
        """Keep only misclassified eyeball examples; resolve image paths against `base_dir`."""
        eye = predictions.loc[eyeball_ids(predictions, sets)]
        ids = [str(i) for i in eye.index[eye["error"]]]
        images: dict[str, Path | None] = {}
        for i in ids:
            ref = str(predictions.at[i, "image"]) if "image" in predictions.columns else ""
            images[i] = (Path(base_dir) / ref) if ref else None
        return cls(predictions, ids, images, store, reviewer, list(start_tags or []))

    def tags(self) -> list[str]:
        """Tag buttons: the start tags, then every other tag in the store."""
        return self.start_tags + [t for t in self.store.known_tags() if t not in self.start_tags]

    def table(self) -> dict:
        """The live ceiling table (JSON form) from the store's tags."""
        return category_table(self.predictions, self.store.to_frame()).to_dict()


def _url(example_id: str) -> str:
    return "/example/" + quote(example_id, safe="")


def create_app(review: Review) -> Starlette:
    """The Starlette app serving `review` (see the module docstring for the rules)."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    known = set(review.ids)

    def lookup(example_id: str) -> str:
        if example_id not in known:
            raise _NotFound
        return example_id

    async def index(request: Request) -> Response:
        if not review.ids:
            return PlainTextResponse("No misclassified examples in the eyeball set.")
        done = review.store.reviewed_ids()
        first = next((i for i in review.ids if i not in done), review.ids[0])
        return RedirectResponse(_url(first), status_code=303)

    async def example(request: Request) -> Response:
        eid = lookup(request.path_params["example_id"])
        pos = review.ids.index(eid)
        row = review.predictions.loc[eid]
        path = review.images[eid]
        if path is None:
            image_msg = "No image for this example (the predictions file has no 'image' entry)."
        elif not path.is_file():
            image_msg = f"Image file not found: {path.name}"
        else:
            image_msg = ""
        table = review.table()
        ctx = {
            "eid": eid,
            "pos": pos,
            "total": len(review.ids),
            "n_reviewed": len(known & review.store.reviewed_ids()),
            "y_true": row["y_true"],
            "y_pred": row["y_pred"],
            "image_url": "/image/" + quote(eid, safe=""),
            "image_msg": image_msg,
            "tags": review.tags(),
            "on": review.store.tags_for(eid),
            "note": review.store.note_for(eid),
            "prev_url": _url(review.ids[pos - 1]) if pos > 0 else "",
            "next_url": _url(review.ids[pos + 1]) if pos + 1 < len(review.ids) else "",
            "table": table,
        }
        return templates.TemplateResponse(request, "review.html", ctx)

    async def image(request: Request) -> Response:
        eid = lookup(request.path_params["example_id"])
        path = review.images[eid]
        if path is None or not path.is_file():
            return PlainTextResponse("image not found", status_code=404)
        try:
            png = render_png(path)
        except UserError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def read_json(request: Request) -> dict:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise _BadRequest("expected application/json")
        try:
            body = await request.json()
        except ValueError:
            raise _BadRequest("invalid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise _BadRequest("missing id")
        lookup(body["id"])
        return body

    async def toggle(request: Request) -> Response:
        body = await read_json(request)
        tag = str(body.get("tag", "")).strip()
        if not tag or len(tag) > 64:
            raise _BadRequest("a tag must have 1 to 64 characters")
        review.store.toggle_tag(body["id"], tag, review.reviewer)
        return JSONResponse(_state(review, body["id"]))

    async def note(request: Request) -> Response:
        body = await read_json(request)
        review.store.set_note(body["id"], str(body.get("note", ""))[:10_000], review.reviewer)
        return JSONResponse(_state(review, body["id"]))

    async def reviewed(request: Request) -> Response:
        body = await read_json(request)
        review.store.mark_reviewed(body["id"], review.reviewer)
        return JSONResponse(_state(review, body["id"]))

    async def summary(request: Request) -> Response:
        return JSONResponse(review.table())

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found", status_code=404)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(str(exc), status_code=400)

    routes = [
        Route("/", index),
        Route("/example/{example_id:path}", example),
        Route("/image/{example_id:path}", image),
        Route("/api/toggle", toggle, methods=["POST"]),
        Route("/api/note", note, methods=["POST"]),
        Route("/api/reviewed", reviewed, methods=["POST"]),
        Route("/api/summary", summary),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(LOCAL_HOSTS))],
        exception_handlers={_NotFound: not_found, _BadRequest: bad_request},
    )


def _state(review: Review, eid: str) -> dict:
    return {
        "id": eid,
        "tags": review.store.tags_for(eid),
        "all_tags": review.tags(),
        "table": review.table(),
        "n_reviewed": len(set(review.ids) & review.store.reviewed_ids()),
    }


class _NotFound(Exception):
    """An id the app must not serve (unknown, correct or blackbox)."""


class _BadRequest(Exception):
    """A malformed API call."""


def check_host(host: str) -> str:
    """Return the address to bind: only 127.0.0.1 (or localhost) is allowed."""
    if host not in LOCAL_HOSTS:
        raise UserError(
            f"host {host!r} refused: the tagging UI shows patient images and binds 127.0.0.1 "
            "only (use an SSH tunnel to reach it from elsewhere)"
        )
    return "127.0.0.1"


def serve(review: Review, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the UI on http://127.0.0.1:`port` until interrupted."""
    import uvicorn

    bind = check_host(host)
    uvicorn.run(create_app(review), host=bind, port=port, log_level="warning")
