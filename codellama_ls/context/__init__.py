"""Context from the rest of the workspace for Code Llama prompts (GitHub issue 11).

One module per concern:

- :mod:`.files`: which workspace files may be read (secrets, ``.gitignore``, symlinks,
  ``contextExclude``, size, binary), and the only code that reads them;
- :mod:`.index`: :class:`WorkspaceIndex`, the background index of files, open documents and
  parsed files, fed by LSP notifications;
- :mod:`.parsing`, :mod:`.imports`, :mod:`.definitions`: tree-sitter parses, import
  resolution per language, definitions as line ranges;
- :mod:`.names`, :mod:`.similar`: identifiers near the cursor, similar windows of other documents;
- :mod:`.render`: snippets as comments of the edited file's language;
- :mod:`.provider`: :class:`ContextProvider`, the block for one request, stable while typing;
- :mod:`.block`: :class:`ContextBlock` / :class:`ContextEntry`, what a prompt carries.

The heavy modules load on first use, so ``codellama_ls.prompt.fim`` (which needs only
:mod:`.block`) costs nothing more to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codellama_ls.context.block import EMPTY, ContextBlock, ContextEntry

if TYPE_CHECKING:
    from codellama_ls.context.index import WorkspaceIndex
    from codellama_ls.context.provider import ContextProvider

__all__ = ["EMPTY", "ContextBlock", "ContextEntry", "ContextProvider", "WorkspaceIndex"]


def __getattr__(name: str) -> Any:
    if name == "WorkspaceIndex":
        from codellama_ls.context.index import WorkspaceIndex

        return WorkspaceIndex
    if name == "ContextProvider":
        from codellama_ls.context.provider import ContextProvider

        return ContextProvider
    raise AttributeError(name)
