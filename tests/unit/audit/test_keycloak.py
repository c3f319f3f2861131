"""Keycloak's events into the trail: each copied once, in order, from where the trail stopped."""

from __future__ import annotations

import json

from santelake.audit.keycloak import Cursor, cursor_from, entry


def event(n: int, at: int, kind: str = "LOGIN", user: str = "alice") -> dict[str, object]:
    return {"id": f"e{n}", "time": at, "type": kind, "userId": "u-1", "details": {"username": user}}


def test_a_cursor_lets_through_what_is_newer_or_new_at_its_own_time() -> None:
    cursor = Cursor()
    cursor.advance(event(1, 100))
    cursor.advance(event(2, 100))
    assert [cursor.after(e) for e in (event(1, 100), event(2, 100), event(3, 100), event(4, 99), event(5, 101))] \
        == [False, False, True, False, True]
    cursor.advance(event(5, 101))
    assert (cursor.time, cursor.ids) == (101, {"e5"})


def test_the_trail_gives_each_streams_cursor_back() -> None:
    newest_first = [
        ("keycloak.admin_event", json.dumps({"event": {"id": "a9", "time": 50}})),
        ("keycloak.event", json.dumps({"event": event(3, 200)})),
        ("keycloak.event", json.dumps({"event": event(2, 200)})),
        ("keycloak.event", json.dumps({"event": event(1, 150)})),
    ]
    cursors = cursor_from(iter(newest_first))
    assert (cursors["keycloak.event"].time, cursors["keycloak.event"].ids) == (200, {"e2", "e3"})
    assert (cursors["keycloak.admin_event"].time, cursors["keycloak.admin_event"].ids) == (50, {"a9"})


def test_a_login_names_its_user_and_an_admin_change_its_author() -> None:
    login = entry("keycloak.event", event(1, 100, "LOGIN_ERROR", "mallory"), lambda uid: "unused")
    assert (login.kind, login.actor, login.subject) == ("keycloak.event", "mallory", "LOGIN_ERROR")
    change = entry("keycloak.admin_event", {"id": "a1", "time": 5, "operationType": "UPDATE",
                                            "resourcePath": "groups/g-1", "authDetails": {"userId": "u-9"}},
                   lambda uid: {"u-9": "santelake-admin"}[uid])
    assert (change.actor, change.subject) == ("santelake-admin", "UPDATE groups/g-1")
    assert change.payload["event"]["resourcePath"] == "groups/g-1"
