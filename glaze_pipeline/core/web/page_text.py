"""The text a visitor reads on a page: what the crawler keeps as evidence for later stages.

Text a person would not see is not evidence: a hostile page can hide an instruction or a
planted value from its visitors and still hand it to a model. So everything hidden by the
usual means goes before the text is taken: the `hidden` attribute, `aria-hidden`, inline
styles and simple rules in the page's own `<style>` blocks (display, visibility, opacity,
off-screen position or indent, zero size, clip), the common screen-reader-only classes,
comments, scripts, `noscript` and templates. Elements keep word boundaries between them
("Services" then "Corvid", never "ServicesCorvid").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import lxml.html
from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

EXCERPT_CHARS = 4_000  # per page; enough for an about/contact section
_SPACES = re.compile(r"\s+")
_HIDDEN_TAGS = ("script", "style", "noscript", "template", "svg", "head", "object", "iframe", "select")
# Screen-reader-only and "hide" utility classes of the common frameworks (Bootstrap, WordPress, Drupal,
# Tailwind, Foundation, HTML5 Boilerplate): their text exists for assistive tools, not for the eye.
HIDING_CLASSES = frozenset(
    {
        *("sr-only", "sr-only-focusable", "visually-hidden", "visually-hidden-focusable", "visuallyhidden"),
        *("screen-reader-text", "screen-reader-only", "screenreader", "element-invisible", "element-hidden"),
        *("show-for-sr", "a11y-hidden", "u-hidden-visually", "offscreen", "off-screen", "hidden", "d-none"),
        *("hide", "invisible", "is-hidden", "hidden-text", "assistive-text"),
    }
)
# Inline elements join the text around them; every other element is a boundary between words.
_INLINE = frozenset(
    {
        *("a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i", "ins"),
        *("kbd", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var", "wbr"),
    }
)
_DECLARATION = re.compile(r"([a-z\-]+)\s*:\s*([^;]+)", re.IGNORECASE)
_RULE = re.compile(r"([^{}@]+)\{([^{}]*)\}")
_CONDITIONAL_AT = re.compile(r"@(?:media|supports|container)[^{]*\([^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", re.IGNORECASE)
_UNCONDITIONAL_AT = re.compile(r"@media[^{(]*\{", re.IGNORECASE)  # "@media screen {": its rules always apply
_OTHER_AT = re.compile(r"@[a-z\-]+[^{;]*(?:;|\{(?:[^{}]*\{[^{}]*\})*[^{}]*\})", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LENGTH = re.compile(r"^(-?\d*\.?\d+)(px|em|rem|%|vw|vh|pt)?$")
_OFF_SCREEN_SIDES = ("left", "top", "right", "margin-left", "text-indent")
_OFF_SCREEN_PX = 500  # further left or up than any layout puts readable text
_CLIP_NOTHING = re.compile(r"rect\(\s*(?:(?:0|1px)[\s,]*){4}\)|inset\(\s*(?:50|100)%")
_SCALE_ZERO = re.compile(r"scale[xy]?\(\s*0(?:\.0+)?\s*[,)]")


def visible_text(html: str, limit: int = EXCERPT_CHARS) -> str:
    """The text a visitor would read: nothing hidden, word boundaries kept, whitespace collapsed."""
    try:
        root = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    strip_hidden(root)
    return _SPACES.sub(" ", "".join(_words(root))).strip()[:limit]


def strip_hidden(root: lxml.html.HtmlElement) -> None:
    """Remove, in place, every element and comment a visitor would not see (the page's own rules included)."""
    rules = list(_hiding_selectors(root))
    doomed: list[etree._Element] = [c for c in root.iter(etree.Comment, etree.ProcessingInstruction)]
    doomed.extend(root.iter(*_HIDDEN_TAGS))
    for element in root.iter(etree.Element):
        if isinstance(element.tag, str) and _hidden_by_markup(element):
            doomed.append(element)
    for selector in rules:
        doomed.extend(selector(root))
    for element in doomed:
        if element.getparent() is not None:
            _drop(element)


def _drop(element: etree._Element) -> None:
    """Remove an element but keep its tail (the text after it belongs to its parent)."""
    parent = element.getparent()
    assert parent is not None
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + " " + tail
        else:
            parent.text = (parent.text or "") + " " + tail
    parent.remove(element)


def _hidden_by_markup(element: etree._Element) -> bool:
    attributes = element.attrib
    if "hidden" in attributes or str(attributes.get("aria-hidden", "")).strip().lower() == "true":
        return True
    if str(attributes.get("type", "")).lower() == "hidden":
        return True
    classes = str(attributes.get("class", "")).lower().split()
    if any(name in HIDING_CLASSES for name in classes):
        return True
    style = attributes.get("style")
    return bool(style) and hides(str(style))


def _hiding_selectors(root: lxml.html.HtmlElement) -> Iterator[CSSSelector]:
    """Selectors of the page's `<style>` rules that hide what they match (conditional @media rules skipped)."""
    for style in root.iter("style"):
        css = _CSS_COMMENT.sub("", style.text or "")
        css = _OTHER_AT.sub("", _UNCONDITIONAL_AT.sub("", _CONDITIONAL_AT.sub("", css)))
        for selectors, body in _RULE.findall(css):
            if not hides(body):
                continue
            for selector in selectors.split(","):
                selector = selector.strip()
                if not selector or ":" in selector:  # :hover, ::before, :not(…): states and generated content
                    continue
                try:
                    yield CSSSelector(selector)
                except (SelectorError, etree.XPathError):
                    continue


def hides(declarations: str) -> bool:
    """Whether a CSS declaration block makes its element's text invisible to a visitor."""
    props = {
        name.lower(): value.strip().lower().removesuffix("!important").strip()
        for name, value in _DECLARATION.findall(declarations)
    }
    if props.get("display") == "none" or props.get("visibility") in ("hidden", "collapse"):
        return True
    if _number(props.get("opacity", "1")) == 0 or _px(props.get("font-size", "1px")) == 0:
        return True
    if any(_px(props.get(side, "0")) <= -_OFF_SCREEN_PX for side in _OFF_SCREEN_SIDES):
        return True
    if _CLIP_NOTHING.search(props.get("clip", "") + " " + props.get("clip-path", "")):
        return True
    if _SCALE_ZERO.search(props.get("transform", "")):
        return True
    tiny = any(_px(props.get(side, "")) <= 1 for side in ("width", "height", "max-height", "max-width"))
    return tiny and props.get("overflow") in ("hidden", "clip")


def _px(value: str) -> float:
    """A length in pixels (em and rem as 16 px); lengths it cannot read count as large."""
    match = _LENGTH.match(value.strip().split()[0]) if value.strip() else None
    if not match:
        return float("inf")
    number, unit = float(match.group(1)), match.group(2) or "px"
    return number * (16 if unit in ("em", "rem") else 1)


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 1.0


def _words(root: etree._Element) -> Iterator[str]:
    """The text in document order, with a space wherever a non-inline element starts or ends."""
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        boundary = "" if tag in _INLINE else " "
        if event == "start":
            yield boundary
            if element.text:
                yield element.text
        else:
            yield boundary
            if element.tail and element is not root:
                yield element.tail
