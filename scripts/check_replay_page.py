"""Open a ``qd replay`` page in headless Chromium from ``file://`` with the network cut, and check that
Brax's viewer drew.

Usage (from the repository root; needs ``chromium``, e.g. ``apt-get install -y chromium``)::

    python scripts/check_replay_page.py runs/RUN/replay_best.html [--screenshot shot.png]

The network is cut with a proxy to a closed local port and a host resolver that resolves nothing, so a page
that still fetched a script from a CDN would stay blank (Brax's own ``brax.io.html.render`` page does).
Checks: the page's status attribute (``data-qd-status``, set by the page's script) is ``drawn`` and no
error was shown, read from the DOM after the scripts ran (``--dump-dom``); and the screenshot's viewer area
is not one flat colour. WebGL runs on SwiftShader (CPU). Exit status 0 when every check passes, 1
otherwise; prints one line per check.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Optional

OFFLINE_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=800,600", "--virtual-time-budget=15000",
]


def find_chromium() -> Optional[str]:
    """The first of ``chromium``, ``chromium-browser``, ``google-chrome`` on the PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def check_page(path: str, screenshot: Optional[str] = None, chromium: Optional[str] = None,
               timeout: float = 120.0) -> Dict[str, object]:
    """Load ``path`` offline twice (DOM dump, then screenshot) and report.

    Returns:
        ``{"status": str, "error": str, "colours": int, "screenshot": str}``: the page's ``data-qd-status``
        (``"drawn"``, ``"error"``, ``"loading"`` or ``""`` if unreadable), the text of its error box, the
        number of distinct colours in the viewer area of the screenshot (a blank page has 1), and the
        screenshot's path.

    Raises:
        FileNotFoundError: no Chromium (or ``path`` does not exist).
        subprocess.TimeoutExpired: the browser ran longer than ``timeout`` seconds.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no chromium on the PATH (apt-get install -y chromium)")
    url = "file://" + os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    for _ in range(3):  # on a loaded machine the page may still be loading when the DOM is dumped: retry
        with tempfile.TemporaryDirectory() as profile:
            flags = [chromium, *OFFLINE_FLAGS, f"--user-data-dir={profile}"]
            dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=timeout).stdout
        status = re.search(r'<body[^>]*data-qd-status="([a-z]*)"', dom)
        if status and status.group(1) in ("drawn", "error"):
            break
    error = re.search(r'<div id="qd-error">(.*?)</div>', dom, re.S)
    screenshot = screenshot or os.path.splitext(path)[0] + ".png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *OFFLINE_FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}", url],
                       capture_output=True, timeout=timeout)
    colours = 0
    if os.path.isfile(screenshot):
        from PIL import Image

        with Image.open(screenshot) as im:
            viewer = im.convert("RGB").crop((0, 80, im.width, im.height - 80))  # below the page's header line
            colours = len(viewer.getcolors(maxcolors=1 << 20) or [])
    return {"status": status.group(1) if status else "", "error": html.unescape(error.group(1)).strip() if error else "",
            "colours": colours, "screenshot": screenshot}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page")
    parser.add_argument("--screenshot", help="PNG to write (default: next to the page)")
    args = parser.parse_args(argv)
    r = check_page(args.page, args.screenshot)
    checks = [(f"viewer started (data-qd-status={r['status']!r})", r["status"] == "drawn"),
              ("no error shown" + (f": {r['error']}" if r["error"] else ""), not r["error"]),
              (f"viewer area not blank ({r['colours']} colours in {r['screenshot']})", r["colours"] > 10)]
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
