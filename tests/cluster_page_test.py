"""The head's status page in a real browser: headless Chromium driven by selenium through the system
chromedriver reads a live cluster's nodes and jobs, sees a node die, and is refused without the token.
Usage: cluster_page_test.py PATH/TO/weft   (exits 77, "skipped", without chromium, chromedriver or selenium)"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

from weft_cluster import start

WEFT = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build/apps/weft")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
              "--disable-extensions", "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--disable-default-apps"]:
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=o)


class StatusPageTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="weft-page-")
        os.makedirs(self.root + "/run", mode=0o700)
        self.env = dict(os.environ, HOME=self.root, XDG_RUNTIME_DIR=self.root + "/run")
        self.procs = []
        self.addCleanup(self.close)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self, *args, until):
        p, out = start(WEFT, self.env, *args, until=until)
        self.procs.append(p)
        return p, out

    def test_the_page_shows_nodes_and_jobs_and_needs_the_token(self):
        _, out = self.start("--head", "--port", "0", "--page-port", "0", "--no-node", "--node-timeout", "2",
                            until="status page")
        address = re.search(r"listening at (\S+)", out).group(1)
        url = re.search(r"status page:\s+(\S+)", out).group(1)
        node, out = self.start("--address", address, "--slots", "1", "--store-bytes", "67108864", until="joined")
        node_id = re.search(r"weft node (node-\w+)", out).group(1)
        r = subprocess.run([WEFT, "job", "submit", "--", "echo", "from the page test"], env=self.env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        job = re.search(r"job (job-\w+) submitted", r.stderr).group(1)

        # Without the token, or with a wrong one, nothing is shown.
        base = url.split("?")[0]
        for bad in (base, base + "?token=" + "0" * 32, base + "api/status"):
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(bad, timeout=10)
            self.assertEqual(e.exception.code, 401)

        d = browser()
        self.addCleanup(d.quit)
        d.get(url)
        wait = WebDriverWait(d, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#nodes tr[data-node="{node_id}"] td.alive'))
        row = d.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job="{job}"]')
        self.assertIn("SUCCEEDED", row.text)
        self.assertIn("echo from the page test", row.text)
        self.assertIn(address, d.find_element(By.ID, "head").text)
        # A node killed is shown dead at the next refresh after the head notices.
        node.kill()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#nodes tr[data-node="{node_id}"] td.dead'))
        self.assertEqual(d.find_element(By.ID, "error").text, "")
        errors = [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        self.assertEqual(errors, [])
        # It fetches nothing from anywhere but the head.
        host = base.split("/")[2]
        for e in d.get_log("performance"):
            m = re.search(r'"url":"(https?://[^"]+)"', e["message"])
            if m:
                self.assertEqual(m.group(1).split("/")[2], host, m.group(1))


if __name__ == "__main__":
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if webdriver is None or missing:
        print("cluster_page_test: skipped, missing " + (", ".join(missing) or "selenium"), file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
