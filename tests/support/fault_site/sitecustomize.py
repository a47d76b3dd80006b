"""Loaded at start-up when this folder is on PYTHONPATH: makes one stage of the server fail.

``CODELLAMA_LS_FAULT`` names the stage (``tokenizer``, ``prompt``, ``engine``, ``postprocess``,
``cache``, ``answer``, ``status``, ``sync``, ``context``); the stage then raises an exception whose text
holds a file path and a secret, as real failures can. ``tests/e2e/test_faults_e2e.py`` checks that every
request is still answered, with one message per kind of failure and nothing of the exception
in any answer. ``slow-index`` is not a fault: the workspace index takes ``CODELLAMA_LS_SLOW_INDEX_S``
seconds (3) per file it parses, to show that requests never wait for it.
"""

import os
import time

STAGE = os.environ.get("CODELLAMA_LS_FAULT")
SECRET_TEXT = "failed reading /srv/codellama/private/state.bin with token hf_FAULTYsecret123"


def _boom(*args, **kwargs):
    raise RuntimeError(SECRET_TEXT)


def _answer(self, request):
    """The model's answer, fixed, so that every stage after the engine is reached."""
    from codellama_ls.engines.base import GenerationResult

    n = len(request.prompt.ids)
    return self.record(GenerationResult("x + 1", 3, n, n, "eot"))


if STAGE:
    from codellama_ls import documents, health, postprocess
    from codellama_ls.engines import local
    from codellama_ls.pipeline import cache, completion
    from codellama_ls.prompt import memo as token_memo

    local.LocalEngine._generate = _answer
    if STAGE == "tokenizer":
        token_memo.MemoTokenizer.encode_with_offsets = _boom
        token_memo.MemoTokenizer.encode_infill_with_offsets = _boom
    elif STAGE == "prompt":
        completion.build_prompt = _boom
    elif STAGE == "engine":
        local.LocalEngine._generate = _boom
    elif STAGE == "postprocess":
        postprocess.postprocess = _boom
        postprocess.stop_check = lambda *a, **k: _boom
    elif STAGE == "cache":
        cache.TypedThrough.follow = _boom
    elif STAGE == "answer":
        completion.Answer.range = _boom
        completion.Answer.position = _boom
    elif STAGE == "status":
        health.process = _boom
    elif STAGE == "sync":
        documents.DocumentStore.change = _boom
    elif STAGE == "context":
        from codellama_ls.context import provider

        provider.ContextProvider.context = _boom
    elif STAGE == "slow-index":
        from codellama_ls.context import index

        _analyse = index.WorkspaceIndex._analyse

        def _slow_analyse(self, key):
            time.sleep(float(os.environ.get("CODELLAMA_LS_SLOW_INDEX_S", "3")))
            return _analyse(self, key)

        index.WorkspaceIndex._analyse = _slow_analyse
