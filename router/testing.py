"""Test helpers for users' own tests: scripted replies and errors, through real litellm code paths.

    client = ScriptedClient({"gpt-5-nano": ["", "fine answer"], "gpt-5": [RateLimit()]})
    router = Router(config, client=client)

    with LocalOpenAIServer({"small-model": [{"status": 429, "headers": {"Retry-After": "1"}}, "ok"]}) as srv:
        ...  # models {"model": "openai/small-model", "api_base": srv.url, "api_key": "test"}
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from router._client import LiteLLMClient, litellm_module
from router._config import ModelSpec

__all__ = ["LocalOpenAIServer", "ScriptedClient", "approx_tokens"]

Reply = str | dict[str, Any] | BaseException
Responder = Callable[[str, list[dict[str, Any]]], str]


class ScriptedClient(LiteLLMClient):
    """A LiteLLMClient whose calls are answered by litellm's `mock_response`, one scripted item a call.

    A script item is a reply text, a dict (`content`, `finish_reason`, `prompt_tokens`,
    `completion_tokens`) or an exception to raise (as a provider would). A model whose script
    has run out answers `default`.
    """

    def __init__(self, scripts: Mapping[str, Iterable[Reply]] | None = None, default: str = "ok", **kwargs: Any) -> None:
        kwargs.setdefault("sleep", lambda _s: None)
        super().__init__(**kwargs)
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque, {k: deque(v) for k, v in (scripts or {}).items()})
        self.default = default
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def _params(self, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        params = super()._params(spec, messages, kwargs)
        with self._lock:
            self.calls.append(spec.model)
            script = self.scripts[spec.model]
            item: Reply = script.popleft() if script else self.default
        if isinstance(item, BaseException):
            params["mock_response"] = item
        elif isinstance(item, dict):
            params["mock_response"] = _mock_dict(spec.model, item)
        else:
            params["mock_response"] = item if item else _mock_dict(spec.model, {"content": ""})
        return params


def _mock_dict(model: str, item: Mapping[str, Any]) -> Any:
    litellm = litellm_module()
    return litellm.ModelResponse(
        model=model,
        choices=[{"index": 0, "finish_reason": item.get("finish_reason", "stop"), "message": {"role": "assistant", "content": item.get("content", "")}}],
        usage={
            "prompt_tokens": item.get("prompt_tokens", 10),
            "completion_tokens": item.get("completion_tokens", 20),
            "total_tokens": item.get("prompt_tokens", 10) + item.get("completion_tokens", 20),
        },
    )


def approx_tokens(text: str) -> int:
    """About what a BPE tokenizer gives for English: 4 characters a token."""
    return max(1, (len(text) + 3) // 4)


class _Listener(ThreadingHTTPServer):
    """The server socket: a listen queue deep enough for the 200 clients a load test opens at once
    (the standard library's 5 drops connections under load), and handler threads that never hold
    the process open."""

    request_queue_size = 256
    daemon_threads = True


class LocalOpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1 with scripted behaviour per model.

    Script items: a reply text; or a dict with any of `status` (an error status to answer),
    `headers`, `body` (raw text to send, e.g. malformed JSON), `delay` (seconds before
    answering), `content`, `finish_reason`, `prompt_tokens`, `completion_tokens`, `cached_tokens` and
    `cache_creation_input_tokens` (the usage reported), `choices` (the texts of n samples), `logprobs` (token log-probabilities sent when
    the request asks for them), `cut_after` (a stream that breaks after this many chunks), `chunk_delay` (seconds between a stream's chunks). A stream ends with a
    usage chunk only when the request asks for it (`stream_options.include_usage`), as OpenAI does. When a model's script is empty, `responder(model,
    messages)` gives the reply (default: "ok").
    """

    def __init__(self, scripts: Mapping[str, Iterable[Reply]] | None = None, responder: Responder | None = None) -> None:
        self.scripts: dict[str, deque[Any]] = defaultdict(deque, {k: deque(v) for k, v in (scripts or {}).items()})
        self.responder = responder or (lambda _model, _messages: "ok")
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = _Listener(("127.0.0.1", 0), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def count(self, model: str) -> int:
        """How many requests named this model."""
        with self._lock:
            return sum(1 for r in self.requests if r.get("model") == model)

    def start(self) -> Self:
        # A short poll: stop() returns within 20 ms instead of the default half second.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="tierwise-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_item(self, model: str, messages: list[dict[str, Any]]) -> Any:
        with self._lock:
            script = self.scripts[model]
            if script:
                return script.popleft()
        return self.responder(model, messages)


def _handler(server: LocalOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            return

        def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._send(400, b'{"error": {"message": "bad json"}}')
                return
            if not self.path.rstrip("/").endswith("chat/completions"):
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            with server._lock:
                server.requests.append({"model": request.get("model"), "stream": bool(request.get("stream")),
                                        "stream_options": request.get("stream_options"), "body": request})
            model = str(request.get("model", ""))
            messages = request.get("messages") or []
            item = server.next_item(model, messages)
            item = {"content": item} if isinstance(item, str) else dict(item)
            if item.get("delay"):
                time.sleep(float(item["delay"]))
            if "status" in item:
                body = item.get("body", json.dumps({"error": {"message": f"scripted {item['status']}", "type": "test"}}))
                self._send(int(item["status"]), body.encode(), item.get("headers"))
                return
            if "body" in item:
                self._send(200, item["body"].encode())
                return
            self._reply(model, messages, item, request)

        def _reply(self, model: str, messages: list[dict[str, Any]], item: dict[str, Any], request: dict[str, Any]) -> None:
            content, finish, cut_after = str(item.get("content", "")), item.get("finish_reason", "stop"), item.get("cut_after")
            stream = bool(request.get("stream"))
            prompt = sum(approx_tokens(json.dumps(m.get("content", ""))) for m in messages)
            usage: dict[str, Any] = {"prompt_tokens": int(item.get("prompt_tokens", prompt)),
                     "completion_tokens": int(item.get("completion_tokens", approx_tokens(content) if content else 0))}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            if "cached_tokens" in item:  # a provider's prompt cache: OpenAI's field, and Anthropic's writes
                usage["prompt_tokens_details"] = {"cached_tokens": int(item["cached_tokens"])}
            if "cache_creation_input_tokens" in item:
                usage["cache_creation_input_tokens"] = int(item["cache_creation_input_tokens"])
            base = {"id": f"chatcmpl-{time.time_ns()}", "created": int(time.time()), "model": model}
            if not stream:
                choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}
                if request.get("logprobs") and "logprobs" in item:  # as OpenAI: only when asked for (a list of floats, or raw JSON)
                    found = item["logprobs"]
                    choice["logprobs"] = {"content": [{"token": f"t{i}", "logprob": lp, "bytes": None, "top_logprobs": []}
                                                      for i, lp in enumerate(found)]} if isinstance(found, list) else found
                # n > 1 (as OpenAI): one choice a sample, `choices` (texts) when scripted, else the content again
                texts = [str(t) for t in item.get("choices", [])] or [content] * max(1, int(request.get("n") or 1))
                choices = [choice] if len(texts) == 1 and "choices" not in item else [
                    {**choice, "index": i, "message": {"role": "assistant", "content": t}} for i, t in enumerate(texts)]
                if len(choices) > 1 and "completion_tokens" not in item:
                    usage["completion_tokens"] = sum(approx_tokens(t) for t in texts)
                    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                body = {**base, "object": "chat.completion", "usage": usage, "choices": choices}
                self._send(200, json.dumps(body).encode())
                return
            words = content.split(" ")
            events = [{**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": w if i == 0 else " " + w}, "finish_reason": None}]} for i, w in enumerate(words)]
            events.append({**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (request.get("stream_options") or {}).get("include_usage"):  # as OpenAI: usage only when asked for
                events.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            if cut_after is None and not item.get("chunk_delay"):
                self._send(200, payload.encode(), ctype="text/event-stream")
                return
            if cut_after is None:  # a slow generation: each event after a pause
                self._paced([*(f"data: {json.dumps(e)}\n\n" for e in events), "data: [DONE]\n\n"], float(item["chunk_delay"]))
                return
            # A stream that breaks: promise the whole body, send the first events, drop the connection.
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(payload.encode())))
            self.end_headers()
            self.wfile.write("".join(f"data: {json.dumps(e)}\n\n" for e in events[:cut_after]).encode())
            self.wfile.flush()
            self.close_connection = True

        def _paced(self, parts: list[str], pause: float) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(sum(len(p.encode()) for p in parts)))
            self.end_headers()
            for part in parts:
                self.wfile.write(part.encode())
                self.wfile.flush()
                time.sleep(pause)

    return Handler
