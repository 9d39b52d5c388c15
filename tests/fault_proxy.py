"""An HTTP proxy on 127.0.0.1 in front of a real server, that can misbehave on purpose.

The remote backend's failure paths are tested through it with the real `openai` client,
not a mocked one. Per request it can:

- answer a status of its own (401, 403, 429, 500...) with a JSON error body and headers;
- wait before answering (`delay`), noticing when the client gives up and closes;
- forward the server's answer but drop the connection after N bytes of the body
  (`drop_after`), or stop sending after N bytes and hold the connection open
  (`stall_after`, for `hold` seconds), noticing the client closing;
- send a line of malformed SSE data after the first N events of the stream (`malformed_after`;
  with `stall_after` set, then nothing more, holding the connection), or extra events before
  the server's last one (`extra_events`);
- close the connection without answering (`close_at_once`);
- end every held connection at once, mid-body, as when the server dies (`cut_held()`).

Faults apply to requests whose path ends with `fault.path` (default: /chat/completions and
/completions); everything else is forwarded untouched. The proxy asks the server for a
close-delimited answer (HTTP/1.0) so it can cut and edit the body, and sends it on to the
client in chunked encoding, as a streaming server does: a connection dropped mid-body is
then an incomplete chunked read at the client, as it would be from a real server.

Every request is recorded in `seen`, with its JSON body and whether the client closed the
connection while the proxy still held it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

STREAM_PATHS = ("/chat/completions", "/completions")
REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class Fault:
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_after: int | None = None
    stall_after: int | None = None
    hold: float = 60.0
    malformed_after: int | None = None
    malformed: bytes = b'data: {"choices": [{"delta": {"content": "never closed\n\n'
    extra_events: tuple[bytes, ...] = ()
    """Events sent just before the server's `data: [DONE]` (e.g. llama-server's timings)."""
    close_at_once: bool = False
    """Close the connection without answering."""
    paths: tuple[str, ...] = STREAM_PATHS
    times: int | None = None
    """Apply to the first N matching requests only; then forward untouched."""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_closed: threading.Event = field(default_factory=threading.Event)
    """The client closed its side while the proxy still held the connection."""
    answered: threading.Event = field(default_factory=threading.Event)

    def json(self) -> dict[str, Any]:
        data = json.loads(self.body or b"{}")
        assert isinstance(data, dict)
        return data


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.fault = Fault()
        self.seen: list[Seen] = []
        self.request_seen = threading.Event()
        """Set when a faulted request arrives (cleared by reset)."""
        self._cut = threading.Event()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def shut() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self, fault: Fault | None = None) -> None:
        self.fault = fault or Fault()
        self.seen.clear()
        self.request_seen.clear()
        self._cut.clear()

    def cut_held(self) -> None:
        """End the connections held by `delay` or `stall_after` now: each closes without the
        rest of its answer (a stalled body is then cut short), as when the server dies."""
        self._cut.set()

    def faulted(self) -> list[Seen]:
        """The requests the current fault applied to."""
        return [s for s in self.seen if s.path.endswith(self.fault.paths)]

    # -- one connection ------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = target.split("?", 1)[0]
        seen = Seen(method, path, headers, body)
        self.seen.append(seen)
        matching = [s for s in self.seen if s.path.endswith(self.fault.paths)]
        applies = path.endswith(self.fault.paths) and (self.fault.times is None or len(matching) <= self.fault.times)
        fault = self.fault if applies else Fault()
        if path.endswith(self.fault.paths):
            self.request_seen.set()
        watcher = asyncio.create_task(self._watch_close(reader, seen))
        try:
            if fault.delay and not await self._wait_or_closed(fault.delay, seen):
                return
            if fault.close_at_once:
                return
            if fault.status is not None:
                await self._answer_status(writer, fault)
            else:
                await self._forward(writer, method, target, headers, body, fault, seen)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            seen.answered.set()
            watcher.cancel()
            writer.close()

    async def _watch_close(self, reader: asyncio.StreamReader, seen: Seen) -> None:
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        seen.client_closed.set()

    async def _wait_or_closed(self, seconds: float, seen: Seen) -> bool:
        """Wait `seconds`; False (at once) if the client closes the connection meanwhile, or
        the proxy is told to cut it (cut_held)."""
        for _ in range(int(seconds * 20)):
            if seen.client_closed.is_set() or self._cut.is_set():
                return False
            await asyncio.sleep(0.05)
        return not seen.client_closed.is_set()

    async def _answer_status(self, writer: asyncio.StreamWriter, fault: Fault) -> None:
        body = json.dumps(fault.body or {"error": {"message": f"fault proxy: {fault.status}", "code": fault.status}})
        data = body.encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in fault.headers.items())
        writer.write(f"HTTP/1.1 {fault.status} {REASONS.get(fault.status or 0, 'Error')}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     f"Connection: close\r\n{extra}\r\n".encode() + data)
        await writer.drain()

    async def _forward(self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict[str, str],
                       body: bytes, fault: Fault, seen: Seen) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            kept = {k: v for k, v in headers.items() if k not in ("connection", "keep-alive", "content-length")}
            request = f"{method} {target} HTTP/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept.items())
            up_writer.write(f"{request}content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
            await up_writer.drain()
            status_head = await up_reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = status_head.decode("latin-1").split("\r\n")
            drop = {"content-length", "transfer-encoding", "connection", "keep-alive"}
            out = [line for line in header_lines if line and line.split(":", 1)[0].strip().lower() not in drop]
            writer.write(("\r\n".join([status_line, *out, "transfer-encoding: chunked", "connection: close"])
                          + "\r\n\r\n").encode("latin-1"))
            await self._relay(up_reader, writer, fault, seen)
        finally:
            up_writer.close()

    async def _relay(self, up: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: Fault, seen: Seen) -> None:
        sent = 0
        events = 0
        pending = b""
        while True:
            data = await up.read(65536)
            if not data:
                break
            if fault.malformed_after is not None or fault.extra_events:
                # Whole events only, so an added line is a line of its own.
                pending += data
                *whole, pending = pending.split(b"\n\n")
                for event in whole:
                    if event.strip() == b"data: [DONE]":
                        for extra in fault.extra_events:
                            await self._chunk(writer, extra)
                    await self._chunk(writer, event + b"\n\n")
                    events += 1
                    if events == fault.malformed_after:
                        await self._chunk(writer, fault.malformed)
                        if fault.stall_after is not None:  # and send nothing more
                            await self._wait_or_closed(fault.hold, seen)
                            return
                continue
            limit = fault.drop_after if fault.drop_after is not None else fault.stall_after
            if limit is not None and sent + len(data) >= limit:
                await self._chunk(writer, data[: limit - sent])
                if fault.drop_after is not None:
                    return  # close without the last chunk: the body is incomplete
                await self._wait_or_closed(fault.hold, seen)
                return
            await self._chunk(writer, data)
            sent += len(data)
        if pending:
            await self._chunk(writer, pending)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    @staticmethod
    async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        if data:
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
