"""Identifiers in code, without parsing: what is near the cursor and what a window of code uses.

A lexer, not a parser: it finds identifier-shaped words and the ``a.b`` / ``a::b`` chains
they form. Words inside strings and comments count too, which costs nothing here: a word
only matters if the file imports it (definitions) or another file uses it (similarity).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_CHAIN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:[ \t]*(?:\.|::|->)[ \t]*[A-Za-z_$][A-Za-z0-9_$]*)*")
_SEPARATORS = re.compile(r"[ \t]*(?:\.|::|->)[ \t]*")

# Words every file of a language uses: they say nothing about which code is similar.
KEYWORDS = frozenset(
    """
    and as assert async await break case catch class const continue def default del do elif else enum
    except export extends false final finally fn for from func function go if impl implements import in
    interface is let match mod mut new nil none not null or package pass pub raise return self static
    struct super switch this throw true try type typedef use var void while with yield int char float
    double bool long unsigned signed sizeof string str dict list print len range
    """.split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def identifier_set(text: str) -> frozenset[str]:
    """The distinctive identifiers of a piece of code (keywords and one-letter names left out)."""
    return frozenset(w for w in _WORD.findall(text) if len(w) > 1 and w.lower() not in KEYWORDS)


def last_lines(text: str, n: int) -> str:
    """The last ``n`` lines of ``text`` (the partial last line counts as one)."""
    pos = len(text)
    for _ in range(n):
        pos = text.rfind("\n", 0, pos)
        if pos < 0:
            return text
    return text[pos + 1 :]


def cursor_chains(prefix: str, suffix: str, lines_above: int = 3) -> list[tuple[str, ...]]:
    """Name chains (``("st", "Style")`` for ``st.Style``) on the cursor line and the lines above.

    Nearest to the cursor first: the text before the cursor backwards, then the rest of the
    cursor line. Keywords are left out.
    """
    before = last_lines(prefix, lines_above + 1)
    end = suffix.find("\n")
    after = suffix if end < 0 else suffix[:end]
    chains: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    for text, backwards in ((before, True), (after, False)):
        found = [tuple(_SEPARATORS.split(m.group(0))) for m in _CHAIN.finditer(text)]
        for chain in reversed(found) if backwards else found:
            if chain[0] in KEYWORDS and len(chain) == 1:
                continue
            if chain not in seen:
                seen.add(chain)
                chains.append(chain)
    return chains
