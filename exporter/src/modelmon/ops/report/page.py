"""The report's page: blocks written as Markdown and as self-contained HTML."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Code:
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Image:
    title: str
    file: str  # beside the page


@dataclass(frozen=True)
class Table:
    """A table of text cells; `numeric` columns are right-aligned. A notebook shows it as it is
    (it has Jupyter's Markdown and HTML representations)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()

    def _right(self, column: int) -> bool:
        return column < len(self.numeric) and self.numeric[column]

    def markdown(self) -> list[str]:
        rule = ["---:" if self._right(i) else "---" for i in range(len(self.header))]
        return [
            "| " + " | ".join(self.header) + " |",
            "|" + "|".join(rule) + "|",
            *("| " + " | ".join(row) + " |" for row in self.rows),
        ]

    def html(self) -> str:
        def cells(tag: str, row: Sequence[str]) -> str:
            return "".join(
                f"<{tag}{' class=num' if self._right(i) else ''}>{html.escape(c)}</{tag}>"
                for i, c in enumerate(row)
            )

        body = "".join(f"<tr>{cells('td', row)}</tr>" for row in self.rows)
        return f"<table><tr>{cells('th', self.header)}</tr>{body}</table>"

    def _repr_markdown_(self) -> str:
        return "\n".join(self.markdown())

    def _repr_html_(self) -> str:
        return self.html()


Block = Heading | Text | Code | Image | Table


def to_markdown(blocks: Iterable[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            lines.append(block.text)
        elif isinstance(block, Code):
            lines += ["```", *block.lines, "```"]
        elif isinstance(block, Image):
            lines.append(f"![{block.title}]({block.file})")
        else:
            lines += block.markdown()
        lines.append("")
    return "\n".join(lines)


HTML_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.2em .6em}"
    "th{background:#f3f3f3}.num{text-align:right}pre{background:#f6f6f6;padding:.6em}"
    "img{max-width:100%}"
)


def to_html(blocks: Iterable[Block], title: str, images: Path) -> str:
    """One self-contained page: each image is embedded as a base64 data URI, so the file can be
    mailed or kept as a CI artifact alone."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Code):
            parts.append(f"<pre>{html.escape(chr(10).join(block.lines))}</pre>")
        elif isinstance(block, Image):
            data = base64.b64encode((images / block.file).read_bytes()).decode()
            alt = html.escape(block.title, quote=True)
            parts.append(f'<img alt="{alt}" src="data:image/png;base64,{data}">')
        else:
            parts.append(block.html())
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
