"""Document reading, chunking, BM25 search and index persistence on real files."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from graphrelay.tools.documents import (
    DocumentIndex,
    build_index,
    chunk_text,
    index_summary,
    load_index,
    read_documents,
    save_index,
    search,
)

GUIDE_MD = """# Worker guide

Celery workers pull slow tool calls from the broker queue.

Each worker acknowledges a task only after the tool finished.
"""

NOTES_TXT = """Redis keeps the ledger of pending webhooks.

Keys expire after a day so the ledger never grows without bound.
"""

DEEP_RST = """Checkpoints
===========

PostgreSQL stores the graph checkpoints between suspensions.
"""

PDF_LINES = ["Quarterly report of the zeppelin division.", "Revenue from airships grew."]


def write_pdf(path: Path, lines: list[str]) -> None:
    """Write a minimal one-page PDF that shows `lines` in Helvetica."""
    text_ops = " 0 -16 Td ".join(f"({line}) Tj" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text_ops} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    path.write_bytes(bytes(out))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / ".secret").mkdir()
    (root / "guide.md").write_text(GUIDE_MD, encoding="utf-8")
    (root / "notes.txt").write_text(NOTES_TXT, encoding="utf-8")
    (root / "sub" / "deep.rst").write_text(DEEP_RST, encoding="utf-8")
    write_pdf(root / "report.pdf", PDF_LINES)
    (root / ".hidden.md").write_text("zeppelin zeppelin zeppelin", encoding="utf-8")
    (root / ".secret" / "inside.md").write_text("zeppelin secrets", encoding="utf-8")
    (root / "script.py").write_text("print('zeppelin')", encoding="utf-8")
    return root


def test_read_documents_walks_sorted_and_skips_hidden_and_unsupported(corpus: Path) -> None:
    docs = read_documents(corpus)
    assert [d.source for d in docs] == ["guide.md", "notes.txt", "report.pdf", "sub/deep.rst"]


def test_pdf_text_is_extracted(corpus: Path) -> None:
    [pdf] = read_documents(corpus / "report.pdf")
    assert pdf.source == "report.pdf"
    assert "zeppelin division" in pdf.text
    assert "Revenue from airships grew." in pdf.text


def test_text_is_read_as_utf8_with_replacement(tmp_path: Path) -> None:
    file = tmp_path / "mixed.txt"
    file.write_bytes("café ".encode() + b"\xff broken")
    [doc] = read_documents(file)
    assert doc.text == "café \ufffd broken"


def test_read_documents_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file or directory"):
        read_documents(tmp_path / "absent")
    (tmp_path / "code.py").write_text("x = 1")
    with pytest.raises(ValueError, match=r"supported: .*\.pdf"):
        read_documents(tmp_path)
    with pytest.raises(ValueError, match="not a supported document"):
        read_documents(tmp_path / "code.py")


def test_corrupt_pdf_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"this is not a pdf")
    with pytest.raises(ValueError, match="could not read PDF"):
        read_documents(tmp_path)


def test_chunk_text_packs_paragraphs_within_size() -> None:
    paragraphs = [f"Paragraph {n} " + "word " * 30 for n in range(10)]
    chunks = chunk_text("\n\n".join(paragraphs), size=400, overlap=50)
    assert len(chunks) > 1
    assert all(0 < len(chunk) <= 400 for chunk in chunks)
    assert chunks[0].startswith("Paragraph 0")
    # Every paragraph survives somewhere.
    assert all(any(f"Paragraph {n} " in chunk for chunk in chunks) for n in range(10))


def test_chunk_text_overlaps_consecutive_chunks() -> None:
    text = " ".join(f"w{n}" for n in range(400))
    chunks = chunk_text(text, size=200, overlap=40)
    assert all(len(chunk) <= 200 for chunk in chunks)
    for previous, following in pairwise(chunks):
        first_word = following.split()[0]
        assert first_word in previous.split()[-15:]


def test_chunk_text_keeps_fitting_paragraphs_whole() -> None:
    paragraphs = [f"P{n} " + "filler " * (10 + 7 * n) for n in range(5)]
    chunks = chunk_text("\n\n".join(paragraphs), size=300, overlap=30)
    for paragraph in paragraphs:
        assert any(paragraph.strip() in chunk for chunk in chunks)


def test_chunk_text_hard_splits_unbroken_text() -> None:
    chunks = chunk_text("x" * 1000, size=300, overlap=0)
    assert "".join(chunks) == "x" * 1000
    assert all(len(chunk) <= 300 for chunk in chunks)


def test_chunk_text_edge_cases() -> None:
    assert chunk_text("") == []
    assert chunk_text("\n\n  \n\n") == []
    assert chunk_text("short") == ["short"]
    with pytest.raises(ValueError, match="size > overlap"):
        chunk_text("x", size=100, overlap=100)
    with pytest.raises(ValueError, match="size > overlap"):
        chunk_text("x", size=100, overlap=-1)


def test_search_ranks_the_right_chunk_first(corpus: Path) -> None:
    index = build_index(corpus)
    [top, *_] = search(index, "Zeppelin revenue?")
    assert top.source == "report.pdf"
    assert top.score > 0
    assert search(index, "celery worker queue")[0].source == "guide.md"
    assert search(index, "postgresql checkpoints")[0].source == "sub/deep.rst"


def test_search_returns_only_positive_hits_up_to_k(corpus: Path) -> None:
    index = build_index(corpus)
    assert search(index, "unrelated nonsense") == []
    hits = search(index, "the ledger worker checkpoints", k=2)
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score > 0


def test_search_rejects_empty_query_and_bad_k(corpus: Path) -> None:
    index = build_index(corpus)
    with pytest.raises(ValueError, match="query is empty"):
        search(index, "  ?! ")
    with pytest.raises(ValueError, match="k must be at least 1"):
        search(index, "zeppelin", k=0)


def test_save_load_round_trip_is_atomic(corpus: Path, tmp_path: Path) -> None:
    index = build_index(corpus)
    file = tmp_path / "state" / "index.json"
    save_index(index, file)
    save_index(index, file)
    assert load_index(file) == index
    assert [p.name for p in file.parent.iterdir()] == ["index.json"]


def test_load_index_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run index_documents first"):
        load_index(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"chunks": "nope"}')
    with pytest.raises(ValueError, match="not a valid document index"):
        load_index(bad)


def test_index_summary_counts(corpus: Path) -> None:
    index = build_index(corpus)
    assert isinstance(index, DocumentIndex)
    assert index.root == str(corpus.resolve())
    summary = index_summary(index)
    assert summary["files"] == 4
    assert summary["chunks"] == len(index.chunks) >= 4
    assert summary["characters"] == sum(len(c.text) for c in index.chunks)


def test_build_index_without_text_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("   \n\n ")
    with pytest.raises(ValueError, match="none had extractable text"):
        build_index(tmp_path)
