"""``.. cli-help:: [subcommand]``: the command line's own ``--help`` text, read from its parser at build time.

The command-line page can then never disagree with the parser.
"""

from __future__ import annotations

import os

from docutils import nodes
from docutils.parsers.rst import Directive


class CliHelp(Directive):
    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        from convseq_neo.cli import build_parser

        parser = build_parser()
        if self.arguments:
            (subparsers,) = [a for a in parser._actions if a.dest == "command"]
            parser = subparsers.choices[self.arguments[0]]
        os.environ.setdefault("COLUMNS", "100")
        text = parser.format_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("cli-help", CliHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
