"""One settings object for flags, environment and the client; bad values are named and ignored."""

from __future__ import annotations

from codellama_ls.cli import build_parser, settings_from_args
from codellama_ls.config import Settings, extract_section, settings_table


def test_camel_and_snake_keys_and_validation():
    s, errors = Settings().updated({"maxNewTokens": "64", "fim_format": "PSM", "temperature": 0.2})
    assert (s.max_new_tokens, s.fim_format, s.temperature) == (64, "psm", 0.2)
    assert errors == []


def test_invalid_values_are_reported_and_previous_value_kept():
    base = Settings(max_new_tokens=32)
    s, errors = base.updated({"maxNewTokens": -5, "fimFormat": "middle", "topP": 0, "bogus": 1, "debounceMs": True})
    assert s == base
    text = "\n".join(errors)
    for name in ("maxNewTokens", "fimFormat", "topP", "bogus", "debounceMs"):
        assert name in text


def test_secret_never_printed():
    s, errors = Settings().updated({"apiToken": "hf_secret123"})
    assert "hf_secret123" not in repr(s) and "hf_secret123" not in str(s.to_dict())
    _, errors = Settings().updated({"apiToken": 42})
    assert "42" not in "".join(errors)


def test_env_then_flags():
    env = {"CODELLAMA_LS_MODEL": "/models/cl", "CODELLAMA_LS_MAX_NEW_TOKENS": "99", "CODELLAMA_LS_DEVICE": "gpu"}
    s, errors = Settings.from_env(env)
    assert s.model == "/models/cl" and s.max_new_tokens == 99 and s.device == "auto"
    assert any("device" in e for e in errors)


def test_cli_flags(monkeypatch):
    monkeypatch.setenv("CODELLAMA_LS_MAX_NEW_TOKENS", "10")
    args = build_parser().parse_args(["--max-new-tokens", "20", "--fim-format", "psm", "serve", "--tcp", "9000"])
    s, errors = settings_from_args(args)
    assert (s.max_new_tokens, s.fim_format, errors) == (20, "psm", [])
    assert args.tcp == "9000"


def test_section_extraction():
    assert extract_section({"codellama": {"model": "m"}, "other": 1}) == {"model": "m"}
    assert extract_section({"model": "m"}) == {"model": "m"}
    assert extract_section(None) == {}


def test_settings_table_lists_every_setting():
    table = settings_table()
    for key in Settings.keys():
        if "_" not in key:
            assert f"`{key}`" in table


def test_readme_documents_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for name in Settings.keys():
        if "_" not in name:
            assert f"| `{name}` |" in readme, f"README settings table lacks {name}"


def test_context_settings_lists_of_globs_from_every_source(monkeypatch):
    s, errors = Settings().updated({"contextTokens": 0, "contextExclude": ["vendor/**", " *.gen.py ", ""]})
    assert (s.context_tokens, s.context_exclude, errors) == (0, ("vendor/**", "*.gen.py"), [])
    assert s.to_dict()["contextExclude"] == ["vendor/**", "*.gen.py"]  # JSON's (and the editors') list
    monkeypatch.setenv("CODELLAMA_LS_CONTEXT_EXCLUDE", "build/, dist/")  # flags and variables: comma-separated
    args = build_parser().parse_args(["--context-tokens", "1024"])
    s, errors = settings_from_args(args)
    assert (s.context_tokens, s.context_exclude, errors) == (1024, ("build/", "dist/"), [])
    base = Settings(context_exclude=("keep/**",))
    for bad in (["ok/**", "dir\\"], "!", [3], {"glob": "x"}):
        kept, errors = base.updated({"contextExclude": bad})
        assert kept.context_exclude == ("keep/**",) and len(errors) == 1 and "contextExclude" in errors[0], bad
    _, errors = Settings().updated({"contextTokens": 8193})
    assert errors and "contextTokens" in errors[0]
