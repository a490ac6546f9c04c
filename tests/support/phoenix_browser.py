"""Open a page in headless Chromium and report what it shows: run by the Python of the
Phoenix virtualenv (tools/fetch-phoenix.sh), which has playwright; the browser is the
system's Chromium (``--chromium``), never one playwright would download.

    python phoenix_browser.py --url URL --screenshot out.png --expect "text" [--expect ...]

Waits until the page's text holds every ``--expect`` (or ``--timeout`` seconds pass), saves a
full-page screenshot and prints one JSON object: the final URL, the page's text, the
host:port of every request the page made and the expected texts that never appeared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from urllib.parse import urlsplit

from playwright.sync_api import Error, sync_playwright

#: a fresh, quiet browser: no sandbox (root in a container), no GPU, nothing fetched on its own
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_FOR_TEXTS = "texts => texts.every(t => document.body && document.body.innerText.includes(t))"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    hosts: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="llmtap-chromium-") as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            profile,
            executable_path=args.chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            page.goto(args.url, wait_until="load")
            # the texts that never appear are reported below, as missing
            with contextlib.suppress(Error):
                page.wait_for_function(WAIT_FOR_TEXTS, arg=args.expect, timeout=args.timeout * 1000)
            page.wait_for_timeout(500)  # let the last rows render before the screenshot
            page.screenshot(path=args.screenshot, full_page=True)
            text = page.inner_text("body")
            seen = {
                "url": page.url,
                "text": text,
                "hosts": sorted(h for h in hosts if h),
                "missing": [t for t in args.expect if t not in text],
            }
        finally:
            browser.close()
    json.dump(seen, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
