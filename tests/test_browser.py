"""A real browser: JupyterLab on localhost, notebook 00 run in headless Chromium, a screenshot kept.

    COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_browser.py -v -s

What it proves that nbval cannot: the course opens in JupyterLab, "Run All Cells" finishes without an
error output, and the ipywidgets front end renders the profile picker (ToggleButtons + HTML) and reacts
to a click. The screenshot goes to artifacts/screenshots/00_setup.png.

Needs Debian's `chromium` and PyPI's `playwright` (the driver only: `playwright install` would download a
browser of its own, which these machines refuse). `make test` runs scripts/install_browser.sh first,
which installs both where it can (root + apt-get). Elsewhere the test skips and says how to enable it.

Kept on this machine: the server listens on 127.0.0.1 only, with a token; the browser resolves no host
name but the loopback, and a request elsewhere fails the test; the server's own online features (news
feed, update check, PyPI extension manager) are switched off; the notebook is run from an output-free
copy in a temporary folder with autosave off, so the committed notebook is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from helpers.core.netguard import is_loopback
from helpers.course.artifacts import REPO_ROOT, artifacts_dir

NOTEBOOK = REPO_ROOT / "notebooks" / "00_setup.ipynb"
HOW_TO_ENABLE = ("install Debian's chromium (`apt-get install chromium`, or run scripts/install_browser.sh "
                 "as root) and `pip install playwright`, or set COURSE_CHROMIUM=/path/to/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-proxy-server",  # loopback only: never route localhost through a proxy
                  # Every host name but the loopback resolves to nothing, inside the browser itself (a
                  # Playwright route would stall the page whenever the test's Python thread is busy).
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]
SERVER_START_TIMEOUT = 120  # s: a cold JupyterLab on a busy 2-core machine takes 10-30 s
RUN_ALL_TIMEOUT = 600  # s: notebook 00 under ci takes well under a minute; the margin is for a busy machine
# Lab settings for a hermetic run: no autosave (the copy is throw-away anyway), every cell in the DOM
# (JupyterLab can virtualise long notebooks, which would hide cells from the checks), no news / updates.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                   "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"  # errors render as stderr


def find_chromium() -> str | None:
    """COURSE_CHROMIUM if set, else a chromium on PATH / in /usr/bin; None when there is none."""
    explicit = os.environ.get("COURSE_CHROMIUM")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            pytest.fail(f"COURSE_CHROMIUM={explicit} is not an executable file: point it at a chromium")
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGINT twice is Jupyter's clean shutdown (kernels too); SIGKILL the group only if that hangs."""
    if proc.poll() is not None:
        return
    for _ in range(2):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _skip_or_path() -> str:
    """The Chromium to drive, or a skip that says how to enable the test."""
    path = find_chromium()
    if path is None:
        pytest.skip(f"no Chromium found; to enable the browser test, {HOW_TO_ENABLE}")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip(f"playwright is not installed; to enable the browser test, {HOW_TO_ENABLE}")
    return path


@pytest.fixture
def chromium() -> str:
    return _skip_or_path()


