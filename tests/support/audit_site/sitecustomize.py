"""Loaded by Python at start-up when this folder is on PYTHONPATH (the security tests put it there).

Records every file open and every socket connect/lookup/send of the process, through audit
hooks (PEP 578), one tab-separated line per event, to the file named by ``CODELLAMA_AUDIT_LOG``.
Native code that bypasses Python (Rust tokenizers, safetensors) is not seen here; the strace
variant of the test covers that where strace exists.
"""

import os
import sys

_path = os.environ.get("CODELLAMA_AUDIT_LOG")
if _path:
    _fd = os.open(_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    _EVENTS = {"open", "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "socket.bind"}

    def _audit(event, args):
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
