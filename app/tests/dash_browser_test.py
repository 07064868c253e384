#!/usr/bin/python3
"""The dashboard in a real browser: headless Chromium (Debian's chromium and
chromium-driver, through Debian's python3-selenium) against a live `scansim run --http`.

It creates an item on the items page for one scanner, waits until the page shows it
registered by that scanner with a tag (the run's scripted operator scans and confirms),
checks the form's reasons for bad input, opens the devices page and checks that the
OLEDs are drawn pixel-true (the canvas holds lit pixels), keeps the page open until the
run ends (the page says so, and neither logs an error nor retries), then opens the run's --report
file offline and checks that its charts are drawn. No console errors anywhere.
Screenshots land in REPORTS (build/reports/).

The reports of `scansim test` (one scenario) and `scansim bench` (a small one) are
made alongside and opened the same way. Last, `scansim demo --http` runs in tmux: an item
created on its page is registered with the operator's keys sent to the terminal, and the
page shows the registration and the scanner's OLED.

usage: dash_browser_test.py SCANSIM REPORTS SCENARIO
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

SCANSIM, REPORTS, SCENARIO = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(REPORTS, exist_ok=True)
tmp = tempfile.mkdtemp(prefix="scansim-browser-")
report = os.path.join(tmp, "run-report.html")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def wait_for(what, fn, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def start_run():
    log = open(os.path.join(tmp, "run.log"), "w+")
    p = subprocess.Popen([SCANSIM, "run", "--devices", "12", "--duration", "22s",
                          "--item-rate", "3/s", "--think", "200ms-400ms", "--http", "127.0.0.1:0",
                          "--report", report], stdout=log, stderr=subprocess.STDOUT)

    def url():
        log.seek(0)
        m = re.search(r"dashboard on (http://127\.0\.0\.1:\d+/)", log.read())
        return m and m.group(1)
    return p, wait_for("the dashboard's URL", url), log


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 "--user-data-dir=" + os.path.join(tmp, "profile")]:
        o.add_argument(flag)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def no_console_errors(d, where):
    bad = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    if bad:
        fail(where + ": console errors: " + json.dumps(bad))


def create_item(d, name, qty, device):
    d.find_element(By.ID, "f-name").clear()
    d.find_element(By.ID, "f-name").send_keys(name)
    d.find_element(By.ID, "f-qty").clear()
    d.find_element(By.ID, "f-qty").send_keys(qty)
    dev = d.find_element(By.ID, "f-device")
    if dev.is_enabled():  # disabled in the seed layout: every item goes to every device
        dev.clear()
        dev.send_keys(device)
    d.find_element(By.ID, "f-submit").click()
    return wait_for("the form's answer", lambda: d.find_element(By.ID, "form-msg").text)


def items_page(d, base):
    d.get(base + "#items")
    wait_for("the first push", lambda: "online" in d.find_element(By.ID, "summary").text)
    msg = create_item(d, "x" * 33, "1", "scanner-3")
    if "1 to 32 bytes" not in msg:
        fail("a 33-byte name was not refused with its reason: " + msg)
    d.find_element(By.ID, "form-msg").get_attribute("textContent")
    msg = create_item(d, "pallet 7", "100001", "scanner-3")
    if "quantity" not in msg:
        fail("quantity 100001 was not refused: " + msg)
    d.execute_script("document.getElementById('form-msg').textContent = ''")
    msg = create_item(d, "pallet 7", "5", "scanner-3")
    if "created" not in msg:
        fail("the item was not created: " + msg)

    def registered():
        rows = d.execute_script("return [...document.querySelectorAll('#items-table tbody tr')]"
                                ".map(tr => [...tr.cells].map(td => td.textContent))")
        for cells in rows:
            if len(cells) > 5 and cells[1] == "pallet 7" and cells[4] == "registered" and \
                    re.match(r"scanner-3 \([0-9A-F]{8,20}\)", cells[5]):
                return cells
        return None
    cells = wait_for("'pallet 7' registered by scanner-3 on the page", registered)
    print("items page:", cells)
    d.save_screenshot(os.path.join(REPORTS, "dash_items.png"))

    # The state filter: only registered items, and the count says of how many.
    Select(d.find_element(By.ID, "items-filter")).select_by_value("registered")

    def only_registered():
        states = d.execute_script("return [...document.querySelectorAll('#items-table tbody tr')]"
                                  ".map(tr => tr.cells[4].textContent)")
        count = d.find_element(By.ID, "items-count").text
        return (states, count) if states and set(states) == {"registered"} and \
            "registered)" in count else None
    states, count = wait_for("the items filtered to the registered ones", only_registered)
    print("items filter:", len(states), "rows", count)
    no_console_errors(d, "items page")


def devices_page(d, base):
    d.get(base + "#devices")
    lit = """const c = document.querySelectorAll('#dev-grid canvas'); let n = 0, lit = 0;
      for (const x of c) { const p = x.getContext('2d').getImageData(0, 0, 128, 64).data;
        let l = 0; for (let i = 0; i < p.length; i += 4) if (p[i] > 0x80) l++;
        n++; if (l > 50) lit++; }
      return [n, lit];"""
    n, drawn = wait_for("12 OLEDs drawn", lambda: (lambda r: r if r[1] >= 12 else None)(
        d.execute_script(lit)))
    print("devices page: %d cards, %d OLEDs drawn" % (n, drawn))
    d.save_screenshot(os.path.join(REPORTS, "dash_devices.png"))
    d.find_element(By.ID, "dev-q").send_keys("scanner-1")
    wait_for("the search to narrow the page",
             lambda: "(4 of 12)" in d.find_element(By.ID, "dev-count").text)
    no_console_errors(d, "devices page")
    d.get(base + "#charts")
    wait_for("charts drawn", lambda: d.execute_script(
        "return Object.keys(Chart.instances).length >= 4 && "
        "Object.values(Chart.instances).every(c => c.data.labels.length > 2)"))
    d.save_screenshot(os.path.join(REPORTS, "dash_charts.png"))
    no_console_errors(d, "charts page")


def run_ends_with_page_open(d):
    """The run's end closes the page's event stream: the page says so, without errors."""
    wait_for("the page to say the run has ended", lambda: "the run has ended" in
             d.find_element(By.ID, "summary").text, timeout=70)
    time.sleep(4)  # an EventSource retries after about 3 s: a retry would log an error
    if "the run has ended" not in d.find_element(By.ID, "summary").text:
        fail("the page did not keep the run's end: " + d.find_element(By.ID, "summary").text)
    no_console_errors(d, "the run's end with the page open")


def report_page(d, path, name, charts, text):
    d.get("file://" + path)
    wait_for(name + " report's script", lambda: d.execute_script("return window.scansimReportDone"))
    n = d.execute_script("return Object.values(Chart.instances).filter("
                         "c => c.data.datasets.some(s => s.data.length > 0)).length")
    if n < charts:
        fail("the %s report drew %d charts with data, expected %d" % (name, n, charts))
    body = d.find_element(By.TAG_NAME, "body").text
    if text not in body:
        fail("the %s report does not say '%s'" % (name, text))
    d.save_screenshot(os.path.join(REPORTS, "dash_report_%s.png" % name))
    no_console_errors(d, name + " report")
    shutil.copy(path, os.path.join(REPORTS, "dash_report_%s.html" % name))
    print("%s report: %d charts drawn" % (name, n))


def demo_page(d):
    """`scansim demo --http` in tmux, as a person runs it: an item created on the page
    reaches the scanner's OLED; the operator's keys (t: present a tag, Enter: confirm) go
    to the terminal; the page shows the registration and the scanner's OLED."""
    if not shutil.which("tmux"):
        fail("tmux is not installed (ci/install-deps.sh installs it)")
    sess = "scansim-dash-%d" % os.getpid()
    err = os.path.join(tmp, "demo.err")
    subprocess.run(["tmux", "new-session", "-d", "-s", sess, "-x", "120", "-y", "36",
                    "%s demo --http 127.0.0.1:0 2>%s" % (SCANSIM, err)], check=True)
    try:
        def url():
            if not os.path.exists(err):  # the shell in tmux makes it
                return None
            with open(err) as f:
                m = re.search(r"dashboard on (http://127\.0\.0\.1:\d+/)", f.read())
            return m and m.group(1)
        base = wait_for("the demo's dashboard URL", url)
        d.get(base + "#items")
        wait_for("the demo's first push", lambda: "online 1/1" in d.find_element(By.ID, "summary").text)
        msg = create_item(d, "demo crate", "1", "scanner-1")
        if "created" not in msg:
            fail("the demo did not take the item: " + msg)
        screen = lambda: subprocess.run(["tmux", "capture-pane", "-p", "-t", sess],
                                        capture_output=True, text=True).stdout
        wait_for("the item on the demo's terminal", lambda: "demo crate" in screen())
        subprocess.run(["tmux", "send-keys", "-t", sess, "t"], check=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "send-keys", "-t", sess, "Enter"], check=True)

        def registered():
            rows = d.execute_script("return [...document.querySelectorAll('#items-table tbody tr')]"
                                    ".map(tr => [...tr.cells].map(td => td.textContent))")
            return next((c for c in rows if c[1] == "demo crate" and c[4] == "registered" and
                         c[5].startswith("scanner-1 (")), None)
        cells = wait_for("'demo crate' registered by scanner-1 on the demo's page", registered)
        print("demo items page:", cells)
        d.get(base + "#devices")
        lit = """const x = document.querySelector('#dev-grid canvas'); if (!x) return 0;
          const p = x.getContext('2d').getImageData(0, 0, 128, 64).data; let l = 0;
          for (let i = 0; i < p.length; i += 4) if (p[i] > 0x80) l++; return l;"""
        n = wait_for("the demo scanner's OLED drawn", lambda: d.execute_script(lit) > 50 and
                     d.execute_script(lit))
        print("demo devices page: the OLED has %d lit pixels" % n)
        d.save_screenshot(os.path.join(REPORTS, "dash_demo_devices.png"))
        no_console_errors(d, "the demo's pages")
    finally:
        subprocess.run(["tmux", "send-keys", "-t", sess, "q"])
        time.sleep(1)
        subprocess.run(["tmux", "kill-session", "-t", sess], stderr=subprocess.DEVNULL)


