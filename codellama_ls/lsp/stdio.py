"""Serve LSP over stdio reading stdin with asyncio, not through a thread per header line.

pygls' stdio server reads every header line and every body in a thread pool: three thread
hops per message, six for the ``didChange`` + ``inlineCompletion`` pair of a keystroke. On a
busy machine each hop waits for a core, and those waits were most of the end-to-end time of
an answer that needs no model (a typed-through suggestion). When stdin is a pipe, as editors
start language servers, it is read by the event loop itself; anything else (a file, a socket
shared with stdout, Windows) keeps pygls' reader.

Like pygls' reader, it lets the loop run once between messages: a request handler reads the
document in its first step, which must come before a ``didChange`` sent after the request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from typing import Any, BinaryIO

from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.lsp.server import LanguageServer

from codellama_ls.lsp import adapter as pygls_adapter

log = logging.getLogger(__name__)


def is_pipe(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


class PipeReader:
    """The reader ``run_async`` wants, over an asyncio stream."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream

    async def readline(self) -> bytes:
        await asyncio.sleep(0)  # let the handlers of the previous message take their first step
        return await self.stream.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self.stream.readexactly(n)
        except asyncio.IncompleteReadError:
            return b""  # end of input inside a message: run_async stops


def serve(server: LanguageServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """What pygls' ``start_io`` does, with an asyncio reader when stdin is a pipe."""
    stdin = stdin or sys.stdin.buffer
    stop_event = pygls_adapter.new_stop_event(server)
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

    async def main() -> None:
        reader: Any
        if sys.platform != "win32" and is_pipe(stdin):
            stream = asyncio.StreamReader()
            loop = asyncio.get_running_loop()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), stdin)
            reader = PipeReader(stream)
        else:
            reader = StdinAsyncReader(stdin, server.thread_pool)
        await run_async(
            stop_event=stop_event,
            reader=reader,
            protocol=server.protocol,
            logger=log,
            error_handler=server.report_server_error,
        )

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.error("Connection to the client is lost! Shutting down the server.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
