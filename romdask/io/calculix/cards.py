"""Lines and cards of a CalculiX / Abaqus input deck, read as CalculiX 2.20 reads them.

CalculiX (``readinput.c``) drops blank lines and ``**`` comment lines anywhere, removes every
blank and tab of the other lines, upper-cases everything but file names, and opens
``*INCLUDE,INPUT=`` files relative to the folder it runs in (the deck's). The functions here do
the same, keep each line's file and number for error messages, and give the ``** romdask
name=`` comments of :func:`romdask.hifi.calculix.write_deck` to the card that follows them.

A data line ending with a comma is complete as far as these functions go: the readers that
expect a fixed number of items (``*ELEMENT``: the nodes of one element) read on into the next
lines, as CalculiX does; list cards (``*NSET``, ``*ELSET``, ``*AMPLITUDE``) treat every line as
a list of its own, which is the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from romdask.io.run import ReaderError

__all__ = [
    "NAME_COMMENT",
    "Card",
    "DeckLine",
    "deck_cards",
    "deck_lines",
    "keyword",
    "parameters",
    "parse_float",
    "parse_int",
    "tokens",
]

logger = logging.getLogger(__name__)

#: comment line of :func:`romdask.hifi.calculix.write_deck` naming the next load card
NAME_COMMENT = "** romdask name="

#: keywords of several words, in the spelling used in romdask's tables and messages (CalculiX
#: itself removes the blanks: ``*NODEFILE`` and ``*NODE FILE`` are the same card)
_SPACED = (
    "*NODE FILE", "*EL FILE", "*NODE PRINT", "*EL PRINT", "*NODE OUTPUT", "*ELEMENT OUTPUT",
    "*SOLID SECTION", "*CYCLIC HARDENING", "*END STEP", "*FILE FORMAT", "*SECTION PRINT",
    "*TIME POINTS", "*CONTACT FILE", "*CONTACT PRINT", "*CONTACT OUTPUT", "*INITIAL CONDITIONS",
    "*SHELL SECTION", "*BEAM SECTION", "*MEMBRANE SECTION", "*SURFACE INTERACTION",
    "*SURFACE BEHAVIOR", "*CONTACT PAIR", "*DEFORMATION PLASTICITY", "*RATE DEPENDENT",
    "*SPECIFIC HEAT", "*HEAT TRANSFER", "*MODAL DYNAMIC", "*STEADY STATE DYNAMICS",
    "*USER MATERIAL", "*PHYSICAL CONSTANTS", "*DISTRIBUTING COUPLING", "*MODEL CHANGE",
    "*CHANGE MATERIAL", "*NO ANALYSIS", "*SUBMODEL", "*COUPLED TEMPERATURE-DISPLACEMENT",
)  # fmt: skip
_CANONICAL = {k.replace(" ", ""): k for k in _SPACED}
#: parameters whose values are file names (not upper-cased, as in CalculiX)
_FILE_KEYS = ("INPUT", "FILE", "FILENAME", "OUTPUT", "MASSFILE", "STIFFNESSFILE")


@dataclass(frozen=True)
class DeckLine:
    """One significant line of a deck: its file, 1-based line number and text (stripped)."""

    path: Path
    number: int
    text: str

    def error(self, problem: str) -> ReaderError:
        """A :class:`~romdask.io.run.ReaderError` naming this line's file and number."""
        return ReaderError(self.path, f"line {self.number}: {problem}")

    @property
    def is_keyword(self) -> bool:
        return self.text.startswith("*") and not self.text.startswith("**")

    @property
    def is_comment(self) -> bool:
        return self.text.startswith("**")


def _compact(text: str) -> str:
    return "".join(text.split())


def keyword(text: str) -> str:
    """The keyword of a keyword line, upper-case, blanks removed (``*Node File`` ->
    ``*NODE FILE``: the spelling of :data:`_SPACED` for keywords of several words)."""
    compact = _compact(text.split(",", 1)[0]).upper()
    return _CANONICAL.get(compact, compact)


def parameters(line: DeckLine) -> dict[str, str]:
    """``KEY=value`` options of a keyword line: keys and values upper-case with blanks removed
    (``time = Total Time`` -> ``{"TIME": "TOTALTIME"}``), file names keep their case (quotes
    stripped); options without a value map to ``""``."""
    out = {}
    for item in line.text.split(",")[1:]:
        key, _, value = item.partition("=")
        key = _compact(key).upper()
        if not key:
            continue
        value = _compact(value)
        out[key] = value.strip('"') if key in _FILE_KEYS else value.upper()
    return out


def tokens(line: DeckLine) -> list[str]:
    """Comma-separated items of a data line, blanks removed, trailing empty items dropped (the
    case is kept for messages: compare names upper-cased, as CalculiX does)."""
    items = _compact(line.text).split(",")
    while items and not items[-1]:
        items.pop()
    return items


