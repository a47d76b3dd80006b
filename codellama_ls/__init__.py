"""codellama-ls: a language server that completes code with Code Llama."""

__version__ = "0.1.0"