def side_reports():
    """scansim test and bench, each writing its report, while the run goes on."""
    t = subprocess.Popen([SCANSIM, "test", SCENARIO, "--report", os.path.join(tmp, "test.html")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    b = subprocess.Popen([SCANSIM, "bench", "--devices", "10", "--min-items", "200", "--repeat",
                          "1", "--raw-messages", "2000", "--report", os.path.join(tmp, "bench.html")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return t, b


run, base, log = start_run()
side = side_reports()
d = browser()
try:
    items_page(d, base)
    devices_page(d, base)
    run_ends_with_page_open(d)
    try:
        rc = run.wait(timeout=60)
    except subprocess.TimeoutExpired:
        fail("scansim run did not finish")
    if rc != 0:
        log.seek(0)
        fail("scansim run exited %d:\n%s" % (rc, log.read()))
    report_page(d, report, "run", 5, "items_registered")
    if side[0].wait(timeout=60) != 0:
        fail("scansim test %s failed" % SCENARIO)
    report_page(d, os.path.join(tmp, "test.html"), "test", 1, "passed in")
    if side[1].wait(timeout=60) != 0:
        fail("scansim bench failed")
    report_page(d, os.path.join(tmp, "bench.html"), "bench", 2, "raw_ceiling_msg_per_s")
    demo_page(d)
finally:
    for p in side:
        if p.poll() is None:
            p.terminate()
            p.wait()
    d.quit()
    if run.poll() is None:
        run.terminate()
        run.wait()
shutil.rmtree(tmp, ignore_errors=True)
print("PASS")
