"""``a2v app`` in a real browser: the Gradio page served by the command line, driven by headless
Chromium through Selenium (Debian's ``chromium`` and ``chromium-driver``; no browser download).

A real GRID frame and 2.5 s of its clip's speech go in, the video comes out: its file (downloaded
from the page's own URL) lasts as long as the audio to within a frame, and the browser plays it. A
photo with no face gives the page's error line, not a traceback. CI (``A2V_CI=1``) installs the
browser and makes the test required; elsewhere it skips without one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest
import soundfile

from a2v.io.audio import load_audio
from a2v.io.video import probe_video, read_frames
from conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None)
AUDIO_S = 2.5  # seconds of speech: 62.5 frames at 25 fps, not a whole number of frames


def _missing() -> list[str]:
    missing = [name for name, found in (("chromium", CHROMIUM), ("chromedriver (chromium-driver)", CHROMEDRIVER)) if not found]
    for module in ("gradio", "selenium"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


MISSING = _missing()
if MISSING and not os.environ.get("A2V_CI"):
    pytest.skip(f"no {', '.join(MISSING)} here (apt-get install chromium chromium-driver; pip install -r requirements.txt)",
                allow_module_level=True)


@pytest.fixture(scope="session")  # session scope: checked before the session fixtures (shard, checkpoint) are built
def tools():
    if MISSING:
        pytest.fail(f"A2V_CI is set but {', '.join(MISSING)} missing (.ci/run installs chromium and chromium-driver as root)")


@pytest.fixture(scope="module")
def app(tools, sdgan_checkpoint, tmp_path_factory):
    """``a2v app`` started on a free port with the tiny SDGAN checkpoint: the process, its URL and its log."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "a2v", "app", "--checkpoint", str(sdgan_checkpoint), "--port", str(port),
                                 "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}/", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(app, browser) -> str:
    """The app's URL once it answers (the browser starts meanwhile)."""
    proc, url, log = app
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"a2v app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return url
        except OSError:
            pass
        assert time.monotonic() < deadline, f"a2v app did not answer within 120 s:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def browser(tools, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1600",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def inputs(s1_clip, tmp_path_factory):
    """A real GRID frame with its speaker's face (PNG), 2.5 s of the same clip's speech (WAV,
    44.1 kHz) and a 96×96 background patch of the frame with no face."""
    tmp = tmp_path_factory.mktemp("inputs")
    frame = read_frames(s1_clip)[0]
    cv2.imwrite(str(tmp / "face.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp / "wall.png"), cv2.cvtColor(frame[:96, :96], cv2.COLOR_RGB2BGR))
    soundfile.write(tmp / "speech.wav", load_audio(s1_clip, 44100)[: int(AUDIO_S * 44100)], 44100)
    return {"face": tmp / "face.png", "wall": tmp / "wall.png", "speech": tmp / "speech.wav"}


def _wait(driver, condition, timeout: float, what: str):
    """Poll ``condition(driver)`` until it is truthy (elements the page re-renders meanwhile are
    looked up again); its value."""
    from selenium.common.exceptions import (ElementClickInterceptedException, JavascriptException, NoSuchElementException,
                                            StaleElementReferenceException)
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException, JavascriptException, ElementClickInterceptedException)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=ignored).until(condition)
    except Exception as exc:
        raise AssertionError(f"{what} within {timeout} s (status box: {_status(driver)!r})") from exc


def _submit(driver, url: str, image: Path, audio: Path) -> None:
    """Load the page, upload the photo and the audio, wait for both uploads, press Generate."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#image input[type=file]"), 30, "the photo upload appears")
    driver.find_element(By.CSS_SELECTOR, "#image input[type=file]").send_keys(str(image))
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#image img"), 30, "the photo is uploaded and shown")
    _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#audio input[type=file]"), 30, "the audio upload appears")
    driver.find_element(By.CSS_SELECTOR, "#audio input[type=file]").send_keys(str(audio))
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#audio input[type=file]"), 30, "the audio is uploaded")
    _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#generate").click() or True, 30, "Generate is pressed")


def _status(driver) -> str:
    """The status box's text ("" before the page has one)."""
    try:
        return driver.execute_script("const t = document.querySelector('#status textarea'); return t ? t.value : ''")
    except Exception as exc:  # the page is gone or navigating
        return f"(unreadable: {exc.__class__.__name__})"


def test_page_generates_a_video_the_browser_plays(server, browser, inputs, tmp_path):
    """Photo + speech uploaded, Generate pressed: the <video> gets the file, which lasts the audio's
    2.5 s to within one frame (ffmpeg on the downloaded file, and the browser's own duration), and
    plays (currentTime moves past 0 with decoded data)."""
    start = time.monotonic()
    _submit(browser, server, inputs["face"], inputs["speech"])
    src = _wait(browser, lambda d: d.execute_script("const v = document.querySelector('#video video'); return v && v.src"),
                120, "the video appears")
    seconds = time.monotonic() - start
    status = _status(browser)
    assert "done:" in status and "face found" in status, status
    out = tmp_path / "downloaded.mp4"
    with urllib.request.urlopen(src, timeout=30) as r, open(out, "wb") as f:
        shutil.copyfileobj(r, f)
    info = probe_video(out)
    assert info.has_audio and (info.width, info.height) == (360, 288) and info.fps == 25
    assert abs(info.duration_s - AUDIO_S) <= 1 / 25, info
    played = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const v = document.querySelector('#video video');
        v.muted = true;
        v.play().catch(e => done({error: String(e)}));
        const t0 = performance.now();
        (function poll() {
            if (v.currentTime > 0 && v.readyState >= 2) return done({time: v.currentTime, state: v.readyState, duration: v.duration});
            if (v.error) return done({error: 'media error ' + v.error.code + ' ' + v.error.message});
            if (performance.now() - t0 > 20000) return done({error: 'not playing', time: v.currentTime, state: v.readyState});
            setTimeout(poll, 50);
        })();""")
    print(f"page: {seconds:.1f} s from upload to video; file {info.duration_s:.3f} s (ffmpeg), browser duration "
          f"{played.get('duration')}, currentTime {played.get('time')} after play(), readyState {played.get('state')}")
    assert "error" not in played, played
    assert played["time"] > 0 and played["state"] >= 2
    assert abs(played["duration"] - AUDIO_S) <= 1 / 25
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(u.startswith(server) or u.startswith(("data:", "blob:")) for u in fetched), fetched  # offline page


def test_page_says_when_the_photo_has_no_face(server, browser, inputs):
    """A background patch with no face: the status box names the file and says no face was found;
    no video, no traceback."""
    _submit(browser, server, inputs["wall"], inputs["speech"])
    status = _wait(browser, lambda d: _status(d).strip(), 120, "the status box reports")
    assert status.startswith("error:") and "no face found" in status and "Traceback" not in status, status
    assert not browser.execute_script("const v = document.querySelector('#video video'); return v && v.src")