@contextlib.contextmanager
def serve_blank_copy(notebook: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab on 127.0.0.1 serving an output-free copy of `notebook`; yields (base_url, token)."""
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:  # start from a blank notebook: stored outputs must not pass for fresh ones
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, root / notebook.name)
    settings = tmp_path / "lab-settings"
    for rel, values in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(values))
    token, port = secrets.token_hex(16), free_port()
    env = {
        **os.environ,
        "COURSE_PROFILE": "ci",
        "COURSE_BLOCK_NETWORK": "1",  # the kernel imports helpers, which installs the network guard
        "COURSE_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # ignore the user's own configuration
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root; the server still listens on loopback only
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # own process group: a hung server is killed whole
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/api/status?token={token}", proc, log)
        yield base, token
    finally:
        stop(proc)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with serve_blank_copy(NOTEBOOK, tmp_path) as server:
        yield server


def wait_for_kernel(base: str, token: str, notebook: str) -> None:
    """Wait for the server to report an idle kernel (the page shows 'idle' before a kernel exists)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        with opener.open(f"{base}/api/sessions?token={token}", timeout=10) as response:
            sessions = json.load(response)
        if any(s["path"].endswith(notebook) and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions):
            return
        time.sleep(0.5)
    pytest.fail(f"no idle kernel for {notebook} after {SERVER_START_TIMEOUT} s: the kernel did not start")


def run_all_and_wait(page, n_code_cells: int) -> None:
    """Run -> Run All Cells from the menu bar, then wait until every code cell has an execution count.

    Subtle: a Run All issued while the page is still connecting to its kernel is dropped silently, so
    the click is repeated (at most 3 times) until the first code cell shows it started ([*] or [1]).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    prompts = ".jp-Notebook .jp-CodeCell .jp-InputArea-prompt"
    first = page.locator(prompts).first
    for attempt in range(3):
        select = page.locator(".jp-Dialog button", has_text="Select")
        if select.count():  # "Select Kernel" dialog: older labs ignore autoStartDefaultKernel
            select.first.click()
        page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Run$")).click()
        # exact: "Restart Kernel and Run All Cells…" is in the same menu
        page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function("el => el.textContent.trim() !== '[ ]:'", arg=first.element_handle(),
                                   timeout=30_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    # Done when every cell has a number, or early when a cell shows a traceback (Run All stops there).
    page.wait_for_function(
        """([sel, n, err]) => {
            const p = [...document.querySelectorAll(sel)].map(e => e.textContent.trim());
            const failed = [...document.querySelectorAll(err)].some(e => e.textContent.includes("Traceback"));
            return failed || (p.length === n && p.every(t => /^\\[\\d+\\]:$/.test(t)));
        }""",
        arg=[prompts, n_code_cells, STDERR], timeout=RUN_ALL_TIMEOUT * 1000, polling=1000)


def error_outputs(page) -> list[str]:
    """Python errors (JupyterLab renders them as stderr holding a traceback) and widgets that failed."""
    tracebacks = [t for t in page.locator(STDERR).all_inner_texts() if "Traceback (most recent call" in t]
    widgets = page.locator(".jp-OutputArea-output", has_text="Error displaying widget").all_inner_texts()
    return tracebacks + widgets


@pytest.mark.slow
def test_notebook_00_runs_in_jupyterlab_and_renders_its_widget(chromium: str, lab) -> None:
    from playwright.sync_api import sync_playwright

    base, token = lab
    n_code = sum(c.cell_type == "code" for c in nbformat.read(NOTEBOOK, as_version=4).cells)
    off_machine: list[str] = []
    shot = artifacts_dir("screenshots") / "00_setup.png"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
                                     chromium_sandbox=False)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        # Requests to other machines fail (--host-resolver-rules); record any the page attempts.
        def record(request):  # noqa: ANN001 - playwright's Request
            if request.url.startswith(("http:", "https:", "ws:", "wss:")) and not is_loopback(
                    urlparse(request.url).hostname):
                off_machine.append(request.url)

        context.on("request", record)
        page = context.new_page()
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            wait_for_kernel(base, token, NOTEBOOK.name)
            run_all_and_wait(page, n_code)

            errors = error_outputs(page)
            assert not errors, "cells showed errors:\n" + "\n---\n".join(e[-1500:] for e in errors)

            toggles = page.locator(".jp-OutputArea-output .widget-toggle-buttons").first
            toggles.wait_for(state="visible", timeout=60_000)
            html = page.locator(".jp-OutputArea-output .widget-html").last
            assert html.inner_text().strip(), "the widget's HTML part rendered empty"
            assert toggles.locator("button").count() == 3, "expected one button per profile (ci, cpu, gpu)"

            # The widget is live: clicking another profile updates the description via the kernel.
            before = html.inner_text()
            toggles.locator("button", has_text="cpu").click()
            page.wait_for_function("([el, old]) => el.innerText !== old",
                                   arg=[html.element_handle(), before], timeout=60_000)
            toggles.locator("button", has_text="ci").click()  # back to the profile the notebook runs
            page.wait_for_function("([el, old]) => el.innerText === old",
                                   arg=[html.element_handle(), before], timeout=60_000)

            toggles.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(shot.with_name("00_setup_failure.png")))
            raise
        finally:
            context.close()
            browser.close()

    assert not off_machine, f"the page tried to reach other machines: {off_machine}"
    assert shot.stat().st_size > 10_000, "the screenshot is suspiciously small"


def test_without_chromium_the_skip_says_how_to_enable_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_CHROMIUM", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert find_chromium() is None
    with pytest.raises(pytest.skip.Exception, match="COURSE_CHROMIUM=/path"):
        _skip_or_path()


def test_a_wrong_course_chromium_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COURSE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(pytest.fail.Exception, match="COURSE_CHROMIUM=.*not an executable"):
        find_chromium()
