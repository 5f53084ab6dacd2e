"""End to end in a real headless Chromium: open the study page, rank every image, export, tally.

The browser is driven over the Chrome DevTools Protocol on a pipe (``--remote-debugging-pipe``):
no port, no Selenium, nothing beyond the standard library. Clicks are real mouse events at the
buttons' positions. Skips with a reason when no Chromium/Chrome is installed (CI installs Debian's
``chromium``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr.user_study import build_study, label_permutation, presentation_order
from spsr_cli.cmd_user_study_sheet import app

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    """A Chromium-family browser: $SPSR_TEST_CHROMIUM, else the first of BROWSERS on PATH."""
    configured = os.environ.get("SPSR_TEST_CHROMIUM")
    if configured:
        return configured
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


BROWSER = find_browser()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BROWSER is None, reason="no Chromium/Chrome found (apt-get install chromium)"
    ),
]


class DevTools:
    """A minimal Chrome DevTools Protocol client over the debugging pipe (fds 3 and 4)."""

    def __init__(self, browser: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # in the child: its fd 3 reads commands, fd 4 writes replies
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes,  # safe here: it only calls fcntl and dup2
            close_fds=False,  # fds 3 and 4 must survive into the browser
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        browser_level: bool = False,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not browser_level:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_browser], [], [], remaining)[0]:
                raise TimeoutError(f"no reply to {method}")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"the browser closed the pipe during {method}")
            self._buffer += chunk

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser_level=True)[
            "targetId"
        ]
        self.session = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, browser_level=True
        )["sessionId"]

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error in {expression[:80]!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait until the new document (not the one it replaces) is ready."""
        self.evaluate("window.spsrLeftBehind = true")
        self.call("Page.navigate", {"url": url})
        self.wait_for(
            "!window.spsrLeftBehind && document.readyState === 'complete' && !!window.spsrStudy"
        )

    def wait_for(self, condition: str, timeout: float = 60.0, what: str | None = None) -> None:
        """Wait until a JavaScript condition holds on the page.

        The check runs inside the page (a promise that re-checks every 20 ms and resolves as soon
        as the condition holds), so the test proceeds on the page's state, not after a guessed
        delay; ``timeout`` only bounds a page that never gets there. (A timer, not
        ``requestAnimationFrame``: frames pause in a page the browser considers hidden.)
        """
        waiter = (
            "new Promise(resolve => { const t0 = performance.now(); const check = () => {"
            f" let ok = false; try {{ ok = !!({condition}); }} catch (e) {{ ok = false; }}"
            f" if (ok || performance.now() - t0 > {timeout * 1000:.0f}) resolve(ok);"
            " else setTimeout(check, 20); }; check(); })"
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self.call(
                    "Runtime.evaluate",
                    {"expression": waiter, "returnByValue": True, "awaitPromise": True},
                    timeout=timeout + 30,
                )
                break
            except RuntimeError as exc:  # the document was replaced while the check ran
                if "context" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
        if not result.get("result", {}).get("value"):
            raise TimeoutError(f"page never satisfied {what or condition}")

    def click(self, selector: str, then: str | None = None) -> None:
        """A real left click at the centre of the element, then wait until ``then`` holds.

        The mouse events are sent only once the page is still: every image decoded (an image that
        finishes loading moves everything below it) and the element itself found at the point to
        be clicked (``elementFromPoint``), so a click cannot land on a spot the element has left.
        ``then`` is a JavaScript condition on the page that the click must bring about.
        """
        where = (
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e || ![...document.images].every(i => i.complete)) return null;"
            " e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " const x = r.x + r.width / 2, y = r.y + r.height / 2;"
            " const hit = document.elementFromPoint(x, y);"
            " return hit && (hit === e || e.contains(hit)) ? [x, y] : null; })()"
        )
        self.wait_for(f"{where} !== null", what=f"{selector} to be clickable")
        x, y = self.evaluate(where) or (None, None)
        if x is None:
            raise AssertionError(f"{selector} moved away between two checks")
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )
        if then is not None:
            self.wait_for(then, what=f"the click on {selector} to give {then}")

    def type_text(self, selector: str, text: str) -> None:
        focused = f"document.activeElement === document.querySelector({json.dumps(selector)})"
        self.click(selector, then=focused)
        self.call("Input.insertText", {"text": text})
        self.wait_for(
            f"document.querySelector({json.dumps(selector)}).value === {json.dumps(text)}"
        )

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close", browser_level=True, timeout=10)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


