"""Allow ``python -m codellama_ls`` as an equivalent of the ``codellama-ls`` script."""

from codellama_ls.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
