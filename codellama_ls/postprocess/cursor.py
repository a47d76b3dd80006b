"""What the cursor's surroundings say (``Context``), what a suggestion is (``Suggestion``),
and the ``Cutter`` that the cutting steps and ``stop_check`` share.

Every step asks the same questions about the cursor (mid-line or not, in a comment, in a
string, which closers follow it, how the document indents), so they are answered once, here,
from the language table (``codellama_ls.languages``) and cached on the ``Context``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

from codellama_ls.documents import Cursor
from codellama_ls.languages import LANGUAGES
from codellama_ls.lines import DEFAULT_INDENT_WIDTH, detect_indent
from codellama_ls.postprocess.text import _CLOSE, _FENCE, _OPEN, _QUOTES, _echo_key, _open_string

_PAIR = {")": "(", "]": "[", "}": "{"}
_TAIL_PUNCT = ";,:"  # may follow closing brackets at the end of a line: `foo(|);`
_STYLE_LINES = 400  # lines around the cursor used to detect the indentation style
# Indentation unit (in spaces) when the document has no indented line yet; languages that indent with tabs.
_DEFAULT_UNIT = {i: len(lang.indent) for lang in LANGUAGES for i in lang.ids if lang.indent and lang.indent != "\t"}
_TAB_LANGUAGES = tuple(i for lang in LANGUAGES for i in lang.ids if lang.indent == "\t")
# Line comments by language id; a language not listed (or with other markers) gets both.
_HASH_COMMENTS = tuple(i for lang in LANGUAGES for i in lang.ids if lang.comments == ("#",))
_SLASH_COMMENTS = tuple(i for lang in LANGUAGES for i in lang.ids if lang.comments == ("//",))
# Languages with no line comment (`#` is a Markdown heading, a CSS id).
_NO_LINE_COMMENTS = tuple(i for lang in LANGUAGES for i in lang.ids if not lang.comments)
_MARKDOWN = ("markdown", "mdx")
# Quotes that open a string on one line; Rust's `'` is mostly a lifetime, Go's and JS's backtick a string.
_LINE_QUOTES = {"rust": '"', "go": "\"'`", "javascript": "\"'`", "javascriptreact": "\"'`", "typescript": "\"'`"}
_LINE_QUOTES["typescriptreact"] = _LINE_QUOTES["typescript"]


@dataclass(frozen=True)
class Context:
    """The cursor's surroundings (LF line endings), the document's language id, and whether
    decoding stopped at the token limit (``maxNewTokens``) rather than where the model ended."""

    prefix: str
    suffix: str
    language_id: str = ""
    truncated: bool = False

    @classmethod
    def from_cursor(cls, cursor: Cursor) -> Context:
        return cls(cursor.prefix, cursor.suffix, cursor.language_id)

    @cached_property
    def line_prefix(self) -> str:
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @cached_property
    def line_suffix(self) -> str:
        nl = self.suffix.find("\n")
        return self.suffix if nl < 0 else self.suffix[:nl]

    @cached_property
    def mode(self) -> str:
        """``single`` (code after the cursor), ``closers`` (only `)]}`, quotes, `;` after it) or ``multi``."""
        rest = self.line_suffix.strip()
        if not rest:
            return "multi"
        if all(c in _CLOSE or c in _QUOTES or c in _TAIL_PUNCT or c.isspace() for c in rest):
            return "closers"
        return "single"

    @property
    def single_line(self) -> bool:
        """Mid-line with code after the cursor: only the rest of this line makes sense."""
        return self.mode == "single"

    @cached_property
    def need(self) -> str:
        """The brackets and quotes after the cursor that a suggestion must close (closers mode)."""
        if self.mode != "closers":
            return ""
        return "".join(c for c in self.line_suffix if c in _CLOSE or c in _QUOTES)

    @cached_property
    def open_quote(self) -> str | None:
        """The quote of a string the cursor is inside, when the rest of the line closes it."""
        best, where = None, -1
        closing = self.need if self.mode == "closers" else self.line_suffix if self.mode == "single" else ""
        for q in set(closing) & set(_QUOTES):
            if _unescaped(self.line_prefix, q) % 2 == 1 and self.line_prefix.rfind(q) > where:
                best, where = q, self.line_prefix.rfind(q)
        return best

    @cached_property
    def in_line_comment(self) -> bool:
        """Is the cursor inside a line comment (after ``#`` or ``//``, not in a string)?"""
        line = self.line_prefix
        lang = self.language_id
        if lang in _NO_LINE_COMMENTS:
            return False
        markers = ("#",) if lang in _HASH_COMMENTS else ("//",) if lang in _SLASH_COMMENTS else ("#", "//")
        if not any(m in line for m in markers):
            return False
        quotes = _LINE_QUOTES.get(lang, "\"'")
        in_str: str | None = None
        i = 0
        while i < len(line):
            ch = line[i]
            if in_str:
                if ch == "\\":
                    i += 1
                elif ch == in_str:
                    in_str = None
            elif ch in quotes:
                in_str = ch
            elif line.startswith(markers, i):
                return True
            i += 1
        return False

    @cached_property
    def fences(self) -> str:
        """What a Markdown fence line (```` ``` ````) in the output is here: ``code`` (not code:
        the answer ends before it), ``text`` (Markdown prose, or inside a multi-line string:
        content), ``block`` (inside a fenced block of a Markdown document: it closes the block)."""
        if self.language_id in _MARKDOWN:
            inside = sum(1 for line in self.prefix.split("\n") if _FENCE.match(line)) % 2 == 1
            return "block" if inside else "text"
        return "text" if _open_string(self.prefix, self.language_id) else "code"

    @cached_property
    def next_lines(self) -> list[str]:
        """The lines after the cursor line (a window, enough for the filters)."""
        nl = self.suffix.find("\n")
        if nl < 0:
            return []
        return self.suffix[nl + 1 :].split("\n", _STYLE_LINES)[:_STYLE_LINES]

    @cached_property
    def next_nonblank(self) -> list[str]:
        return [line.rstrip() for line in self.next_lines if line.strip()]

    @cached_property
    def echo_target(self) -> tuple[int, str] | None:
        """The next non-blank line after the cursor line, as ``_echo_key`` sees it."""
        for line in self.next_lines:
            if line.strip():
                return _echo_key(line)
        return None

    @cached_property
    def indent_style(self) -> tuple[bool | None, int]:
        """(uses tabs, spaces per level); tabs is None when nothing near the cursor is indented."""
        before = self.prefix[-_STYLE_LINES * 80 :].split("\n")[-_STYLE_LINES:]
        style = detect_indent([*before, *self.next_lines], _DEFAULT_UNIT.get(self.language_id, DEFAULT_INDENT_WIDTH))
        if style.tabs is None and self.language_id in _TAB_LANGUAGES:
            return True, style.width
        return style.tabs, style.width


@dataclass(frozen=True)
class Suggestion:
    """Text to insert at the cursor (LF), replacing ``replace`` characters after it on its line."""

    text: str
    replace: int = 0


Step = Callable[[Suggestion, Context], Suggestion]
# Where the suggestion ends in the text generated so far (``final``: the text is complete);
# ``None`` while undecided. A decision never changes when more text arrives.
Finder = Callable[[str, Context, bool], "int | None"]
Head = Callable[[str, Context], str]


class Cutter:
    """A step that only cuts the text, where its finder says; ``stop_check`` asks the finder too."""

    def __init__(self, find: Finder, doc: str, *, partial: bool = False, head: Head | None = None) -> None:
        self.find = find
        self.partial = partial  # decides on the unfinished last line too (else on whole lines only)
        # Rewrites the start of the text before this finder and every later one (``fence``
        # drops an opening fence line); ``stop_check`` applies it too, so finders see the same text.
        self.head = head
        self.__name__ = find.__name__.strip("_").removesuffix("_end")
        self.__doc__ = doc

    def __call__(self, s: Suggestion, ctx: Context) -> Suggestion:
        text = s.text if self.head is None else self.head(s.text, ctx)
        end = self.find(text, ctx, True)
        return replace(s, text=text if end is None else text[:end])

    def __repr__(self) -> str:
        return self.__name__


def _unescaped(text: str, quote: str) -> int:
    count, i = 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        count += text[i] == quote
        i += 1
    return count


def _extras(text: str, ctx: Context) -> list[tuple[int, str]]:
    """Closing brackets and quotes in ``text`` that close something opened before the cursor."""
    out: list[tuple[int, str]] = []
    stack: list[str] = []
    in_str = ctx.open_quote
    outer = in_str is not None
    i = 0
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == "\\":
                i += 2
                continue
            if ch == in_str:
                if outer:
                    out.append((i, ch))
                in_str, outer = None, False
            elif ch == "\n" and in_str != "`":
                in_str, outer = None, False
        elif ch in _QUOTES:
            in_str = ch
        elif ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if stack and stack[-1] == _PAIR[ch]:
                stack.pop()
            else:
                out.append((i, ch))
        i += 1
    return out
