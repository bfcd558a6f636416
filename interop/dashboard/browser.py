#!/usr/bin/env python3
"""Drives privca's dashboard in headless Chromium through Selenium (Debian's chromium,
chromium-driver and python3-selenium): login with a TOTP code computed here (RFC 6238,
HMAC-SHA-1, 6 digits, 30 s, checked against the RFC's own vector first), a wrong and a reused
code refused, then every page, a certificate found with the filters, opened, revoked and seen
revoked, a token created; a screenshot of every page, each checked non-blank (python3-pil).
Outside the browser (urllib with the session cookie the browser holds): the security headers,
and form posts without or with a wrong CSRF field answered 403.

Prints `  ok   …` / `  FAIL …` lines; exits 1 when any check failed."""

import argparse
import base64
import hashlib
import hmac
import os
import ssl
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

FAILED = 0
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
WRONG = "Wrong user name, password or code."


def check(what, ok):
    global FAILED
    if ok:
        print(f"  ok   {what}", flush=True)
    else:
        FAILED += 1
        print(f"  FAIL {what}", flush=True)
    return ok


def totp(key, t):
    mac = hmac.new(key, struct.pack(">Q", int(t) // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def secret_of(otpauth):
    q = urllib.parse.parse_qs(urllib.parse.urlparse(otpauth).query)
    b32 = q["secret"][0].upper()
    return base64.b32decode(b32 + "=" * (-len(b32) % 8))


def non_blank(path):
    """More than one colour, and not all white."""
    with Image.open(path) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
    return len(colours) > 1 and any(c != (255, 255, 255) for _, c in colours)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="https://127.0.0.1:9443")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--otpauth", required=True)
    ap.add_argument("--find", required=True, help="a name of the certificate to revoke")
    ap.add_argument("--other", required=True, help="fingerprint of a certificate the CSRF posts aim at")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--out", required=True, help="directory of the screenshots")
    a = ap.parse_args()
    password = open(a.password_file).read().strip()
    check("TOTP here matches RFC 6238's SHA-1 vector (T=59 → 287082)", totp(b"12345678901234567890", 59) == "287082")
    key = secret_of(a.otpauth)
    ui = a.base + "/ui"
    tls = ssl.create_default_context(cafile=a.cafile)

    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1366,1000", "--lang=en-US"]:
        o.add_argument(arg)
    o.accept_insecure_certs = True  # privca's admin certificate chains to the test root only
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(30)
    wait = WebDriverWait(d, 15)
    shots = []

    def shot(name):
        path = os.path.join(a.out, f"{len(shots):02d}-{name}.png")
        d.save_screenshot(path)
        shots.append(path)

    def title_is(t):
        try:
            wait.until(EC.title_is(f"{t} · privca"))
            return True
        except WebDriverException:
            print(f"    (title: {d.title!r}, url: {d.current_url})", flush=True)
            return False

    def login(code):
        d.get(ui + "/login")
        d.find_element(By.NAME, "user").send_keys(a.user)
        d.find_element(By.NAME, "password").send_keys(password)
        d.find_element(By.NAME, "code").send_keys(code)
        d.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()

    def refused():
        try:
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
            return d.find_element(By.CSS_SELECTOR, "p.error").text == WRONG
        except WebDriverException:
            return False

    def nav(label, title):
        d.find_element(By.LINK_TEXT, label).click()
        return title_is(title)

    try:
        d.get(a.base + "/")
        check("/ leads to the login page without a session", title_is("Log in"))
        shot("login")
        now = time.time()
        good = totp(key, now)
        wrong = "%06d" % ((int(good) + 1) % 1_000_000)
        login(wrong)
        check("a wrong TOTP code is refused", refused())
        shot("login-wrong-code")
        login(good)
        check("password and TOTP log in: the overview", title_is("Overview"))
        c = d.get_cookie("privca_session") or {}
        check("session cookie Secure, HttpOnly, SameSite=Strict",
              c.get("secure") is True and c.get("httpOnly") is True and c.get("sameSite") == "Strict")
        check("the overview draws its expiry chart (SVG)", len(d.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")) == 13)
        shot("overview")
        d.find_element(By.CSS_SELECTOR, "form.logout button").click()
        check("log out: back to the login page", title_is("Log in"))
        login(good)
        check("the same TOTP code again is refused (used once)", refused())
        shot("login-reused-code")
        login(totp(key, time.time() + 30))
        check("the next step's code logs in (one step of skew)", title_is("Overview"))

        check("certificates page", nav("Certificates", "Certificates"))
        box = d.find_element(By.NAME, "search")
        box.send_keys(a.find)
        Select(d.find_element(By.NAME, "status")).select_by_value("valid")
        d.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        wait.until(EC.url_contains("search="))
        rows = d.find_elements(By.CSS_SELECTOR, "table tbody tr")
        check(f"filtered to {a.find}: one row", len(rows) == 1 and a.find in rows[0].text)
        shot("certificates-filtered")
        d.find_element(By.PARTIAL_LINK_TEXT, a.find).click()
        check("the certificate's page", title_is(f"CN={a.find}"))
        check("  shows its chain and ledger history",
              "BEGIN CERTIFICATE" in d.page_source and "Ledger history" in d.page_source)
        shot("certificate")
        Select(d.find_element(By.NAME, "reason")).select_by_value("keyCompromise")
        d.find_element(By.CSS_SELECTOR, "button.danger").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "dl.facts .badge")))
        badge = d.find_element(By.CSS_SELECTOR, "dl.facts .badge").text
        check("revoked from its page: the badge reads revoked", badge == "revoked")
        check("  with the reason", "keyCompromise" in d.find_element(By.CSS_SELECTOR, "dl.facts").text)
        shot("certificate-revoked")
        d.get(ui + "/certificates?status=revoked&search=" + urllib.parse.quote(a.find))
        rows = d.find_elements(By.CSS_SELECTOR, "table tbody tr")
        check("the table filtered on revoked lists it", len(rows) == 1 and "revoked" in rows[0].text)
        shot("certificates-revoked")

        check("approvals page", nav("Approvals", "Approvals"))
        shot("approvals")
        buttons = d.find_elements(By.XPATH, "//button[text()='Approve']")
        if check("  the gated request is queued", len(buttons) == 1):
            buttons[0].click()
            check("  approved: the queue shows it issued", title_is("Approvals") and "issued" in d.page_source)
            shot("approvals-decided")
        for label, title, name in [("Discovery", "Discovery", "discovery"), ("Owners", "Owners", "owners"),
                                   ("Audit log", "Audit log", "audit"), ("Users and tokens", "Users and tokens", "access"),
                                   ("New key (PKCS#12)", "Server-generated key (PKCS#12)", "keystore")]:
            check(f"{name} page", nav(label, title))
            shot(name)
        d.get(ui + "/audit")
        src = d.page_source
        check("the audit log lists the revocation, the logins and the failed ones",
              "revoked" in src and "admin-login-failed" in src and "admin-login" in src)
        d.find_element(By.LINK_TEXT, "Users and tokens").click()
        Select(d.find_element(By.NAME, "role")).select_by_value("auditor")
        d.find_element(By.NAME, "note").send_keys("browser test")
        d.find_element(By.XPATH, "//button[text()='Create']").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".notice pre")))
        check("a new API token is shown once", d.find_element(By.CSS_SELECTOR, ".notice pre").text.startswith("pca_"))
        shot("access-token-created")

        # Outside the browser, with its session cookie.
        jar = f"privca_session={d.get_cookie('privca_session')['value']}"

        def call(path, data=None):
            req = urllib.request.Request(ui + path, data=data, headers={"Cookie": jar})
            try:
                with urllib.request.urlopen(req, context=tls) as r:
                    return r.status, r.headers
            except urllib.error.HTTPError as e:
                return e.code, e.headers

        status, h = call("/")
        check("headers: the strict Content-Security-Policy", h.get("Content-Security-Policy") == CSP)
        check("  nosniff, no-referrer, no-store",
              (h.get("X-Content-Type-Options"), h.get("Referrer-Policy"), h.get("Cache-Control"))
              == ("nosniff", "no-referrer", "no-store"))
        status, _ = call(f"/certificates/{a.other}/revoke", b"reason=keyCompromise")
        check("a POST without the CSRF field: 403", status == 403)
        status, _ = call(f"/certificates/{a.other}/revoke", b"csrf=forged&reason=keyCompromise")
        check("a POST with a wrong CSRF field: 403", status == 403)
        status, _ = call("/access/tokens", b"role=admin&days=1")
        check("a token form without the CSRF field: 403", status == 403)
    except WebDriverException as e:
        check(f"browser session ({e.msg})", False)
        try:
            shot("failure")
        except WebDriverException:
            pass
    finally:
        d.quit()
    for p in shots:
        check(f"screenshot {os.path.basename(p)} is not blank", non_blank(p))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
