"""``python -m convseq_neo``: the command line (:func:`convseq_neo.cli.main`)."""

from convseq_neo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
