"""One language table (``codellama_ls/languages.py``): every consumer's lookup agrees with it."""

from __future__ import annotations

from codellama_ls import languages, syntax
from codellama_ls.actions import syntax as actions_syntax
from codellama_ls.context import languages as context_languages
from codellama_ls.postprocess import Context


def test_ids_extensions_and_grammars_are_unique_and_loadable() -> None:
    ids = [i for lang in languages.LANGUAGES for i in lang.ids]
    assert len(ids) == len(set(ids)), "a language id names two languages"
    extensions = [ext for lang in languages.LANGUAGES for ext in lang.extensions]
    assert len(extensions) == len(set(extensions)), "an extension names two languages"
    assert syntax.GRAMMARS == languages.GRAMMARS
    for grammar in languages.GRAMMARS:
        assert syntax.language(grammar) is not None, f"no tree-sitter grammar wheel for {grammar}"


def test_context_reads_the_table() -> None:
    for lang in languages.LANGUAGES:
        for language_id in lang.ids:
            key = context_languages.language_of_id(language_id)
            if lang.family is None:
                assert key is None, language_id
                continue
            assert key == lang.id
            assert context_languages.comment_prefix(key) == lang.comments[0]
            assert context_languages.family(key) == lang.family
            assert context_languages.is_parsed(key) == (lang.grammar is not None)
        for ext in lang.extensions:
            assert context_languages.language_of_path(f"src/a{ext}") == (lang.id if lang.family else None)


def test_code_actions_read_the_table() -> None:
    for lang in languages.LANGUAGES:
        for language_id in lang.ids:
            key = actions_syntax.language_key(language_id)
            assert key == (lang.grammar if lang.actions else None), language_id
        if not lang.actions or lang.grammar is None:
            continue
        assert actions_syntax.FENCE_TAGS[lang.grammar] == lang.fences
        assert actions_syntax.DISPLAY_NAMES[lang.grammar] == lang.name
        for ext in lang.extensions:
            assert actions_syntax.language_key(None, f"a{ext}") == lang.grammar
        unit = actions_syntax.Source.from_text("x = 1\n", lang.id).unit
        assert unit == (lang.indent or languages.DEFAULT_INDENT), lang.id
    # TSX is one language: the context's `typescriptreact` and the actions' `tsx` grammar.
    assert actions_syntax.language_key("typescriptreact") == "tsx"
    assert context_languages.language_of_id("tsx") == "typescriptreact"


def test_post_processing_reads_the_table() -> None:
    for lang in languages.LANGUAGES:
        # One marker when the language has exactly `#` or `//`; both when it has others; none without.
        markers = lang.comments if lang.comments in (("#",), ("//",)) else ("#", "//") if lang.comments else ()
        for language_id in lang.ids:
            tabs, width = Context("x = 1\n", "", language_id).indent_style
            assert tabs is (True if lang.indent == "\t" else None), language_id
            assert width == (len(lang.indent) if lang.indent and lang.indent != "\t" else 4), language_id
            for marker in ("#", "//"):
                in_comment = Context(f"x = 1  {marker} note", "", language_id).in_line_comment
                assert in_comment == (marker in markers), (language_id, marker)
