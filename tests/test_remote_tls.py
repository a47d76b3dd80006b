"""TLS to a remote engine: verification is always on; `caBundle` adds a private CA."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from codellama_ls.engines.base import EngineError, GenerationRequest
from codellama_ls.prompt.fim import build_prompt
from tests.support.fake_remote import FakeServer, Stream, engine_for, reuse_tokenizers, tokens  # noqa: F401


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_self_signed_server_needs_ca_bundle(certificate: tuple[Path, Path], tokenizer_dir: Path) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakeServer(tokenizer_dir, tls=context) as server:
        assert server.url.startswith("https://localhost:")
        untrusted = engine_for(server, tokenizer_dir)
        assert untrusted.error is not None and "caBundle" in untrusted.error
        prompt = build_prompt(untrusted.tokenizer, "x = ", "\n", fmt="spm")
        with pytest.raises(EngineError) as err:
            untrusted.generate(GenerationRequest(prompt=prompt, max_new_tokens=8))
        assert err.value.kind == "tls"
        assert not server.seen  # nothing was sent over the unverified connection

        trusted = engine_for(server, tokenizer_dir, caBundle=str(cert))
        assert trusted.error is None and trusted.model_id == server.model_id
        server.queue("/generate_stream", Stream(tokens(" 1"), finish="length"))
        assert trusted.generate(GenerationRequest(prompt=prompt, max_new_tokens=8)).text == " 1"