def parse_int(line: DeckLine, token: str, what: str) -> int:
    """An integer item (``12``, ``12.``, ``1.2E1``), or a ReaderError naming ``what`` and the line."""
    try:
        return int(token)
    except ValueError:
        value = _float_or_none(token)
        if value is None or not np.isfinite(value):
            raise line.error(f"cannot read {what} {token!r}") from None
        if value != int(value):
            raise line.error(f"{what} {token!r} is not an integer") from None
        return int(value)


def _float_or_none(token: str) -> float | None:
    try:
        return float(token.upper().replace("D", "E"))  # Fortran's 1.D3 as CalculiX reads it
    except ValueError:
        return None


def parse_float(line: DeckLine, token: str, what: str) -> float:
    """A finite real item (empty = 0, Fortran ``D`` exponents accepted), or a ReaderError."""
    value = 0.0 if not token else _float_or_none(token)
    if value is None:
        raise line.error(f"cannot read {what} {token!r}")
    if not np.isfinite(value):
        raise line.error(f"non-finite {what} {token!r}")
    return value


def _include(line: DeckLine, root: Path) -> Path:
    name = parameters(line).get("INPUT")
    if not name:
        raise line.error("*INCLUDE without INPUT=")
    child = Path(name)
    if child.is_absolute():
        candidates = [child]
    else:  # CalculiX opens it relative to the folder it runs in (the deck's), romdask also
        candidates = [root / child, line.path.parent / child]  # relative to the including file
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise line.error(f"*INCLUDE file {name} not found (looked for {', '.join(str(c) for c in candidates)})")


def deck_lines(path: str | Path, *, comments: bool = False) -> Iterator[DeckLine]:
    """The significant lines of a deck, ``*INCLUDE`` files expanded in place.

    Parameters
    ----------
    path : the deck; included files are looked for relative to its folder (where CalculiX runs),
        then relative to the including file
    comments : also yield the ``**`` comment lines

    Raises
    ------
    ReaderError
        Unreadable files, ``*INCLUDE`` cycles, missing included files (file and line named).
    """
    path = Path(path)
    yield from _lines(path, path.parent, (), comments)


def _lines(path: Path, root: Path, stack: tuple[Path, ...], comments: bool) -> Iterator[DeckLine]:
    resolved = path.resolve()
    if resolved in stack:
        raise ReaderError(path, f"*INCLUDE cycle: {' -> '.join(str(p) for p in stack + (resolved,))}")
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReaderError(path, f"cannot open the input deck ({exc.strerror})") from None
    with f:
        for number, text in enumerate(f, 1):
            text = text.strip()
            if not text or (text.startswith("**") and not comments):
                continue
            line = DeckLine(path, number, text)
            if line.is_keyword and keyword(text) == "*INCLUDE":
                yield from _lines(_include(line, root), root, stack + (resolved,), comments)
            else:
                yield line


@dataclass
class Card:
    """A keyword line with its options and data lines.

    Attributes
    ----------
    keyword : as :func:`keyword` gives it
    params : as :func:`parameters` gives them
    line : the keyword line
    hint : the name of a ``** romdask name=`` comment just before the card, or None
    rows : (line, tokens) of the data lines (empty when the reader skipped them)
    """

    keyword: str
    params: dict[str, str]
    line: DeckLine
    hint: str | None = None
    rows: list[tuple[DeckLine, list[str]]] = field(default_factory=list)


def deck_cards(path: str | Path, *, skip_rows: Callable[[str], bool] = lambda keyword: False) -> list[Card]:
    """The cards of a deck in order (``*INCLUDE`` expanded; not the ``*INCLUDE`` cards).

    Parameters
    ----------
    path : the deck
    skip_rows : ``skip_rows(keyword)`` True: do not keep that card's data lines (e.g. the
        mesh cards, read by :func:`romdask.io.calculix.read_inp`, to save memory)

    Raises
    ------
    ReaderError
        As :func:`deck_lines`.
    """
    cards: list[Card] = []
    hint: str | None = None
    keep = False
    for line in deck_lines(path, comments=True):
        if line.is_comment:
            if line.text.lower().startswith(NAME_COMMENT):
                hint = line.text[len(NAME_COMMENT):].strip()
            continue
        if line.is_keyword:
            card = Card(keyword(line.text), parameters(line), line, hint)
            hint = None
            keep = not skip_rows(card.keyword)
            cards.append(card)
        elif not cards:
            logger.warning("%s line %d: data line before the first keyword line ignored", line.path, line.number)
        elif keep:
            cards[-1].rows.append((line, tokens(line)))
    return cards
