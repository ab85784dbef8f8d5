"""weft serve's chat page (GET /) in a real browser: headless Chromium driven by selenium through the
system chromedriver. It types and sends messages as a user would, watches the reply stream in, reads the
live figures, and checks that the page fetches nothing from elsewhere and logs no errors.
Usage: serve_page_test.py PATH/TO/weft   (exits 77, "skipped", without chromium, chromedriver or selenium;
WEFT_PAGE_SCREENSHOT names where the screenshot goes, by default weft-serve-page.png in the temp dir)"""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from weft_server import WeftServer  # noqa: E402

WEFT = sys.argv.pop(1) if len(sys.argv) > 1 else "build/apps/weft"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT = os.environ.get("WEFT_PAGE_SCREENSHOT") or os.path.join(tempfile.gettempdir(), "weft-serve-page.png")
WAIT = 90  # seconds any one thing may take on a slow, shared machine

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

# Records every text the newest assistant message shows, with the Send button's state at that moment:
# a text node added by `textContent = ...` is the text as it was then, however the callbacks batch.
OBSERVE = """
window.seen = [];
new MutationObserver(records => {
  const send = document.getElementById('send');
  for (const r of records)
    if (r.target.classList && r.target.classList.contains('assistant'))
      for (const n of r.addedNodes)
        window.seen.push({text: n.textContent, busy: send.disabled, at: performance.now()});
}).observe(document.getElementById('log'), {childList: true, subtree: true});
"""


class Server(WeftServer):
    def __init__(self):
        super().__init__(WEFT)

    def metrics(self):
        return super().metrics(summed=True, timeout=WAIT)

    def chat(self, body):
        req = urllib.request.Request(self.url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return json.loads(r.read())


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
              "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--disable-default-apps", "--metrics-recording-only"]:
        o.add_argument(a)
    # 'browser': the console; 'performance': DevTools network events, every request the page makes.
    o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # A driver path given to Service means selenium never looks for (or downloads) one itself.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=o)


