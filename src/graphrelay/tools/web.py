"""Fetch a web page over HTTP(S) and reduce it to readable text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

MAX_TEXT_CHARS = 20_000

_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "title"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_TEXT_TYPES = ("json", "xml", "javascript", "x-www-form-urlencoded")


class FetchedPage(BaseModel):
    """The readable text of a fetched URL."""

    url: str
    status: int
    content_type: str
    title: str
    text: str
    truncated: bool


class _TextExtractor(HTMLParser):
    """Collects visible text and the <title>, dropping scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            # Source line breaks are plain whitespace in HTML; only block tags break lines.
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> tuple[str, str]:
    """Return `(title, text)` for an HTML document, with whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return _collapse(" ".join(parser.title_parts)), _collapse("".join(parser.parts))


def _collapse(text: str) -> str:
    lines = (re.sub(r"\s+", " ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def fetch_text(url: str, *, timeout: float = 20.0, max_bytes: int = 2_000_000) -> FetchedPage:
    """GET `url` and return its readable text; HTML is reduced to visible text."""
    _check_url(url)
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=timeout) as client,
            client.stream("GET", url) as response,
        ):
            if not response.is_success:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
            content_type = response.headers.get("content-type", "")
            _check_textual(url, content_type)
            body, over_cap = _read_capped(response, max_bytes)
            encoding = response.encoding or "utf-8"
            final_url, status = str(response.url), response.status_code
    except httpx.HTTPError as exc:
        raise RuntimeError(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
    return _to_page(final_url, status, content_type, body.decode(encoding, "replace"), over_cap)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"only absolute http:// or https:// URLs can be fetched, got {url!r}")


def _check_textual(url: str, content_type: str) -> None:
    media_type = content_type.split(";")[0].strip().lower()
    if not media_type or media_type.startswith("text/") or media_type.endswith(_TEXT_TYPES):
        return
    raise ValueError(f"{url} is {media_type}, not text or HTML; fetch_text only reads text pages")


def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    body = bytearray()
    for block in response.iter_bytes():
        body.extend(block)
        if len(body) > max_bytes:
            return bytes(body[:max_bytes]), True
    return bytes(body), False


def _to_page(url: str, status: int, content_type: str, body: str, over_cap: bool) -> FetchedPage:
    if "html" in content_type.lower() or (not content_type and _looks_like_html(body)):
        title, text = html_to_text(body)
    else:
        title, text = "", body.strip()
    return FetchedPage(
        url=url,
        status=status,
        content_type=content_type,
        title=title,
        text=text[:MAX_TEXT_CHARS],
        truncated=over_cap or len(text) > MAX_TEXT_CHARS,
    )


def _looks_like_html(body: str) -> bool:
    start = body.lstrip()[:15].lower()
    return start.startswith(("<!doctype html", "<html"))
