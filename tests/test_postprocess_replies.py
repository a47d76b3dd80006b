"""The same post-processing for every suggestion of a request and for both reply kinds
(ghost text and the completion menu): fences, loops and repeated keys never reach the editor."""

from __future__ import annotations

from lsprotocol import types

from codellama_ls.config import Settings
from codellama_ls.lsp.replies import completion_item, inline_item
from codellama_ls.pipeline.completion import Pipeline
from codellama_ls.session import Session
from tests.support.fake_engine import FakeEngine

URI = "file:///calc.py"
TEXT = "def add(a, b):\n    \n"
HERE = types.Position(line=1, character=4)
SAMPLES = [
    "```python\n    return a + b\n```\n\nThis returns the sum.",  # a chat-tuned answer: fenced
    "print(a niveau" + "dens" * 6 + " vie vie",  # decoding stopped in a loop
    "0",  # one character is an answer
    " ",  # a lone space is not
    "return a + b",  # the first one again, without its fence
    "total = a + b\n    total = a + b\n    return total",  # a name set twice in a row
]


def _service(outputs: list[str]) -> Pipeline:
    service = Pipeline(Session(Settings(debounce_ms=0, suggestions=len(outputs))))
    service.session.host.use(FakeEngine(script=lambda request: outputs))
    service.session.documents.open(types.TextDocumentItem(uri=URI, language_id="python", version=1, text=TEXT))
    return service


async def test_every_suggestion_and_both_reply_kinds_get_the_same_filters() -> None:
    service = _service(SAMPLES)
    try:
        answers = await service.suggestions(URI, HERE, invoked=True)
        expected = ["return a + b", "0", "total = a + b"]
        assert [a.text for a in answers] == expected
        # Each sample ran its own early-stop check: the fenced one ended once its code was over
        # (the prose after the fence was never decoded), the looping one ran to its end.
        result = service.session.engine.history[-1]
        assert result.stop_reasons[0] == "early" and "This returns" not in result.texts[0]
        assert result.stop_reasons[1] == "eot"
        encoding = types.PositionEncodingKind.Utf16
        inline = [inline_item(a, encoding) for a in answers]
        menu = [completion_item(a, encoding, i) for i, a in enumerate(answers)]
        assert [i.insert_text for i in inline] == expected
        assert [i.text_edit.new_text for i in menu if isinstance(i.text_edit, types.TextEdit)] == expected
        assert [i.label for i in menu] == expected
        # Typing asks for one: the greedy answer, filtered the same way.
        service.session.caches.results.clear()
        service.session.caches.typed.forget(URI)
        assert [a.text for a in await service.suggestions(URI, HERE)] == ["return a + b"]
    finally:
        service.session.shutdown()


async def test_a_request_whose_every_sample_is_noise_gets_nothing() -> None:
    service = _service(["```python\n```", " ", "x = cier" + "END ro" * 8])
    try:
        assert await service.suggestions(URI, HERE, invoked=True) == []
    finally:
        service.session.shutdown()
