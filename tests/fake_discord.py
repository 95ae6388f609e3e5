"""An in-process fake of Discord: its REST API and its gateway websocket, on 127.0.0.1.

The real discord.py client logs in, syncs commands, connects to the gateway, receives READY
and GUILD_CREATE, and then gets whatever INTERACTION_CREATE / MESSAGE_CREATE payloads a test
dispatches. Every HTTP request it makes is recorded, so tests assert on what Discord (and so
the user) would receive. `patched(fake)` points discord.py at the fake.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
import yarl
from aiohttp import WSMsgType, web
from discord.gateway import DiscordWebSocket
from discord.http import Route

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
APP_ID = 111111111111111111
BOT_ID = APP_ID
GUILD_ID = 222222222222222222
CHANNEL_ID = 333333333333333333
OTHER_CHANNEL_ID = 333333333333333334
USER_ID = 444444444444444444
EPHEMERAL = 64

DISCORD_EPOCH_MS = 1_420_070_400_000  # 2015-01-01T00:00:00Z, a snowflake's time zero
_sequence = itertools.count()


def snowflake(at: datetime | None = None) -> str:
    """A new id, whose time (`discord.utils.snowflake_time`, a message's `created_at`) is
    `at`, by default now."""
    ms = int((at or datetime.now(UTC)).timestamp() * 1000) - DISCORD_EPOCH_MS
    return str(ms << 22 | next(_sequence) & 0x3FFFFF)


def user(user_id: int = USER_ID, name: str = "reader", *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
    }


BOT_USER = user(BOT_ID, "newsbot", bot=True)


def text_channel(channel_id: int, name: str) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(GUILD_ID),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


def thread_channel(thread_id: int, parent_id: int = CHANNEL_ID) -> dict[str, Any]:
    return {
        "id": str(thread_id),
        "type": 11,
        "guild_id": str(GUILD_ID),
        "name": "follow-up",
        "parent_id": str(parent_id),
        "owner_id": str(USER_ID),
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 1,
        "member_count": 1,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": _now(),
            "locked": False,
        },
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Request:
    """One HTTP request the client made."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.perf_counter)  # when the fake received it

    @property
    def flags(self) -> int:
        body = self.body or {}
        return int(body.get("flags") or (body.get("data") or {}).get("flags") or 0)


@dataclass
class FakeDiscord:
    """Discord's REST API and gateway for one bot in one guild with two text channels (or more)."""

    token: str = TOKEN
    refuse_message_content: bool = False
    extra_channels: list[int] = field(default_factory=list)  # more text channels in the guild
    requests: list[Request] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.identified: dict[str, Any] | None = None

    # -- lifetime -------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- what tests do --------------------------------------------------------------------
    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH event to the connected client."""
        payload = {"op": 0, "t": event, "s": next(self._sequence), "d": data}
        await self._sockets[-1].send_str(json.dumps(payload))

    async def wait_for(
        self, predicate: Callable[[Request], bool], *, timeout: float = 30.0, after: int = 0
    ) -> Request:
        """The first request (from index `after` on) that matches, waiting for it if need be."""

        def found() -> Request | None:
            return next((r for r in self.requests[after:] if predicate(r)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
        result = found()
        assert result is not None
        return result

    def matching(self, method: str, fragment: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    # -- payloads -------------------------------------------------------------------------
    def slash_ask(
        self,
        question: str,
        *,
        user_id: int = USER_ID,
        channel_id: int = CHANNEL_ID,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE for `/ask question:<question>` in a guild channel, sent at
        `at` (default now)."""
        return self._interaction(
            2,
            {
                "id": "555555555555555555",
                "name": "ask",
                "type": 1,
                "options": [{"name": "question", "type": 3, "value": question}],
            },
            user_id=user_id,
            channel=text_channel(channel_id, "news"),
            at=at,
        )

    def button_click(self, custom_id: str, message: dict[str, Any], *, user_id: int = USER_ID):
        """An INTERACTION_CREATE for a click on the button `custom_id` under `message`."""
        data = self._interaction(
            3,
            {"custom_id": custom_id, "component_type": 2},
            user_id=user_id,
            channel=text_channel(int(message["channel_id"]), "news"),
        )
        data["message"] = message
        return data

    def message(  # noqa: PLR0913  (every field of a message a test may set)
        self,
        content: str,
        *,
        channel_id: int = CHANNEL_ID,
        author_id: int = USER_ID,
        mentions: list[dict[str, Any]] | None = None,
        guild: bool = True,
        reply_to: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload from a user (a reply to the message `reply_to`), sent at
        `at` (default now)."""
        data = self._message_json(str(channel_id), content, author=user(author_id), at=at)
        data["mentions"] = mentions or []
        if reply_to is not None:
            data["type"] = 19  # a reply
            data["message_reference"] = {
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
                "guild_id": str(GUILD_ID),
            }
            data["referenced_message"] = reply_to
        if guild:
            data["guild_id"] = str(GUILD_ID)
            data["member"] = {
                "roles": [],
                "joined_at": _now(),
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        return data

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user_id: int,
        channel: dict[str, Any],
        at: datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "id": snowflake(at),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            "guild_id": str(GUILD_ID),
            "channel_id": channel["id"],
            "channel": channel,
            "member": {
                "user": user(user_id),
                "roles": [],
                "joined_at": _now(),
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": "2248473465835073",
            },
            "token": f"interaction-token-{snowflake()}",
            "version": 1,
            "app_permissions": "2248473465835073",
            "locale": "en-GB",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
            "attachment_size_limit": 10485760,
        }

    def _message_json(
        self,
        channel_id: str,
        content: str,
        *,
        author: dict[str, Any],
        at: datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": snowflake(at),
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": (at or datetime.now(UTC)).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        message.update({k: v for k, v in extra.items() if v is not None})
        self.messages[message["id"]] = message
        return message

    # -- the REST API ---------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        path = "/" + request.match_info["path"]
        recorded = Request(request.method, path, dict(request.query), body)
        if request.headers.get("Authorization") != f"Bot {self.token}" and not path.startswith(
            ("/interactions/", "/webhooks/")
        ):
            response: web.StreamResponse = _json({"message": "401: Unauthorized"}, status=401)
        else:
            response = self._respond(recorded)
        async with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()
        return response

    def _respond(self, r: Request) -> web.StreamResponse:
        parts = r.path.strip("/").split("/")
        body = r.body if isinstance(r.body, dict) else {}
        if r.path == "/users/@me":
            return _json(BOT_USER)
        if r.path == "/oauth2/applications/@me":
            return _json(
                {
                    "id": str(APP_ID),
                    "name": "newsbot",
                    "description": "",
                    "icon": None,
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "owner": user(USER_ID, "admin"),
                    "verify_key": "0" * 64,
                    "flags": 0,
                }
            )
        if parts[0] == "applications" and parts[-1] == "commands" and r.method == "PUT":
            commands = [
                {**c, "id": snowflake(), "application_id": str(APP_ID), "version": "1"}
                for c in (r.body or [])
            ]
            return _json(commands)
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._interaction_callback(parts[1], body)
        if parts[0] == "webhooks":
            return self._webhook(r, parts, body)
        if parts[0] == "channels" and parts[-1] == "typing":
            return web.Response(status=204)
        if parts[0] == "channels" and parts[2:3] == ["messages"]:
            return self._channel_messages(r, parts, body)
        return _json({"message": f"fake Discord: no route {r.path}"}, status=404)

    def _channel_messages(
        self, r: Request, parts: list[str], body: dict[str, Any]
    ) -> web.StreamResponse:
        """/channels/{id}/messages[/{message id}]: read, post, delete."""
        if r.method == "GET" and len(parts) == 4:
            found = self.messages.get(parts[3])
            if found is None or found["channel_id"] != parts[1]:
                return _json({"message": "Unknown Message", "code": 10008}, status=404)
            return _json(found)
        if r.method == "GET":
            return _json(self._history(parts[1], r.query))
        if r.method == "POST":
            reference = body.get("message_reference")
            return _json(self._posted(parts[1], body, message_reference=reference))
        if r.method == "DELETE":
            return web.Response(status=204)
        return _json({"message": f"fake Discord: no route {r.method} {r.path}"}, status=404)

    def _history(self, channel_id: str, query: dict[str, str]) -> list[dict[str, Any]]:
        """A channel's messages, newest first, as GET /channels/{id}/messages gives them."""
        before = int(query.get("before") or 1 << 63)
        limit = int(query.get("limit") or 50)
        found = [
            m
            for m in self.messages.values()
            if m["channel_id"] == channel_id and int(m["id"]) < before
        ]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        return [{k: v for k, v in m.items() if k != "referenced_message"} for m in found[:limit]]

    def _posted(self, channel_id: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return self._message_json(
            channel_id,
            body.get("content") or "",
            author=BOT_USER,
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            flags=body.get("flags") or 0,
            **extra,
        )

    def _interaction_callback(self, interaction_id: str, body: dict[str, Any]) -> web.Response:
        kind = body.get("type")
        data = body.get("data") or {}
        result: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL),
            }
        }
        if kind == 4:
            message = self._posted(str(CHANNEL_ID), data, webhook_id=str(APP_ID))
            result["interaction"]["response_message_id"] = message["id"]
            result["resource"] = {"type": 4, "message": message}
        return _json(result)

    def _webhook(self, r: Request, parts: list[str], body: dict[str, Any]) -> web.Response:
        if r.method == "DELETE":
            return web.Response(status=204)
        message = self._posted(str(CHANNEL_ID), body, webhook_id=str(APP_ID))
        return _json(message)

    # -- the gateway ----------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            payload = json.loads(msg.data)
            if payload["op"] == 1:
                await ws.send_json({"op": 11})
            elif payload["op"] == 2:
                await self._identify(ws, payload["d"])
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        self.identified = data
        if data["token"] != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if self.refuse_message_content and data.get("intents", 0) & (1 << 15):
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        ready = {
            "v": 10,
            "user": BOT_USER,
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": "fake-session",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await ws.send_json({"op": 0, "t": "READY", "s": next(self._sequence), "d": ready})
        guild = {
            "id": str(GUILD_ID),
            "name": "Newsroom",
            "icon": None,
            "owner_id": str(USER_ID),
            "unavailable": False,
            "member_count": 2,
            "large": False,
            "features": [],
            "roles": [
                {
                    "id": str(GUILD_ID),
                    "name": "@everyone",
                    "permissions": "2248473465835073",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [
                text_channel(CHANNEL_ID, "news"),
                text_channel(OTHER_CHANNEL_ID, "random"),
                *(text_channel(c, f"news-{i}") for i, c in enumerate(self.extra_channels)),
            ],
            "threads": [],
            "members": [],
            "voice_states": [],
            "presences": [],
            "joined_at": _now(),
        }
        await ws.send_json({"op": 0, "t": "GUILD_CREATE", "s": next(self._sequence), "d": guild})


async def until_ready(client: discord.Client, timeout: float = 60.0) -> None:
    """Wait for READY (`wait_until_ready` refuses to wait before the client is set up)."""
    deadline = time.monotonic() + timeout
    while not client.is_ready():
        if time.monotonic() > deadline:
            raise TimeoutError("the client did not become ready")
        await asyncio.sleep(0.01)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when the content type is exactly this.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


@contextmanager
def patched(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST and gateway URLs at `fake` (restored afterwards)."""
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@contextmanager
def serving_in_thread(**options: Any) -> Iterator[FakeDiscord]:
    """A fake Discord on its own event loop in a thread, for code that runs `asyncio.run`."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def started() -> FakeDiscord:
        fake = FakeDiscord(**options)
        await fake.start()
        return fake

    fake = asyncio.run_coroutine_threadsafe(started(), loop).result(timeout=30)
    try:
        with patched(fake):
            yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