METHODS = ("SPSR-P", "ESRGAN", "Bicubic")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("browser_study")
    rng = np.random.default_rng(3)
    for name in ("hr", *METHODS):
        (root / name).mkdir()
    for stem in ("alpha", "beta", "gamma", "delta"):
        hr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        write_image(root / "hr" / f"{stem}.png", hr)
        for shift, name in enumerate(METHODS):
            write_image(
                root / name / f"{stem}_x4_SR.png",
                np.clip(hr.astype(int) + 9 * shift, 0, 255).astype(np.uint8),
            )
    built = build_study(
        root / "hr",
        [(m, root / m) for m in METHODS],
        root / "site",
        seed=424242,
        crop="auto",
        crop_size=16,
        slot_rng=random.Random(5),
    )
    return {"root": root, "build": built}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    assert BROWSER is not None
    profile = Path(tempfile.mkdtemp(prefix="spsr-chromium-"))
    tools = DevTools(BROWSER, profile)
    try:
        tools.call("Browser.getVersion", browser_level=True, timeout=60)
        yield tools
    finally:
        tools.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_page_prng_matches_python_prng_in_chromium(
    study: dict[str, Any], browser: DevTools
) -> None:
    browser.open_page()
    browser.navigate((study["build"].folder / "index.html").as_uri())
    cases = [
        (k, seed, rater, image)
        for k in (2, 3, 5, 8, 27)
        for seed in (0, 1, 424242, 2**31 - 1, 2**32 - 1)
        for rater in ("alice", "Zoë 測試 🙂", "  ")
        for image in (0, 1, 13, 4096)
    ]
    from_js = browser.evaluate(
        f"{json.dumps(cases)}.map(c => window.spsrStudy.labelPermutation(c[0], c[1], c[2], c[3]))"
    )
    assert from_js == [label_permutation(*case) for case in cases]
    orders = browser.evaluate(
        "[0, 1, 424242].map(s => window.spsrStudy.presentationOrder(37, s, 'Zoë 測試 🙂'))"
    )
    assert orders == [presentation_order(37, s, "Zoë 測試 🙂") for s in (0, 1, 424242)]
    assert browser.evaluate("window.spsrStudy.labelName(26)") == "AA"


def _slot_of(src: str) -> int:
    return int(Path(src).stem)  # images/0003/2.png → slot 2


