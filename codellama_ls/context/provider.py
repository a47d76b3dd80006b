"""The context block of a request: definitions of the names at the cursor, then similar code.

Usage (the server, per completion request, before building the prompt)::

    provider = ContextProvider(index)
    block = provider.context(uri, language_id, cursor.prefix, cursor.suffix, budget_tokens, tokenizer)
    prompt = build_prompt(tok, cursor.prefix, cursor.suffix, ..., context=block)

What goes in, within ``budget_tokens`` (the ``contextTokens`` setting; 0 turns it off):

1. **Definitions.** The identifiers on the cursor line and the lines just above it (nearest
   first) that the file imports from another workspace file, or that its own package (Go),
   its ``#include`` s (C/C++) or star imports provide, resolved through :mod:`.imports` to a
   :class:`.definitions.Outline`. A name a module only re-exports is followed to where it
   is defined. Each gets its head (doc comment, signature, docstring) first; then, in order of
   priority, the whole definition, or the signatures of its members when the whole does not
   fit, or as many following lines as fit, always whole lines.
2. **Similar code** from other open and recently edited documents of the same language
   family, for what definitions leave (:mod:`.similar`).

Rendering (:mod:`.render`): similar snippets first, then definitions with the most important
one last (nearest the code), then the edited file's path line.

**Stability.** The local engine reuses the keys/values of the previous prompt's longest
common token prefix; with ``spm`` typing only appends to the prompt as long as the block stays
the same. So the block of a document is kept, and only rebuilt when

- the cursor is more than ``move_lines`` lines from where the block was made,
- a name near the cursor resolves to a definition the block was not made with (names that
  go away do not count, so deleting and retyping a word does not flap),
- a file the block shows has a newer parse, or a file that was not parsed yet when the block
  was made has been parsed since,
- the budget, the language or the tokenizer changed.

**Cost.** Nothing here waits for the index: what is not parsed yet is left out (and parsed in
the background). A kept block costs one scan of the names near the cursor and a few dictionary
lookups; a rebuilt one tokenizes only lines it has not seen (a per-line count cache).
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from codellama_ls.context.analysis import Analysis
from codellama_ls.context.block import EMPTY, ContextBlock, ContextEntry
from codellama_ls.context.definitions import Outline
from codellama_ls.context.files import looks_secret
from codellama_ls.context.imports import Binding
from codellama_ls.context.index import WorkspaceIndex
from codellama_ls.context.languages import comment_prefix, family, is_parsed, language_of_id
from codellama_ls.context.names import cursor_chains, identifier_set, last_lines
from codellama_ls.context.render import comment_line, header, render_lines
from codellama_ls.context.similar import SimilarCode, Source
from codellama_ls.documents import uri_to_path
from codellama_ls.prompt.tokens import PromptTokenizer as Tokenizer


@dataclass(frozen=True)
class Found:
    """A definition found for a name near the cursor."""

    key: str
    analysis: Analysis
    definition: Outline
    symbol: str  # as written at the cursor


@dataclass
class _Snippet:
    key: str
    lines: list[str]  # the source lines (of one parse)
    shown: list[int]
    reason: str
    symbol: str | None = None
    score: float | None = None
    cost: int = 0
    version: int | None = None  # similar code: the version of the document's parse (or text) used
    parsed: bool = False  # similar code from an open document's parse (else a closed document's text)


@dataclass
class _State:
    block: ContextBlock
    anchor: int  # cursor line when the block was made
    budget: int
    language: str | None
    tokenizer: int
    resolved: frozenset[tuple[str, int]]  # (file, line) of every definition found then
    parses: dict[str, int] = field(default_factory=dict)  # file -> version of the parse a definition came from
    texts: dict[str, int] = field(default_factory=dict)  # document -> version of the text similar code came from
    pending: frozenset[str] = frozenset()  # files not parsed yet then


class ContextProvider:
    """Builds (and keeps, while it stays valid) the context block of each document."""

    def __init__(
        self,
        index: WorkspaceIndex,
        *,
        move_lines: int = 24,
        names_lines: int = 3,
        query_lines: int = 20,
        max_definitions: int = 6,
        head_lines: int = 12,
        similar: SimilarCode | None = None,
        min_similar_tokens: int = 48,
        max_states: int = 64,
    ) -> None:
        self.index = index
        self.move_lines = move_lines
        self.names_lines = names_lines
        self.query_lines = query_lines
        self.max_definitions = max_definitions
        self.head_lines = head_lines
        self.similar = similar or SimilarCode()
        self.min_similar_tokens = min_similar_tokens
        self.max_states = max_states
        self._states: OrderedDict[str, _State] = OrderedDict()
        self._counts: dict[str, int] = {}
        self._count_tok: int = 0
        self.stats = {"requests": 0, "rebuilt": 0, "trimmed": 0}
        self.reasons: dict[str, int] = {}  # why blocks were rebuilt
        self._headers: dict[tuple[str, str], str] = {}
        self._usable_cache: dict[str, bool] = {}
        self._usable_generation = -1

    def forget(self, uri: str) -> None:
        """The document was closed."""
        self._states.pop(uri, None)

    # -- the request -----------------------------------------------------------------------
    def context(
        self, uri: str, language_id: str, prefix: str, suffix: str, budget_tokens: int, tokenizer: Tokenizer
    ) -> ContextBlock:
        """The block for a cursor between ``prefix`` and ``suffix`` (LF text), within ``budget_tokens``."""
        self.stats["requests"] += 1
        path = uri_to_path(uri)
        key = path or uri
        lang = language_of_id(language_id, path)
        comment = comment_prefix(lang)
        if budget_tokens < 16 or comment is None:
            return EMPTY
        line = prefix.count("\n")
        found, pending = self.definitions(key, path, lang, prefix, suffix)
        state = self._states.get(uri)
        reason = "new place" if state is None else self._stale(state, line, budget_tokens, lang, tokenizer, found)
        if reason is None:
            assert state is not None
            self._states.move_to_end(uri)
            return state.block
        self.stats["rebuilt"] += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        block, parses, texts = self._build(key, lang, comment, prefix, found, budget_tokens, tokenizer)
        self._states[uri] = _State(
            block,
            line,
            budget_tokens,
            lang,
            id(tokenizer),
            frozenset((f.key, f.definition.line) for f in found),
            parses,
            texts,
            frozenset(pending),
        )
        self._states.move_to_end(uri)
        while len(self._states) > self.max_states:
            self._states.popitem(last=False)
        return block

    def _stale(
        self, state: _State, line: int, budget: int, lang: str | None, tokenizer: Tokenizer, found: list[Found]
    ) -> str | None:
        """Why the kept block of a document no longer fits the request (None: it still does)."""
        if (state.budget, state.language, state.tokenizer) != (budget, lang, id(tokenizer)):
            return "settings"
        if abs(line - state.anchor) > self.move_lines:
            return "moved"
        if any((f.key, f.definition.line) not in state.resolved for f in found):
            return "new name"
        for key, version in state.parses.items():
            analysis = self.index.analysis(key)
            if analysis is None or analysis.version != version:
                return "file changed"
        for key, version in state.texts.items():
            if self._text_version(key) != version:
                return "file changed"
        if any(self.index.analysis(key) is not None for key in state.pending):
            return "parsed"
        return None

    def _text_version(self, key: str) -> int | None:
        doc = self.index.document(self.index.uri_of(key))
        if doc is None:
            doc = self.index.recent(self.index.uri_of(key))
        return doc.version if doc is not None else None

    # -- definitions -----------------------------------------------------------------------
    def definitions(
        self, key: str, path: str | None, lang: str | None, prefix: str, suffix: str
    ) -> tuple[list[Found], set[str]]:
        """Definitions of the names near the cursor (nearest first), and files not parsed yet."""
        pending: set[str] = set()
        if path is None or not is_parsed(lang):
            return [], pending
        assert lang is not None
        own = self.index.analysis(key)
        if own is None:
            pending.add(key)
            return [], pending
        self.index.resolver.clear(self.index.generation)
        bindings = {b.local: b for b in own.bindings if b.local != "*"}
        stars = [b for b in own.bindings if b.name == "*"]
        found: list[Found] = []
        seen: set[tuple[str, int]] = set()
        for chain in cursor_chains(prefix, suffix, self.names_lines):
            hit = self._resolve(lang, path, own, chain, bindings, stars, pending)
            if hit is None or hit.key == key:
                continue
            ident = (hit.key, hit.definition.line)
            if ident not in seen:
                seen.add(ident)
                found.append(hit)
                if len(found) >= self.max_definitions:
                    break
        return found, pending

    def _resolve(
        self,
        lang: str,
        path: str,
        own: Analysis,
        chain: tuple[str, ...],
        bindings: dict[str, Binding],
        stars: list[Binding],
        pending: set[str],
    ) -> Found | None:
        resolver = self.index.resolver
        head = chain[0]
        binding = bindings.get(head)
        if binding is not None:
            if binding.name is None:
                return self._in_module(lang, path, binding.module, chain[1:], pending)
            sub = resolver.submodule(lang, binding.module, binding.name)
            if sub is not None and resolver.module_files(lang, path, sub):
                return self._in_module(lang, path, sub, chain[1:], pending)
            return self._lookup(lang, path, binding.module, binding.name, head, pending, 0)
        if head in own.symbols:
            return None  # defined in the file itself: the model sees it
        if lang == "go":
            for sibling in resolver.package_files(path):
                analysis = self.index.analysis(sibling)
                if analysis is None:
                    pending.add(sibling)
                elif analysis.package == own.package and head in analysis.symbols:
                    return Found(sibling, analysis, analysis.symbols[head], head)
        # C++ names a type by its namespace (`geo::Circle`): the includes are searched for each part.
        names = chain if lang in ("c", "cpp") else chain[:1]
        for name in names:
            for star in stars:
                hit = self._lookup(lang, path, star.module, name, name, pending, 1)
                if hit is not None:
                    return hit
        return None

    def _in_module(self, lang: str, path: str, module: str, rest: tuple[str, ...], pending: set[str]) -> Found | None:
        resolver = self.index.resolver
        while rest:
            sub = resolver.submodule(lang, module, rest[0])
            if sub is None or not resolver.module_files(lang, path, sub):
                break
            module, rest = sub, rest[1:]
        if not rest:
            return None
        return self._lookup(lang, path, module, rest[0], rest[0], pending, 0)

    def _lookup(
        self, lang: str, path: str, module: str, name: str, symbol: str, pending: set[str], depth: int
    ) -> Found | None:
        """``name`` defined in ``module`` or re-exported by it (two hops at most)."""
        resolver = self.index.resolver
        for target in resolver.module_files(lang, path, module):
            analysis = self.index.analysis(target)
            if analysis is None:
                pending.add(target)
                continue
            definition = analysis.symbols.get(name)
            if definition is not None:
                return Found(target, analysis, definition, symbol)
            if depth >= 2:
                continue
            for binding in analysis.bindings:
                if binding.local == name and binding.name not in (None, "*"):
                    assert binding.name is not None
                    hit = self._lookup(
                        analysis.language, target, binding.module, binding.name, symbol, pending, depth + 1
                    )
                    if hit is not None:
                        return hit
            for binding in analysis.bindings:
                if binding.name == "*" and lang != "c" and lang != "cpp":
                    hit = self._lookup(analysis.language, target, binding.module, name, symbol, pending, depth + 1)
                    if hit is not None:
                        return hit
        return None

    # -- building the block ----------------------------------------------------------------
    def _build(
        self,
        key: str,
        lang: str | None,
        comment: str,
        prefix: str,
        found: list[Found],
        budget: int,
        tok: Tokenizer,
    ) -> tuple[ContextBlock, dict[str, int], dict[str, int]]:
        count = self._counter(tok)
        footer = self._header(comment, key)
        left = budget - count(footer) - 2  # 2: the block's first line also gets the implied leading space
        parses: dict[str, int] = {}
        texts: dict[str, int] = {}
        defs: list[_Snippet] = []
        heads: list[tuple[_Snippet, Outline]] = []
        for hit in found:  # 1. every definition's head, nearest name first
            d = hit.definition
            snippet = _Snippet(hit.key, hit.analysis.lines, [], "definition", hit.symbol)
            head_end = min(d.head_end, d.start + self.head_lines - 1, len(snippet.lines) - 1)
            rows = list(range(d.start, head_end + 1))
            if d.line not in rows:
                rows = [d.line]
            cost = self._cost(comment, snippet, rows, count)
            if cost > left and len(rows) > 1:
                rows = list(range(d.start, d.line + 1))[-2:]
                cost = self._cost(comment, snippet, rows, count)
            if cost > left:
                continue
            snippet.shown, snippet.cost = rows, cost
            left -= cost
            defs.append(snippet)
            heads.append((snippet, d))
            parses[hit.key] = hit.analysis.version
        for n, (snippet, d) in enumerate(heads):  # 2. more of each, a fair share at a time
            share = left // (len(heads) - n)
            spent = self._extend(comment, snippet, d, share, count)
            left -= spent
        similar: list[_Snippet] = []
        if left >= self.min_similar_tokens:  # 3. similar code, with what is left
            similar = self._similar(key, lang, comment, prefix, defs, left, count)
            for snippet in similar:
                assert snippet.version is not None
                (parses if snippet.parsed else texts)[snippet.key] = snippet.version
        ordered = [*reversed(similar), *reversed(self._merge(defs))]
        while ordered:
            block = self._render(comment, footer, ordered, tok, count)
            if block.tokens <= budget:
                return block, parses, texts
            ordered.pop(0)  # cannot happen with line-wise tokenization; stay inside the budget anyway
            self.stats["trimmed"] += 1
        return EMPTY, parses, texts

    @staticmethod
    def _merge(defs: list[_Snippet]) -> list[_Snippet]:
        """One snippet per file (one path line), at the place of its most important definition."""
        merged: list[_Snippet] = []
        by_key: dict[str, _Snippet] = {}
        for snippet in defs:
            first = by_key.get(snippet.key)
            if first is None:
                by_key[snippet.key] = snippet
                merged.append(snippet)
            else:
                first.shown = sorted({*first.shown, *snippet.shown})
                first.symbol = f"{first.symbol}, {snippet.symbol}"
        return merged

    def _render(
        self, comment: str, footer: str, ordered: list[_Snippet], tok: Tokenizer, count: Callable[[str], int]
    ) -> ContextBlock:
        lines: list[str] = []
        entries: list[ContextEntry] = []
        for snippet in ordered:
            part = [
                self._header(comment, snippet.key),
                *render_lines(comment, snippet.lines, snippet.shown),
            ]
            lines.extend(part)
            entries.append(
                ContextEntry(
                    self.index.uri_of(snippet.key),
                    snippet.shown[0],
                    snippet.shown[-1],
                    snippet.reason,
                    sum(count(line) for line in part),
                    snippet.symbol,
                    snippet.score,
                )
            )
        lines.append(footer)
        text = "\n".join(lines) + "\n"
        return ContextBlock(text, tuple(entries), self._block_tokens(text, lines, tok, count))

    def _extend(self, comment: str, snippet: _Snippet, d: Outline, share: int, count: Callable[[str], int]) -> int:
        """Grow a definition's snippet within ``share`` tokens; the tokens spent.

        The whole definition if it fits, then members outside it (a Go type's methods, a Rust
        type's ``impl``); else the members' signatures; else the lines that follow the head.
        Lines are tokenized only until the share is used up.
        """
        if share <= 0:
            return 0
        final = len(snippet.lines) - 1
        last = min(d.end, final)
        spent = 0
        took_whole = False
        if last - d.start + 1 > len(snippet.shown):
            cost = count(self._header(comment, snippet.key))
            for row in range(d.start, last + 1):  # a whole definition has no gaps
                cost += count(comment_line(comment, snippet.lines[row]))
                if cost - snippet.cost > share:
                    break
            else:
                spent = cost - snippet.cost
                snippet.shown, snippet.cost = list(range(d.start, last + 1)), cost
                took_whole = True
        if d.members:  # member signatures in order (those outside the definition, if it is all shown)
            rows = snippet.shown
            present = set(rows)
            for first, end in d.members:
                new = [r for r in range(first, min(end, final) + 1) if r not in present]
                if not new:
                    continue
                delta = self._delta(comment, snippet.lines, rows, new, count)
                if delta > share - spent:
                    break
                spent += delta
                present.update(new)
                rows = sorted(present)
                snippet.shown, snippet.cost = rows, snippet.cost + delta
            return spent
        if took_whole:
            return spent
        row = snippet.shown[-1] + 1  # the following lines, while they fit
        while row <= last:
            extra = count(comment_line(comment, snippet.lines[row]))
            if extra > share - spent:
                break
            spent += extra
            snippet.shown.append(row)
            snippet.cost += extra
            row += 1
        return spent

    @staticmethod
    def _delta(comment: str, lines: list[str], rows: list[int], new: list[int], count: Callable[[str], int]) -> int:
        """What showing ``new`` rows besides ``rows`` (sorted) adds: their lines and the gap marks that change."""
        # From the shown row before the new ones (its own gap mark does not change; when there is
        # none, the first row has no mark in either rendering) to the shown row after them.
        lo = bisect.bisect_left(rows, new[0]) - 1
        hi = bisect.bisect_right(rows, new[-1])
        start = max(lo, 0)
        local = rows[start : hi + 1]
        before = sum(count(line) for line in render_lines(comment, lines, local)) if local else 0
        after = sum(count(line) for line in render_lines(comment, lines, sorted({*local, *new})))
        return after - before

    def _similar(
        self,
        key: str,
        lang: str | None,
        comment: str,
        prefix: str,
        defs: list[_Snippet],
        left: int,
        count: Callable[[str], int],
    ) -> list[_Snippet]:
        group = family(lang)
        query = identifier_set(last_lines(prefix, self.query_lines))
        sources: dict[str, Source] = {}
        for doc in self.index.documents(group):
            if doc.key == key or doc.key in sources or not self._usable(doc.key):
                continue
            if doc.closed:  # recently edited: its text, windows made here (and cached)
                sources[doc.key] = Source(doc.key, doc.version, doc.text.split("\n"))
                continue
            analysis = self.index.analysis(doc.key)
            if analysis is not None and analysis.windows is not None:  # else: its parse is queued
                sources[doc.key] = Source(doc.key, analysis.version, analysis.lines, analysis.windows)
        chosen: list[_Snippet] = []
        for match in self.similar.best(query, list(sources.values())):
            if left < self.min_similar_tokens:
                break
            if any(d.key == match.key and d.shown[0] <= match.end and match.start <= d.shown[-1] for d in defs):
                continue
            source = sources[match.key]
            lines = source.lines
            snippet = _Snippet(match.key, lines, [], "similar", score=match.score, version=source.version)
            snippet.parsed = source.windows is not None
            snippet.cost = count(self._header(comment, match.key))
            for row in range(match.start, match.end + 1):
                extra = count(comment_line(comment, lines[row]))
                if snippet.cost + extra > left:
                    break
                snippet.shown.append(row)
                snippet.cost += extra
            while snippet.shown and not lines[snippet.shown[-1]].strip():  # no trailing blank lines
                snippet.shown.pop()
                snippet.cost = self._cost(comment, snippet, snippet.shown, count)
            if len(snippet.shown) < 2:
                continue
            left -= snippet.cost
            chosen.append(snippet)
        return chosen

    def _usable(self, key: str) -> bool:
        """Documents: not secret-looking, and inside the rules when inside a workspace folder."""
        if self._usable_generation != self.index.generation:  # rules or files changed
            self._usable_cache.clear()
            self._usable_generation = self.index.generation
        hit = self._usable_cache.get(key)
        if hit is None:
            hit = not looks_secret(os.path.basename(key))
            if hit and os.path.isabs(key) and self.index.rules.folder_of(key) is not None:
                hit = self.index.rules.allowed(key)
            self._usable_cache[key] = hit
        return hit

    # -- tokens ----------------------------------------------------------------------------
    def _cost(self, comment: str, snippet: _Snippet, rows: list[int], count: Callable[[str], int]) -> int:
        if not rows:
            return 0
        lines = [self._header(comment, snippet.key), *render_lines(comment, snippet.lines, rows)]
        return sum(count(line) for line in lines)

    def _header(self, comment: str, key: str) -> str:
        """A snippet's path line (cached: relative paths cost a few system calls)."""
        hit = self._headers.get((comment, key))
        if hit is None:
            hit = self._headers[(comment, key)] = header(comment, self.index.relpath(key))
            if len(self._headers) > 10_000:
                self._headers.clear()
        return hit

    def _counter(self, tok: Tokenizer) -> Callable[[str], int]:
        """Tokens of a line inside the block, its newline included (cached per line)."""
        if self._count_tok != id(tok) or len(self._counts) > 200_000:
            self._counts = {}
            self._count_tok = id(tok)
        counts = self._counts

        def count(line: str) -> int:
            hit = counts.get(line)
            if hit is None:
                hit = counts[line] = len(tok.encode_infill(line)) + 1
            return hit

        return count

    def _block_tokens(self, text: str, lines: list[str], tok: Tokenizer, count: Callable[[str], int]) -> int:
        """The block's exact length at the start of a prompt."""
        if self._splits(tok):
            return len(tok.encode(lines[0] + "\n")) + sum(count(line) for line in lines[1:])
        return len(tok.encode(text))

    @staticmethod
    def _splits(tok: Tokenizer) -> bool:
        """Whether ``tok`` provably tokenizes line by line (then lengths add up exactly)."""
        return tok.newline_id is not None
