"""``python -m convseq_neo``: the command line."""

from convseq_neo.cli import main

raise SystemExit(main())
