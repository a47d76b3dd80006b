"""The instruction each action sends: short, one task, the code in a fenced block with its language tag.

Each asks for one fenced block and says what it must hold, because the answer is cut out of that
block; asking for only the documentation (or only the tests) keeps answers short, and the
extraction still copes when a model repeats the code anyway.
"""

from __future__ import annotations

from codellama_ls.actions.syntax import DISPLAY_NAMES, Source, Target
from codellama_ls.actions.text import reindent
from codellama_ls.prompt.chat import Message

_TAGS = {
    "python": "python",
    "javascript": "javascript",
    "typescript": "typescript",
    "tsx": "tsx",
    "go": "go",
    "rust": "rust",
}


def fence(src: Source, code: str) -> str:
    return f"```{_TAGS[src.lang]}\n{code}\n```"


def target_code(src: Source, target: Target) -> str:
    """The definition's lines, doc comment and decorators included, moved to indentation 0."""
    lines = src.lines[target.first_line : target.end_line + 1]
    return "\n".join(reindent(lines, "", src.unit))


def _what(src: Source, target: Target) -> str:
    kind = {"item": "item", "class": "class", "method": "method"}.get(target.kind, "function")
    if src.lang == "go" and target.kind == "item":
        kind = "type"
    return f"{DISPLAY_NAMES[src.lang]} {kind} `{target.name}`"


def docstring_messages(src: Source, target: Target) -> list[Message]:
    tag = _TAGS[src.lang]
    form = {
        "python": "a docstring (a triple-quoted string)",
        "go": f"a Go doc comment (`//` lines that begin with `{target.name}`)",
        "rust": "a Rust doc comment (`///` lines)",
    }.get(src.lang, "a JSDoc comment (`/** ... */`, with @param and @returns)")
    ask = (
        f"Write {form} for the {_what(src, target)} below. Reply with only the "
        f"{'docstring' if src.lang == 'python' else 'comment'} in one ```{tag} block; do not repeat the code."
    )
    return [Message("user", f"{ask}\n\n{fence(src, target_code(src, target))}")]


def tests_messages(src: Source, target: Target, module: str, name: str, framework: str) -> list[Message]:
    tag = _TAGS[src.lang]
    what = _what(src, target)
    if src.lang == "python":
        ask = f"Write pytest unit tests for the {what} below, from module `{module}` (`from {module} import {name}`)."
    elif src.lang == "go":
        ask = f"Write Go unit tests (package `{module}`, the `testing` package) for the {what} below."
    elif src.lang == "rust":
        ask = f"Write Rust unit tests (`#[test]` functions in `mod tests` with `use super::*;`) for the {what} below."
    else:
        ask = f"Write {framework} unit tests for the {what} below (`import {{ {name} }} from '{module}';`)."
    ask += f" Reply with only the test code in one ```{tag} block; do not repeat the code under test."
    return [Message("user", f"{ask}\n\n{fence(src, target_code(src, target))}")]


def fix_messages(src: Source, code: str, message: str, line_text: str) -> list[Message]:
    lang = DISPLAY_NAMES[src.lang]
    ask = f"Fix this problem in the {lang} code below: {message.strip()}\nIt is reported at: `{line_text.strip()}`"
    end = f"Reply with the whole corrected code in one ```{_TAGS[src.lang]} block, changing only what the fix needs."
    return [Message("user", f"{ask}\n\n{fence(src, code)}\n\n{end}")]


def edit_messages(src: Source, code: str, instruction: str) -> list[Message]:
    lang = DISPLAY_NAMES[src.lang]
    ask = f"Change the {lang} code below: {instruction.strip()}"
    end = f"Reply with the whole changed code in one ```{_TAGS[src.lang]} block."
    return [Message("user", f"{ask}\n\n{fence(src, code)}\n\n{end}")]


def explain_messages(src: Source, code: str) -> list[Message]:
    lang = DISPLAY_NAMES[src.lang]
    return [Message("user", f"Explain briefly what this {lang} code does, in markdown.\n\n{fence(src, code)}")]
