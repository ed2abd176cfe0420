"""Evidence for the LLM: what earlier stages saw, cleaned, de-fanged, trimmed to a budget, labelled by source.

Everything here is untrusted text from the internet. Instruction-like passages
("ignore previous instructions…") are cut out before the model sees them and
reported, so a hostile page can neither steer the model nor supply the quote a
value would need to count as grounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from glaze_pipeline.core.model.candidates import Evidence

_SPACES = re.compile(r"\s+")
_INJECTION = re.compile(
    r"ignore (?:all |any )?(?:previous|prior|above|the above) (?:instructions|prompts?)"
    r"|disregard (?:the |all )?(?:previous|prior|above)"
    r"|system prompt|you are now|new instructions|as an ai\b"
    r"|\b(?:set|change|report|output) (?:the |your )?[\w ]{1,40} (?:to|as) [\d\"']",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


@dataclass(frozen=True)
class EvidencePack:
    """The fenced evidence block sent to the model, and what was cut out of it."""

    text: str
    sources: tuple[str, ...]
    removed: tuple[str, ...]  # instruction-like passages, reported as flags
    # The part of `text` that is the visible text of the company's own pages (the website provider's
    # evidence), normalised for grounding: the only quotes that can carry a value to a landing confidence.
    own: str = ""


def defang(text: str) -> tuple[str, list[str]]:
    """Cut every sentence that contains instruction-like text; return the rest and what was cut."""
    spans: list[tuple[int, int]] = []
    for match in _INJECTION.finditer(text):
        before = [m.end() for m in _SENTENCE_END.finditer(text, 0, match.start())]
        after = _SENTENCE_END.search(text, match.end())
        start, end = (before[-1] if before else 0), (after.end() if after else len(text))
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    removed = [text[a:b].strip() for a, b in spans]
    kept, last = [], 0
    for a, b in spans:
        kept.append(text[last:a])
        kept.append(" [removed: instruction-like text] ")
        last = b
    kept.append(text[last:])
    return "".join(kept), removed


OWN_PAGES = "website"  # the provider whose evidence is the company's own pages, hidden text removed


def build_evidence(items: Sequence[Evidence], known: dict[str, str], *, budget_chars: int = 12_000) -> EvidencePack:
    """Known values first (short, high signal), then excerpts in order, until the budget is spent."""
    parts: list[str] = []
    sources: list[str] = []
    removed: list[str] = []
    own: list[str] = []
    if known:
        lines = "\n".join(f"{name}: {value}" for name, value in sorted(known.items()))
        parts.append(f'<evidence source="earlier providers">\n{lines}\n</evidence>')
    used = sum(len(p) for p in parts)
    for item in items:
        text, cut = defang(_SPACES.sub(" ", item.text).strip())
        removed.extend(cut)
        room = budget_chars - used
        if room < 200 or not text:
            continue
        text = text[:room]
        # The fence must not be closable from inside the data.
        block = (
            f'<evidence source="{_attr(item.source_url)}">\n{text.replace("</evidence", "</ evidence")}\n</evidence>'
        )
        parts.append(block)
        sources.append(item.source_url)
        if item.origin == OWN_PAGES:
            own.append(normalise_for_grounding(text))
        used += len(block)
    return EvidencePack("\n".join(parts), tuple(sources), tuple(removed), "\n".join(own))


def _attr(value: str) -> str:
    return value.replace('"', "%22").replace("<", "%3C").replace(">", "%3E")[:300]


def normalise_for_grounding(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def is_grounded(quote: str, pack: EvidencePack) -> bool:
    """A value counts only if the quote it rests on appears verbatim (modulo whitespace and case) in the evidence."""
    needle = normalise_for_grounding(quote)
    return len(needle) >= 3 and needle in normalise_for_grounding(pack.text)


def from_own_pages(quote: str, pack: EvidencePack) -> bool:
    """Whether the quote is in the visible text of the company's own pages (not a snippet, not another site)."""
    needle = normalise_for_grounding(quote)
    return len(needle) >= 3 and any(needle in block for block in pack.own.split("\n"))
