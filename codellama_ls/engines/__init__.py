"""Engines run the model: in-process (``local``) or on a server (``tgi``, ``openai``, ``llamacpp``, ``ollama``)."""

from __future__ import annotations

from codellama_ls.config import Settings
from codellama_ls.engines.base import Engine, EngineError


def create_engine(settings: Settings) -> Engine:
    """The engine the settings ask for (not loaded yet)."""
    if settings.engine == "local":
        from codellama_ls.engines.local import LocalEngine

        return LocalEngine(settings)
    if settings.engine == "tgi":
        from codellama_ls.engines.tgi import TGIEngine

        return TGIEngine(settings)
    if settings.engine == "openai":
        from codellama_ls.engines.openai import OpenAIEngine

        return OpenAIEngine(settings)
    if settings.engine == "llamacpp":
        from codellama_ls.engines.llamacpp import LlamaCppEngine

        return LlamaCppEngine(settings)
    if settings.engine == "ollama":
        from codellama_ls.engines.ollama import OllamaEngine

        return OllamaEngine(settings)
    raise EngineError(f"setting 'engine' = {settings.engine!r} is not available in this build", "load")