@unittest.skipIf(webdriver is None, "selenium is not installed")
class ChatPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server()
        try:
            cls.d = browser()
        except Exception:
            cls.s.stop()
            raise
        cls.d.set_page_load_timeout(WAIT)
        cls.d.set_script_timeout(WAIT)
        cls.net = []  # Network.* events so far (reading the performance log drains it)

    @classmethod
    def tearDownClass(cls):
        cls.d.quit()
        assert cls.s.stop() == 0, "weft serve did not stop cleanly"

    def tearDown(self):
        if not getattr(self, "shot", False):  # failed part way: keep a picture of where the page got to
            self.d.save_screenshot(SCREENSHOT)
            print(f"\nscreenshot: {SCREENSHOT}", file=sys.stderr)

    def wait(self, what, timeout=WAIT):
        return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda d: what(), message=what.__doc__)

    def network(self):
        for e in self.d.get_log("performance"):
            m = json.loads(e["message"])["message"]
            if m["method"].startswith("Network."):
                self.net.append(m)
        return self.net

    def chat_requests(self):
        return [m["params"] for m in self.network() if m["method"] == "Network.requestWillBeSent"
                and m["params"]["request"]["url"].endswith("/v1/chat/completions")]

    def finished(self, request_id):
        return any(m["method"] in ("Network.loadingFinished", "Network.loadingFailed")
                   and m["params"]["requestId"] == request_id for m in self.network())

    def console_errors(self):
        return [e for e in self.d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]

    def figures(self):
        rows = self.d.execute_script(
            "return [...document.querySelectorAll('#figs tr')].map(r => [...r.cells].map(c => c.textContent))")
        return {r[0]: r[1] for r in rows if len(r) == 2}

    def figure(self, name):
        v = self.figures().get(name)
        return float("nan") if v is None else float(v.rstrip("%"))  # nan: never passes a comparison

    def texts(self, cls):
        return self.d.execute_script(f"return [...document.querySelectorAll('#log .{cls}')].map(e => e.textContent)")

    def converse(self, submit):
        """Sends the message typed with submit() and follows the reply to its end. Returns what the page sent,
        the final reply shown and every text the reply showed on the way."""
        before = len(self.chat_requests())
        n = len(self.texts("assistant"))
        self.d.execute_script("window.seen = [];")
        submit()

        def sent():
            """the page posts to /v1/chat/completions"""
            return len(self.chat_requests()) > before
        self.wait(sent)
        req = self.chat_requests()[before]

        def done():
            """the streamed chat completion finishes"""
            return self.finished(req["requestId"])
        self.wait(done)

        def idle():
            """the page takes the Send button back once the reply is complete"""
            return self.d.find_element(By.ID, "send").is_enabled()
        self.wait(idle)
        texts = self.texts("assistant")
        self.assertEqual(len(texts), n + 1)
        seen = self.d.execute_script("return window.seen")
        return json.loads(req["request"]["postData"]), texts[-1], seen

    def check_streamed(self, reply, seen, expected):
        self.assertTrue(reply.strip(), "the reply is empty")
        self.assertEqual(reply, expected)
        shown = [e["text"] for e in seen if e["text"]]
        self.assertEqual(shown[-1], reply)
        # The reply grew in steps, each text a prefix of the next, and part of it was on screen while
        # the answer was still streaming (Send disabled) and well before the last of it arrived.
        self.assertGreaterEqual(len(shown), 3, seen)
        for a, b in zip(shown, shown[1:]):
            self.assertTrue(b.startswith(a), (a, b))
        first = next(e for e in seen if e["text"])
        self.assertTrue(first["busy"])
        self.assertLess(len(first["text"]), len(reply))
        self.assertGreater(seen[-1]["at"] - first["at"], 50)

    def test_chat_page(self):
        d, url = self.d, self.s.url
        origin = urllib.parse.urlsplit(url)
        t0 = time.monotonic()
        d.get(url + "/")
        self.assertEqual(d.title, "weft")
        model = urllib.request.urlopen(url + "/v1/models", timeout=WAIT).read().decode()
        model = json.loads(model)["data"][0]["id"]

        def model_shown():
            """the page shows the served model's name"""
            return d.find_element(By.ID, "model").text == model
        self.wait(model_shown)

        def figures_shown():
            """the live figures table fills in"""
            f = self.figures()
            return all(k in f for k in ("running", "requests finished", "prompt tokens", "tokens generated"))
        self.wait(figures_shown)
        self.assertEqual(self.figure("requests finished"), 0)
        self.assertEqual(self.figure("tokens generated"), 0)
        d.execute_script(OBSERVE)

        # First turn: type, press Enter.
        box = d.find_element(By.ID, "msg")
        first = "Write a short story about a robot who learns to paint."
        box.send_keys(first)
        body, reply, seen = self.converse(lambda: box.send_keys(Keys.ENTER))
        self.assertEqual(box.get_attribute("value"), "")
        self.assertEqual(self.texts("user"), ["> " + first])
        self.assertTrue(body["stream"])
        self.assertEqual(body["messages"], [{"role": "user", "content": first}])
        m = self.s.metrics()  # before the reference request below adds to them
        # Greedy decoding: the same request unstreamed gives the text the page pieced together.
        ref = self.s.chat({**body, "stream": False})
        self.check_streamed(reply, seen, ref["choices"][0]["message"]["content"])
        self.assertFalse(d.find_elements(By.CSS_SELECTOR, "#log .error"))
        if ref["choices"][0]["finish_reason"] == "length":  # the page says the reply was cut short
            self.assertIn("token limit", d.find_elements(By.CSS_SELECTOR, "#log .assistant + .note")[-1].text)
        self.assertEqual(self.console_errors(), [])

        def figures_caught_up():
            """the live figures count the finished request and its tokens"""
            return (self.figure("requests finished") >= 1 and self.figure("running") == 0
                    and self.figure("tokens generated") >= m["weft_generation_tokens_total"] > 0
                    and self.figure("prompt tokens") >= m["weft_prompt_tokens_total"] > 0)
        self.wait(figures_caught_up)

        # A message far over the context (a long paste) gets the server's error shown in place of a reply,
        # gives the Send button back, and is left out of the conversation sent next.
        d.execute_script("arguments[0].value = 'word '.repeat(20000);", box)
        d.find_element(By.ID, "send").click()

        def error_shown():
            """an oversized message shows the server's error"""
            e = d.find_elements(By.CSS_SELECTOR, "#log .assistant.error")
            return e and e[-1].text.startswith("error: ") and d.find_element(By.ID, "send").is_enabled()
        self.wait(error_shown)
        self.assertEqual(box.get_attribute("value"), "")
        self.assertEqual([e["message"].split(" - ")[0] for e in self.console_errors()], [url + "/v1/chat/completions"])

        # Second turn: Shift+Enter makes a new line rather than sending; the button sends, with the history.
        box.send_keys("Thanks!", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "Now give it a name.")
        self.assertEqual(box.get_attribute("value"), "Thanks!\nNow give it a name.")
        self.assertEqual(len(self.chat_requests()), 2)
        body, reply2, seen = self.converse(lambda: d.find_element(By.ID, "send").click())
        self.assertEqual(body["messages"], [{"role": "user", "content": first}, {"role": "assistant", "content": reply},
                                            {"role": "user", "content": "Thanks!\nNow give it a name."}])
        self.assertTrue(reply2.strip())
        self.assertEqual([e["text"] for e in seen if e["text"]][-1], reply2)
        m2 = self.s.metrics()
        self.assertGreater(m2["weft_generation_tokens_total"], m["weft_generation_tokens_total"])

        def figures_moved():
            """the live figures count the second request"""
            return (self.figure("requests finished") >= m2["weft_request_success_total"] >= 3
                    and self.figure("tokens generated") >= m2["weft_generation_tokens_total"])
        self.wait(figures_moved)

        # Everything the page asked for came from the server that served it.
        requests = [m["params"]["request"]["url"] for m in self.network() if m["method"] == "Network.requestWillBeSent"]
        self.assertIn(url + "/metrics", requests)
        for r in requests:
            u = urllib.parse.urlsplit(r)
            if u.scheme not in ("data", "blob"):
                self.assertEqual((u.scheme, u.netloc), (origin.scheme, origin.netloc), r)
        for r in d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"):
            self.assertTrue(r.startswith(url + "/"), r)
        self.assertIsNone(re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(""",
                                    d.page_source, re.I))

        # Laid out as meant: the conversation beside the figures, the input and button in view, the last
        # message scrolled into view.
        vw, vh = d.execute_script("return [innerWidth, innerHeight]")
        main, aside = [d.find_element(By.TAG_NAME, t).rect for t in ("main", "aside")]
        self.assertLessEqual(main["x"] + main["width"], aside["x"] + 1)
        for i in ("msg", "send", "log", "figs"):
            e = d.find_element(By.ID, i)
            r = e.rect
            self.assertTrue(e.is_displayed(), i)
            self.assertTrue(r["x"] >= 0 and r["y"] >= 0 and r["x"] + r["width"] <= vw + 1
                            and r["y"] + r["height"] <= vh + 1, (i, r, vw, vh))
        self.assertTrue(d.execute_script(
            "const l = document.getElementById('log');"
            "return l.scrollHeight - l.scrollTop - l.clientHeight < 2;"))

        d.save_screenshot(SCREENSHOT)
        self.shot = True
        with open(SCREENSHOT, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print(f"\nscreenshot: {SCREENSHOT}  ({time.monotonic() - t0:.1f} s in the page)", file=sys.stderr)

        self.assertEqual(self.console_errors(), [])


if __name__ == "__main__":
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if webdriver is None or missing:
        print("serve_page_test: skipped, missing " + (", ".join(missing) or "selenium"), file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
