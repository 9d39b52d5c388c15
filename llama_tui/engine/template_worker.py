"""The template worker: a child process that renders chat templates for TemplateSandbox.

Run as `python -m llama_tui.engine.template_worker`; the parent starts it (see
template_sandbox.py, which also describes the protocol). It reads length-prefixed JSON
requests on stdin and writes one reply per request on stdout, until stdin closes.

Templates from model files are code from strangers. The parent enforces the wall-time limit
by killing this process; the limits that must act from inside are set here: address space
(so a huge allocation is a MemoryError, not a problem for the whole machine), output size,
and a wall-clock alarm that ends the process if the parent is gone and cannot kill it.

Imports are kept light (no llama_cpp, no Textual): the start time is paid before the first
reply.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import struct
import sys
from collections import OrderedDict
from typing import Any, BinaryIO

import jinja2

from llama_tui.engine.jinja_chat import OutputTooLarge, TemplateRaised, compile_template, render_compiled
from llama_tui.text import shorten

HEADER = struct.Struct(">I")
# Compiled templates kept, by the source hash the parent sends: a session uses one or two.
CACHE_SIZE = 8
# The template's own error text is for a person; a template could raise megabytes of it.
MAX_ERROR_CHARS = 2000
# How long past the parent's limit the alarm waits: the parent normally kills us first.
ALARM_GRACE_SECONDS = 2.0


def read_frame(stream: BinaryIO) -> bytes | None:
    """One message, or None when the stream ended."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    body = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def limit_memory(headroom: int) -> None:
    """Cap the address space at what the process uses now plus `headroom` bytes. Linux
    only (/proc); elsewhere RLIMIT_AS is often not enforced, and the time limit remains."""
    try:
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = used + headroom if hard == resource.RLIM_INFINITY else min(used + headroom, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (OSError, ValueError):
        pass


def _failure(kind: str, message: str) -> dict[str, Any]:
    message = shorten(message, MAX_ERROR_CHARS + 1)
    return {"ok": False, "kind": kind, "message": message}


def handle(request: dict[str, Any], cache: OrderedDict[str, jinja2.Template]) -> dict[str, Any]:
    """Render one request; the reply says what went wrong rather than raising."""
    key: str = request["key"]
    try:
        template = cache.get(key)
        if template is None:
            if "source" not in request:
                # Evicted (or never sent): the parent sends it again.
                return {"ok": False, "kind": "need_source", "message": ""}
            template = compile_template(request["source"])
            cache[key] = template
            if len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        text = render_compiled(
            template,
            request["messages"],
            bos_token=request["bos_token"],
            eos_token=request["eos_token"],
            add_generation_prompt=request["add_generation_prompt"],
            enable_thinking=request.get("enable_thinking", True),
            max_chars=request["max_chars"],
        )
        return {"ok": True, "text": text}
    except TemplateRaised as error:
        return _failure("raised", str(error))
    except jinja2.TemplateSyntaxError as error:
        return _failure("syntax", f"line {error.lineno}: {error.message}")
    except OutputTooLarge as error:
        return _failure("too_large", str(error))
    except MemoryError:
        return _failure("memory", "")
    except Exception as error:  # noqa: BLE001 - the sandbox's SecurityError, UndefinedError, TypeError...
        return _failure("error", f"{type(error).__name__}: {error}")


def main() -> None:
    headroom = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 30
    # The protocol gets its own descriptor, and fd 1 becomes stderr (/dev/null): nothing
    # printed by accident, from Python or C, can corrupt a reply.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    # No core files from a crash or a signal; the alarm's default action ends the process.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    limit_memory(headroom)

    write_frame(replies, {"ready": True})  # the parent's time limit for a render starts after this

    cache: OrderedDict[str, jinja2.Template] = OrderedDict()
    while True:
        frame = read_frame(requests)
        if frame is None:
            return  # the parent closed the pipe (or is gone)
        request = json.loads(frame)
        # If the parent dies mid-render, nobody kills us: the alarm does.
        signal.setitimer(signal.ITIMER_REAL, request["time_limit"] + ALARM_GRACE_SECONDS)
        reply = handle(request, cache)
        signal.setitimer(signal.ITIMER_REAL, 0)
        reply["id"] = request["id"]
        write_frame(replies, reply)


if __name__ == "__main__":
    main()
