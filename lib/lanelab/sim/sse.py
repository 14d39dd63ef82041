"""The server-sent event sequences of a streamed reply, in the order the real Messages API sends them.

Messages: message_start, content_block_start, ping, content_block_delta…, content_block_stop, message_delta,
message_stop; an error after the 200 arrives as an ``error`` event. Chat completions: ``data:`` chunks and ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

__all__ = ["CHUNK_CHARS", "chat_events", "chunks", "encode", "error_events", "message_events"]

#: Characters of text per content_block_delta.
CHUNK_CHARS = 12


def encode(event: str, data: Any) -> bytes:
    """One SSE frame: ``event: NAME`` and a JSON ``data:`` line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def message_events(message: dict[str, Any]) -> Iterator[bytes]:
    """The full event sequence for a finished, non-streamed ``message`` body (text content only)."""
    text = "".join(block.get("text", "") for block in message.get("content", []) if block.get("type") == "text")
    usage = dict(message.get("usage") or {})
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": min(1, usage.get("output_tokens", 0))}}
    yield encode("message_start", {"type": "message_start", "message": start})
    yield encode("content_block_start",
                 {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    yield encode("ping", {"type": "ping"})
    for piece in chunks(text):
        yield encode("content_block_delta",
                     {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
    yield encode("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield encode("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": message.get("stop_reason"), "stop_sequence": None},
                                   "usage": {"output_tokens": usage.get("output_tokens", 0)}})
    yield encode("message_stop", {"type": "message_stop"})


def error_events(message: dict[str, Any], error: dict[str, Any]) -> Iterator[bytes]:
    """A stream that starts, then fails: message_start, ping, and the ``error`` event (the body of an error reply)."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    yield encode("message_start", {"type": "message_start", "message": start})
    yield encode("ping", {"type": "ping"})
    yield encode("error", error)


def chat_events(completion: dict[str, Any]) -> Iterator[bytes]:
    """OpenAI-style streamed chunks for a finished chat completion, then ``data: [DONE]``."""
    text = completion["choices"][0]["message"]["content"]
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"]}

    def frame(delta: dict[str, Any], finish: str | None) -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()

    yield frame({"role": "assistant", "content": ""}, None)
    for piece in chunks(text):
        yield frame({"content": piece}, None)
    yield frame({}, "stop")
    yield b"data: [DONE]\n\n"
