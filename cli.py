"""`python cli.py ...` is the same command as the installed `pagewash ...`."""

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
