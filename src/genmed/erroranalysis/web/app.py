"""The tagging UI: a small Starlette app with server-rendered pages (jinja2).

It shows each misclassified eyeball example (image, true and predicted label), lets a
reviewer toggle tags by mouse or keys 1-9, add tags and a note, move on (n / p or arrows),
and shows the ceiling table live. Security rules:
- only misclassified *eyeball* examples exist for the app: anything else (blackbox ids,
  correct examples, unknown ids) is 404;
- images are looked up by example id in the predictions file, never by a path from the
  request, so no path traversal is possible; and an image path from the predictions file
  must lie inside the data folder (the predictions file's folder): an absolute or `../`
  path elsewhere is not served, and a 404 never echoes a path;
- the app accepts only Host headers 127.0.0.1/localhost (no DNS rebinding), and state
  changes only as JSON POSTs (a cross-site form cannot send them without a preflight);
- a state-changing request with an `Origin` header must come from the app's own origin
  (http://127.0.0.1:PORT or http://localhost:PORT), and one a browser marks
  `Sec-Fetch-Site: cross-site` is refused: 403;
- request bodies are limited to `MAX_BODY` bytes (413) and JSON nesting to `MAX_DEPTH`
  levels (400), so a huge note or a deeply nested body cannot exhaust memory or the stack;
- `serve` binds 127.0.0.1 and refuses any other host.
"""

from __future__ import annotations

import json
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
MAX_BODY = 1 << 20  # bytes of one request body (a note is cut at 10,000 characters anyway)
MAX_DEPTH = 32  # JSON nesting levels of one request body
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
        """Keep only misclassified eyeball examples; resolve image paths against `base_dir`
        (a path that leads outside `base_dir` is dropped: that example shows no image)."""
        eye = predictions.loc[eyeball_ids(predictions, sets)]
        ids = [str(i) for i in eye.index[eye["error"]]]
        images: dict[str, Path | None] = {}
        base = Path(base_dir).resolve()
        for i in ids:
            ref = str(predictions.at[i, "image"]) if "image" in predictions.columns else ""
            path = (base / ref).resolve() if ref else None
            images[i] = path if path is not None and path.is_relative_to(base) else None
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
            image_msg = ("No image for this example (no 'image' entry in the predictions file, "
                         "or one outside its folder).")
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
        except UserError:
            return PlainTextResponse("image cannot be read", status_code=404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def read_json(request: Request) -> dict:
        check_origin(request)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise _BadRequest("expected application/json")
        raw = await read_body(request)
        if _nesting(raw) > MAX_DEPTH:
            raise _BadRequest(f"JSON nested deeper than {MAX_DEPTH} levels")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
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
        return PlainTextResponse(str(exc), status_code=getattr(exc, "status", 400))

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
        exception_handlers={_NotFound: not_found, _BadRequest: bad_request,
                            _Forbidden: bad_request, _TooLarge: bad_request},
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

    status = 400


class _Forbidden(_BadRequest):
    """A cross-origin state change."""

    status = 403


class _TooLarge(_BadRequest):
    """A request body over `MAX_BODY` bytes."""

    status = 413


def check_origin(request: Request) -> None:
    """Refuse (403) a state change from another origin: an `Origin` header other than the
    app's own (http://127.0.0.1:PORT or http://localhost:PORT, PORT the one requested), or a
    browser's `Sec-Fetch-Site: cross-site`. No `Origin` at all (curl, old browsers) passes:
    the JSON content type already forces a CORS preflight, which the app never answers."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise _Forbidden("cross-site request refused")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    allowed = {f"http://{h}{host[host.index(':'):] if ':' in host else ''}" for h in LOCAL_HOSTS}
    if origin not in allowed:
        raise _Forbidden(f"cross-origin request refused (Origin {origin[:80]})")


async def read_body(request: Request) -> bytes:
    """The request body, refusing (413) more than `MAX_BODY` bytes before reading them all."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise _TooLarge(f"request body over {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge(f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _nesting(raw: bytes) -> int:
    """Deepest bracket nesting of a JSON text (brackets inside strings ignored), in one pass
    without recursion, so a body of 100,000 `[` is refused before the parser sees it."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:  # the common case: nothing to scan
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def check_port(port: int) -> int:
    """Return `port` if it is a TCP port (1-65535) free on 127.0.0.1, else raise `UserError`."""
    import socket

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UserError(f"--port {port!r}: must be a TCP port number 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UserError(f"--port {port}: cannot listen on 127.0.0.1:{port} "
                            f"({exc.strerror or exc}); choose another port") from None
    return port


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
