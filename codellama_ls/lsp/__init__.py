"""The protocol edge: LSP handlers, pygls and JSON-RPC details; the only package that imports pygls."""