def test_rank_every_image_export_and_tally(study: dict[str, Any], browser: DevTools) -> None:
    built = study["build"]
    key = built.key
    downloads = study["root"] / "downloads"
    downloads.mkdir()
    browser.call(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(downloads)},
        browser_level=True,
    )
    browser.open_page()
    browser.navigate((built.folder / "index.html").as_uri())
    assert browser.evaluate("document.querySelector('#study-screen').classList.contains('hidden')")

    rater = "Zoë tester"
    browser.type_text("#rater-input", rater)
    browser.click(
        "#start-button",
        then="!document.querySelector('#study-screen').classList.contains('hidden')",
    )

    # The rater prefers SPSR-P > ESRGAN > Bicubic on even images, ESRGAN > SPSR-P > Bicubic on odd.
    expected = np.zeros((3, 3), dtype=int)  # [method, rank - 1]
    seen_images = []
    for _ in range(len(key.images)):
        cards = browser.evaluate(
            "[...document.querySelectorAll('.result-card')].map(c => ["
            " c.dataset.label, c.querySelector('img.result-full').getAttribute('src'),"
            " c.querySelector('img.result-crop').getAttribute('src')])"
        )
        image_index = int(Path(cards[0][1]).parent.name)
        seen_images.append(image_index)
        assert [label for label, _, _ in cards] == ["A", "B", "C"]
        perm = label_permutation(3, key.seed, rater, image_index)
        assert [
            _slot_of(src) for _, src, _ in cards
        ] == perm  # the page shows the Python-predicted order
        assert all(Path(crop).stem == f"{_slot_of(src)}-crop" for _, src, crop in cards)
        preference = (
            ["SPSR-P", "ESRGAN", "Bicubic"]
            if image_index % 2 == 0
            else ["ESRGAN", "SPSR-P", "Bicubic"]
        )
        method_of_label = {
            label: METHODS[key.method_of_slot(image_index, _slot_of(src))]
            for label, src, _ in cards
        }
        rank_of_label = {
            label: preference.index(method) + 1 for label, method in method_of_label.items()
        }
        worst = max(rank_of_label, key=rank_of_label.get)
        # First give rank 1 to the worst result, then to the best: each rank may be used only once.
        for label, rank in [(worst, 1), *sorted(rank_of_label.items(), key=lambda item: item[1])]:
            button = f"button.rank[data-label='{label}'][data-rank='{rank}']"
            is_chosen = f"document.querySelector({json.dumps(button)}).classList.contains('chosen')"
            browser.click(button, then=is_chosen)
        chosen = browser.evaluate(
            "[...document.querySelectorAll('button.rank.chosen')]"
            ".map(b => [b.dataset.label, Number(b.dataset.rank)])"
        )
        assert dict(chosen) == rank_of_label
        for label, rank in rank_of_label.items():
            expected[METHODS.index(method_of_label[label]), rank - 1] += 1
        assert browser.evaluate("!document.querySelector('#next-button').disabled")
        heading = json.dumps(f"Image {len(seen_images) + 1} of {len(key.images)}")
        browser.click(
            "#next-button",
            then=f"document.querySelector('#image-heading').textContent === {heading}"
            " || !document.querySelector('#done-screen').classList.contains('hidden')",
        )
    assert seen_images == presentation_order(len(key.images), key.seed, rater)
    browser.wait_for("!document.querySelector('#done-screen').classList.contains('hidden')")
    assert (
        browser.evaluate("document.querySelector('#progress-text').textContent") == "4 / 4 ranked"
    )

    # Progress survives a reload: the same rater lands on the finished screen.
    browser.navigate((built.folder / "index.html").as_uri())
    assert browser.evaluate("document.querySelector('#rater-input').value") == rater
    browser.click(
        "#start-button",
        then="!document.querySelector('#done-screen').classList.contains('hidden')",
    )

    # Export twice, in two visits (a rater who sends two files): the tally must count them once.
    for attempt in (1, 2):
        if attempt == 2:
            browser.navigate((built.folder / "index.html").as_uri())
            browser.click(
                "#start-button",
                then="!document.querySelector('#done-screen').classList.contains('hidden')",
            )
        browser.click("#export-button-done")
        deadline = time.monotonic() + 20
        while len(list(downloads.glob("*.json"))) < attempt:
            assert time.monotonic() < deadline, f"export {attempt} was not downloaded"
            time.sleep(0.1)
        if (
            attempt == 1
        ):  # as the study runner would file it; Chromium's CDP downloads overwrite same names
            first = next(downloads.glob("*.json"))
            first.rename(downloads / f"first-visit-{first.name}")
    exported = sorted(downloads.glob("*.json"))
    assert len(exported) == 2
    payload = json.loads(exported[0].read_text(encoding="utf-8"))
    assert (
        payload["rater"] == rater
        and payload["study_id"] == key.study_id
        and payload["complete"] is True
    )
    assert not any(name in exported[0].read_text(encoding="utf-8") for name in METHODS)

    result = CliRunner().invoke(
        app, ["tally", str(downloads), "--key", str(built.key_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    tally = json.loads(result.stdout)
    assert tally["votes"] == 4 and tally["raters"] == 1 and tally["rejected"] == []
    assert len(tally["duplicates"]) == 1 and len(tally["duplicates"][0]["ignored"]) == 1
    assert not Path(tally["duplicates"][0]["kept"]).name.startswith(
        "first-visit-"
    )  # the latest export counts
    for m, name in enumerate(METHODS):
        assert [tally["rank_counts"][name][str(r)] for r in (1, 2, 3)] == expected[m].tolist()
    assert tally["rank_counts"]["Bicubic"]["3"] == 4
    assert Path(tally["chart"]).is_file()
