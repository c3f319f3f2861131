"""A browser's way into Airflow, and into Trino, through Keycloak (authorization code flow), with
``requests``: the service's login sends it to Keycloak, Keycloak's login form sends it back with a
code. Shared by the local stack's and the cluster's login tests."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import requests

from santelake.names import AIRFLOW_CLIENT, TRINO_AUDIENCE

TIMEOUT = 60  # the first authorisation check of an API server process warms it up, on 2 busy cores


class LoginForm(HTMLParser):
    """Keycloak's login page: where its form posts, and its hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "kc-form-login":
            self.action, self._inside = attributes.get("action"), True
        elif tag == "input" and self._inside and attributes.get("name"):
            self.fields[str(attributes["name"])] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def session(ca: str) -> requests.Session:
    verified = requests.Session()
    verified.trust_env = False  # REQUESTS_CA_BUNDLE would override the CA below
    verified.verify = ca
    return verified


def log_in(airflow: str, issuer: str, ca: str, user: str, password: str) -> requests.Session:
    """``user`` logged in to the Airflow at ``airflow`` through the realm at ``issuer``: the session
    with Airflow's cookie. Each hop's address and parameters are checked on the way."""
    browser = session(ca)
    start = browser.get(f"{airflow}/auth/login", allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code in (302, 303, 307), start.text
    to_keycloak = start.headers["location"]
    assert to_keycloak.startswith(f"{issuer}/protocol/openid-connect/auth?"), to_keycloak
    asked = parse_qs(urlsplit(to_keycloak).query)
    assert asked["client_id"] == [AIRFLOW_CLIENT] and asked["response_type"] == ["code"]
    assert asked["redirect_uri"] == [f"{airflow}/auth/login_callback"]

    page = browser.get(to_keycloak, timeout=TIMEOUT)
    assert page.status_code == 200, page.text[-2000:]
    form = LoginForm()
    form.feed(page.text)
    assert form.action and form.action.startswith(f"{issuer}/login-actions/"), form.action
    answer = browser.post(form.action, data=form.fields | {"username": user, "password": password},
                          allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, f"Keycloak refused {user}'s login: {answer.text[-2000:]}"
    back = answer.headers["location"]
    assert back.startswith(f"{airflow}/auth/login_callback?"), back
    assert "code" in parse_qs(urlsplit(back).query)

    done = browser.get(back, allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == airflow
    assert browser.cookies.get("_token"), "Airflow set no session cookie"
    return browser


def log_in_to_trino(link: str, trino: str, issuer: str, ca: str, user: str, password: str) -> None:
    """What a researcher does with the link their tool shows (Trino CLI, JDBC, Python's client): open
    it, log in to Keycloak as ``user``, be sent back to Trino at ``trino``. Each hop is checked:
    Trino's own client at Keycloak, Trino's own callback."""
    agent = session(ca)
    assert link.startswith(f"{trino}/oauth2/token/initiate/"), link
    start = agent.get(link, allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code in (302, 303, 307), start.text[-2000:]
    to_keycloak = start.headers["location"]
    assert to_keycloak.startswith(f"{issuer}/protocol/openid-connect/auth?"), to_keycloak
    asked = parse_qs(urlsplit(to_keycloak).query)
    assert asked["client_id"] == [TRINO_AUDIENCE] and asked["response_type"] == ["code"]
    assert asked["redirect_uri"] == [f"{trino}/oauth2/callback"], asked
    page = agent.get(to_keycloak, timeout=TIMEOUT)
    form = LoginForm()
    form.feed(page.text)
    assert form.action and form.action.startswith(f"{issuer}/login-actions/"), page.text[-2000:]
    answer = agent.post(form.action, data=form.fields | {"username": user, "password": password},
                        allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, f"Keycloak refused {user}'s login: {answer.text[-2000:]}"
    back = answer.headers["location"]
    assert back.startswith(f"{trino}/oauth2/callback?"), back
    done = agent.get(back, allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 200, done.text[-2000:]
