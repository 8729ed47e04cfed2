"""A searchable document index: read files, chunk them, rank chunks with BM25."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from rank_bm25 import BM25Okapi

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".pdf")

_WORD = re.compile(r"\w+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD_WITH_SPACE = re.compile(r"(\s*)(\S+)")


class Document(BaseModel):
    """The text of one file, named by its path relative to the indexed root."""

    source: str
    text: str


class Chunk(BaseModel):
    """One searchable piece of a document."""

    source: str
    chunk_no: int
    text: str


class DocumentIndex(BaseModel):
    """All chunks of the documents under `root`, as stored on disk."""

    root: str
    built_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    chunks: list[Chunk]


class SearchHit(BaseModel):
    """A chunk that matched a query, with its BM25 score."""

    source: str
    chunk_no: int
    text: str
    score: float


def read_documents(path: Path) -> list[Document]:
    """Read one supported file, or every supported file under a directory."""
    if not path.exists():
        raise FileNotFoundError(f"no file or directory at {path}")
    if path.is_file():
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise ValueError(f"{path} is not a supported document; supported: {_suffix_list()}")
        return [Document(source=path.name, text=_read_file(path))]
    files = _supported_files(path)
    if not files:
        raise ValueError(f"no supported documents under {path}; supported: {_suffix_list()}")
    return [Document(source=f.relative_to(path).as_posix(), text=_read_file(f)) for f in files]


def _suffix_list() -> str:
    return ", ".join(SUPPORTED_SUFFIXES)


def _supported_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Prune in place so os.walk never descends into .git, .venv and the like.
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(
            Path(dirpath) / name
            for name in filenames
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES
        )
    return sorted(found)


def _read_file(path: Path) -> str:
    if path.suffix.lower() == ".pdf":
        return _read_pdf(path)
    return path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")


def _read_pdf(path: Path) -> str:
    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
    except PyPdfError as exc:
        raise ValueError(f"could not read PDF {path}: {exc}") from exc
    return "\n\n".join(page.strip() for page in pages if page.strip())


def chunk_text(text: str, *, size: int = 800, overlap: int = 120) -> list[str]:
    """Split text into chunks of at most `size` characters, cutting at paragraphs when possible."""
    if not size > overlap >= 0:
        raise ValueError(f"chunking needs size > overlap >= 0, got size={size}, overlap={overlap}")
    chunks: list[str] = []
    current = ""
    for separator, unit in _units(text, size, overlap):
        joined = f"{current}{separator}{unit}" if current else unit
        if len(joined) <= size:
            current = joined
            continue
        chunks.append(current)
        tail = _tail(current, min(overlap, size - len(unit) - len(separator)))
        current = f"{tail}{separator}{unit}" if tail else unit
    if current:
        chunks.append(current)
    return chunks


def _units(text: str, size: int, overlap: int) -> Iterator[tuple[str, str]]:
    """Yield (separator, unit): whole paragraphs that fit a chunk, else the paragraph's words."""
    # Word pieces are kept short enough that the overlap still fits in front of them.
    word_limit = max(1, size - overlap - 2)
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = paragraph.strip()
        if len(paragraph) <= size:
            if paragraph:
                yield "\n\n", paragraph
            continue
        separator = "\n\n"
        for space, word in _WORD_WITH_SPACE.findall(paragraph):
            if space:
                separator = "\n" if "\n" in space else " "
            for start in range(0, len(word), word_limit):
                yield separator, word[start : start + word_limit]
                separator = ""


def _tail(text: str, length: int) -> str:
    if length <= 0:
        return ""
    tail = text[-length:]
    cut_mid_word = len(text) > length and not text[-length - 1].isspace()
    if cut_mid_word:
        first_space = re.search(r"\s", tail)
        if first_space:
            tail = tail[first_space.end() :]
    return tail.strip()


def build_index(path: Path) -> DocumentIndex:
    """Read and chunk every supported document under `path` into an index."""
    documents = read_documents(path)
    chunks = [
        Chunk(source=doc.source, chunk_no=number, text=text)
        for doc in documents
        for number, text in enumerate(chunk_text(doc.text))
    ]
    if not chunks:
        raise ValueError(
            f"found {len(documents)} document(s) under {path} but none had extractable text "
            "(scanned PDFs need OCR first)"
        )
    return DocumentIndex(root=str(path.resolve()), chunks=chunks)


def save_index(index: DocumentIndex, file: Path) -> None:
    """Write the index as JSON, atomically replacing any previous file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(index.model_dump_json())
        os.replace(tmp_name, file)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_index(file: Path) -> DocumentIndex:
    """Load an index written by `save_index`."""
    if not file.is_file():
        raise FileNotFoundError(f"no index at {file}; run index_documents first")
    try:
        return DocumentIndex.model_validate_json(file.read_bytes())
    except ValidationError as exc:
        raise ValueError(
            f"{file} is not a valid document index ({exc.error_count()} error(s)); "
            "run index_documents again"
        ) from exc


def _tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def search(index: DocumentIndex, query: str, k: int = 3) -> list[SearchHit]:
    """Return up to `k` chunks ranked by BM25 score for `query`, best first."""
    terms = _tokenize(query)
    if not terms:
        raise ValueError("the search query is empty; pass some words to look for")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    corpus = [_tokenize(chunk.text) for chunk in index.chunks]
    if not any(corpus):
        return []
    scores = [float(s) for s in BM25Okapi(corpus).get_scores(terms)]
    # BM25Okapi weighs a word found in half the chunks or more at zero or below, so small
    # indexes would find nothing: a chunk qualifies by holding a query word, BM25 ranks it.
    wanted = set(terms)
    matching = [i for i, words in enumerate(corpus) if wanted.intersection(words)]
    ranked = sorted(matching, key=lambda i: scores[i], reverse=True)
    return [SearchHit(**index.chunks[i].model_dump(), score=scores[i]) for i in ranked[:k]]


def index_summary(index: DocumentIndex) -> dict[str, int]:
    """Count the files, chunks and characters in an index."""
    return {
        "files": len({chunk.source for chunk in index.chunks}),
        "chunks": len(index.chunks),
        "characters": sum(len(chunk.text) for chunk in index.chunks),
    }
