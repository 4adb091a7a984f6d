"""Load built documentation pages in headless Chromium, check what they render and save screenshots.

``make docs`` runs this after the build: for the landing page and the ``detect`` API page it asserts
that the page, as Chromium renders it (after its scripts ran), shows its title, the site's navigation,
and at least one figure or code block, and it saves a screenshot of each (checked to be a picture,
not a blank page) under ``<html>/_screenshots/``. The pages are served over HTTP on 127.0.0.1.

Usage: ``python docs/check_rendered.py [docs/_build/html]``; exit status 1 when a check fails.
Needs Chromium (Debian: ``apt-get install chromium``; or set ``CHROMIUM`` to its path).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

#: page (relative to the HTML root) -> the title it must show
PAGES = {
    "index.html": "convseq_neo",
    "generated/convseq_neo.detect.html": "convseq_neo.detect",
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,1400"]


@dataclass
class RenderedPage(HTMLParser):
    """What a rendered page holds: its title, headings, navigation links, figures and code blocks."""

    title: str = ""
    h1: list[str] = field(default_factory=list)
    nav_links: int = 0
    figures: int = 0
    code_blocks: int = 0
    _open: list[str] = field(default_factory=list)
    _nav_depth: int = 0

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag in ("title", "h1"):
            self._open.append(tag)
            if tag == "h1":
                self.h1.append("")
        if tag == "nav" or any(name.startswith("bd-docs-nav") or name == "navbar-nav" for name in classes):
            self._nav_depth += 1
        if tag == "a" and self._nav_depth and attributes.get("href"):
            self.nav_links += 1
        if tag == "img" and "logo" not in " ".join(classes) and attributes.get("src"):
            self.figures += 1
        if tag == "pre":
            self.code_blocks += 1

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()
        if tag == "nav" and self._nav_depth:
            self._nav_depth -= 1

    def handle_data(self, data):
        if self._open and self._open[-1] == "title":
            self.title += data
        elif self._open and self._open[-1] == "h1":
            self.h1[-1] += data


def find_chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise SystemExit("check_rendered: Chromium not found: install it (Debian: apt-get install chromium) or set "
                     "CHROMIUM to its path")


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def chromium(binary: str, *arguments: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
                              capture_output=True, text=True, timeout=120, check=False)


def is_picture(path: Path) -> bool:
    """A PNG of some size whose pixels are not all one colour."""
    if not path.is_file() or path.stat().st_size < 5_000:
        return False
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    return float(pixels[..., :3].std()) > 0.01


def check(html_root: Path) -> list[str]:
    binary = find_chromium()
    shots = html_root / "_screenshots"
    shots.mkdir(exist_ok=True)
    server, base = serve(html_root)
    failures = []
    try:
        for page, title in PAGES.items():
            if not (html_root / page).is_file():
                failures.append(f"{page}: not built")
                continue
            url = base + page
            dom = chromium(binary, "--dump-dom", url)
            rendered = RenderedPage()
            rendered.feed(dom.stdout)
            shot = shots / (Path(page).stem + ".png")
            chromium(binary, f"--screenshot={shot}", url)
            found = (f"title {rendered.title.strip()!r}, h1 {[h.strip(' ¶#') for h in rendered.h1]}, "
                     f"{rendered.nav_links} navigation links, {rendered.figures} figures, "
                     f"{rendered.code_blocks} code blocks, screenshot {shot.name}")
            print(f"{page}: {found}")
            if title not in rendered.title or not any(title in h for h in rendered.h1):
                failures.append(f"{page}: title {title!r} not rendered")
            if rendered.nav_links < 3:
                failures.append(f"{page}: no site navigation rendered")
            if rendered.figures + rendered.code_blocks == 0:
                failures.append(f"{page}: neither a figure nor a code block rendered")
            if not is_picture(shot):
                failures.append(f"{page}: the screenshot is missing or blank")
    finally:
        server.shutdown()
    return failures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    html_root = Path(argv[0] if argv else Path(__file__).parent / "_build" / "html").resolve()
    failures = check(html_root)
    for failure in failures:
        print(f"check_rendered: FAILED: {failure}")
    return int(bool(failures))


if __name__ == "__main__":
    sys.exit(main())
