"""Loaded by Python at start-up when this folder is on PYTHONPATH (the security tests put it there).

Records every file open, every folder listing and every socket connect/lookup/send of the process,
through audit hooks (PEP 578), one tab-separated line per event, to the file named by
``CODELLAMA_AUDIT_LOG``.
Native code that bypasses Python (Rust tokenizers, safetensors) is not seen here; the strace
variant of the test covers that where strace exists.
"""

import os
import sys

_path = os.environ.get("CODELLAMA_AUDIT_LOG")
if _path:
    _fd = os.open(_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    _EVENTS = {"open", "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "socket.bind"}
    _LISTINGS = {"os.listdir", "os.scandir"}

    def _audit(event, args):
        if event in _LISTINGS:
            path = args[0] if args else "."
            if isinstance(path, int):
                return
            line = f"{event}\t{os.fsdecode(path if path is not None else '.')}"
            os.write(_fd, (line.replace("\n", " ") + "\n").encode("utf-8", "backslashreplace"))
            return
        if event not in _EVENTS:
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return  # an already open descriptor
            line = f"open\t{mode}\t{flags}\t{os.fsdecode(path)}"
        else:
            line = f"{event}\t{args!r}"
        os.write(_fd, (line.replace("\n", " ") + "\n").encode("utf-8", "backslashreplace"))

    sys.addaudithook(_audit)
