"""The text a visitor reads on a page: what the crawler keeps as evidence for later stages."""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

EXCERPT_CHARS = 4_000  # per page; enough for an about/contact section
_SPACES = re.compile(r"\s+")
_HIDDEN_TAGS = ("script", "style", "noscript", "template", "svg", "head")


def visible_text(html: str, limit: int = EXCERPT_CHARS) -> str:
    """The text a visitor would read: no scripts, styles or hidden elements, whitespace collapsed."""
    try:
        root = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    for element in root.iter(*_HIDDEN_TAGS):
        element.drop_tree() if element.getparent() is not None else None
    for element in root.xpath("//*[@hidden or contains(translate(@style,' ',''),'display:none')]"):
        if element.getparent() is not None:
            element.drop_tree()
    return _SPACES.sub(" ", root.text_content()).strip()[:limit]
