"""The documentation as a reader sees it: rendered by a real headless Chromium (Debian's).

What is checked, and why it can fail:

* **Layout, measured by the browser.** Each page is served over loopback with a small script
  appended that runs after the stylesheets applied, measures the laid-out page and writes a
  JSON report into the DOM, which ``chromium --dump-dom`` prints. The report says: the size of
  the article (a page that failed to render is tiny), every element whose content is wider than
  its box while its overflow hides the rest (clipped text), every code block, signature or table
  that sticks out of the article's column without a scroll bar of its own, every table-cell
  identifier that wraps inside a word (a break anywhere but after ``_``, ``.``, ``,`` or a
  space), and every table-of-contents entry cut short by an ellipsis.
* **Screenshots.** ``chromium --screenshot`` of the home page, the quickstart and the Python
  API page at 1280x2000, decoded here (plain PNG, no imaging library): the right size, and
  not blank (many colours, a good share of the pixels not background).

Neither uses a driver or the DevTools protocol: the page measures itself.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import struct
import subprocess
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from itertools import accumulate, compress
from operator import ne
from pathlib import Path

import pytest

from .conftest import missing_service
from .test_docs import built_site

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1280, 2000
PAGES = ["", "quickstart/", "reference/api/", "reference/rules/", "frameworks/"]
SCREENSHOTS = ["", "quickstart/", "reference/api/"]
_BYTE = (0xFF).__and__

MEASURE = """
<script>
(() => {
  const article = document.querySelector("article.md-content__inner");
  const box = article.getBoundingClientRect();
  const scrolls = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const scrollableUpTo = (el) => {
    for (let node = el; node && node !== article; node = node.parentElement) {
      if (scrolls(node) && node.getBoundingClientRect().right <= box.right + 1) return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "") +
    ": " + el.textContent.trim().slice(0, 60);
  const clipped = [], overflowing = [], brokenWords = [], truncatedToc = [];
  for (const el of article.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    if (el.scrollWidth > el.clientWidth + 1 && ["hidden", "clip"].includes(style.overflowX)
        && el.clientWidth > 0) clipped.push(name(el));
  }
  for (const el of article.querySelectorAll("pre, table, .doc-signature, code")) {
    if (el.getBoundingClientRect().right > box.right + 1 && !scrollableUpTo(el))
      overflowing.push(name(el));
  }
  for (const el of article.querySelectorAll("td code")) {
    const text = el.textContent;
    const range = document.createRange();
    let top = null;
    for (let i = 0; i < text.length; i++) {
      const node = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      let offset = i, current = node.nextNode();
      while (current && offset >= current.length) {
        offset -= current.length;
        current = node.nextNode();
      }
      if (!current) break;
      range.setStart(current, offset); range.setEnd(current, offset + 1);
      const rect = range.getClientRects()[0];
      if (!rect) continue;
      if (top !== null && rect.top > top + 2 && !"_., ".includes(text[i - 1]))
        brokenWords.push(text.slice(0, i) + "|" + text.slice(i));
      top = rect.top;
    }
  }
  for (const el of document.querySelectorAll(".md-nav--secondary .md-ellipsis")) {
    if (el.scrollWidth > el.clientWidth + 1) truncatedToc.push(el.textContent.trim());
  }
  const report = {width: box.width, height: box.height, title: document.title,
                  clipped, overflowing, brokenWords, truncatedToc};
  document.documentElement.setAttribute("data-layout", JSON.stringify(report));
})();
</script>
"""


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        missing_service("chromium (Debian's package)")
    assert found is not None
    return found


def chromium_args(profile: Path) -> list[str]:
    return [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}",
    ]  # fmt: skip


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site; with ``?measure`` appends the measuring script to a page."""

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if query != "measure":
            return super().do_GET()
        page = Path(self.translate_path(path)) / "index.html"
        body = page.read_bytes().replace(b"</body>", MEASURE.encode() + b"</body>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chromium()
    out = built_site(tmp_path_factory)
    handler = functools.partial(_Handler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def layout(site: str, page: str, profile: Path) -> dict[str, object]:
    result = subprocess.run(
        [*chromium_args(profile), "--dump-dom", f"{site}{page}?measure"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    found = re.search(r'data-layout="([^"]*)"', result.stdout)
    assert found, f"the page did not measure itself: {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page or "home")
def test_pages_render_without_clipping(site: str, page: str, tmp_path: Path) -> None:
    report = layout(site, page, tmp_path / "profile")
    assert report["width"] > 600, report  # type: ignore[operator]
    assert report["height"] > 800, report  # type: ignore[operator]
    assert "codat-webhooks" in str(report["title"])
    for finding in ("clipped", "overflowing", "brokenWords", "truncatedToc"):
        assert report[finding] == [], (finding, report[finding])


def png_colours(data: bytes) -> tuple[int, int, Counter[int]]:
    """Width, height and pixel colour counts of an 8-bit, non-interlaced RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), header
    assert colour in (2, 6), header
    step = 4 if colour == 6 else 3
    raw, stride = zlib.decompress(idat), width * step
    colours: Counter[int] = Counter()
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 2:  # Up, the filter of most rows, as one addition
            line[:] = _add_bytes(line, previous)
        elif kind:
            for channel in range(step):  # PNG filters never mix the channels of a pixel
                line[channel::step] = _unfilter(kind, line[channel::step], previous[channel::step])
        pixels = bytearray(width * 4)  # RGB widened to 32 bits: one int per pixel counts fast
        for channel in range(3):
            pixels[channel::4] = line[channel::step]
        colours.update(memoryview(pixels).cast("I"))
        previous = bytes(line)
    return width, height, colours


def _add_bytes(a: bytes | bytearray, b: bytes) -> bytes:
    """Bytewise (a + b) mod 256 as one big-integer operation (no carry crosses a byte)."""
    n = len(a)
    low, high = int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _unfilter(kind: int, line: bytes | bytearray, up: bytes) -> bytes:
    """One channel of one row with its Sub, Average or Paeth filter undone (PNG specification,
    section 9).

    Written for speed in plain Python, as a byte-by-byte loop took seconds per screenshot
    (more under coverage): Sub is a running sum, and Paeth rows go byte by byte only where the
    row above changes, since elsewhere Paeth predicts the left neighbour: a running sum again.
    """
    if kind == 1:  # Sub
        return bytes(map(_BYTE, accumulate(line)))
    out = bytearray(line)
    if kind == 3:  # Average
        left = 0
        for x, (value, above) in enumerate(zip(line, up, strict=True)):
            left = out[x] = (value + (left + above) // 2) & 0xFF
        return bytes(out)
    changes = [*compress(range(1, len(up)), map(ne, up[1:], up[:-1])), len(up)]
    out[0] = (line[0] + up[0]) & 0xFF
    start = 1
    for change in changes:
        if change > start:  # up[x] == up[x - 1] here: Paeth predicts the left neighbour
            run = accumulate(line[start:change], initial=out[start - 1])
            out[start - 1 : change] = bytes(map(_BYTE, run))
        if change < len(up):
            left, above, corner = out[change - 1], up[change], up[change - 1]
            p = left + above - corner
            pa, pb, pc = abs(p - left), abs(p - above), abs(p - corner)
            guess = left if pa <= pb and pa <= pc else above if pb <= pc else corner
            out[change] = (line[change] + guess) & 0xFF
        start = change + 1
    return bytes(out)


@pytest.mark.parametrize("page", SCREENSHOTS, ids=lambda page: page or "home")
def test_screenshots_are_full_size_and_not_blank(site: str, page: str, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    subprocess.run(
        [*chromium_args(tmp_path / "profile"), f"--screenshot={shot}", site + page],
        capture_output=True,
        timeout=90,
        check=True,
    )
    width, height, colours = png_colours(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(colours) > 50  # text, code highlighting, the header: far more than a blank page
    [(_, background)] = colours.most_common(1)
    assert background < 0.95 * width * height
