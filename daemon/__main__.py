"""`python -m daemon` is the same as the `nosana-cache` console script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
