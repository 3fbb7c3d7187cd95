"""Router and AsyncRouter: thin drivers over the shared decision core."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, Self, overload
from zoneinfo import ZoneInfo

from classifiers import Classifier, HeuristicClassifier, WeightsError, default_classifier, load
from policies import Policy, ThresholdPolicy
from router._client import LiteLLMClient, LLMClient, litellm_module, replay_chunks
from router._config import RouterConfig
from router._core import Call, Core, Replay
from router._errors import ConfigError, DuplicateRequestError
from router._hops import begin_off_loop, next_call_off_loop, off_loop, settle_and_step
from router._logging import make_logger
from router._plan import Sleep
from router._redis_cache import RedisCache
from router._run import Run, StreamCloser
from router._start import start
from router._telemetry import telemetry_for
from router._types import AsyncRoutedStream, Route, RoutedResponse, RoutedStream
from router.checks import QualityCheck, all_of
from router.learning._loop import Learner
from router.ledger import Ledger, open_ledger
from router.verifier import load_verifier

_POLL_S = 0.05


def _classifier(config: RouterConfig) -> Classifier:
    if config.classifier in (None, "default"):
        return default_classifier()
    if config.classifier == "heuristic":
        return HeuristicClassifier()
    try:
        return load(config.classifier)
    except WeightsError as exc:
        raise ConfigError(f"classifier: {exc}") from None


def _already_billed(chunks: list[Any], completed: bool, error: BaseException | None) -> None:
    """A checked stream was billed when it was read whole: replaying it costs nothing."""
    return


async def _replay_chunks(chunks: list[Any]) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk


def _rebuild(data: dict[str, Any]) -> Any:
    return litellm_module().ModelResponse(**data)


class _Base:
    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        client: LLMClient | None = None,
        classifier: Classifier | None = None,
        policy: Policy | None = None,
        ledger: Ledger | None = None,
        checks: Sequence[QualityCheck | str] | None = None,
        logger: Any = None,
        tracer_provider: Any = None,
        on_route: Callable[[Route], Any] | None = None,
    ) -> None:
        self.config = config if config is not None else RouterConfig.from_env()
        if not isinstance(self.config, RouterConfig):
            raise ConfigError(f"config must be a RouterConfig, got {type(self.config).__name__}")
        cfg = self.config
        self.client: LLMClient = client or LiteLLMClient(cfg.retry, cfg.timeout_s)
        if isinstance(self.client, LiteLLMClient):
            litellm_module()  # now, not inside the first request's budget wait (it takes seconds)
        for tier in cfg.tiers:  # an unpriced model would make every bill a guess: refuse it now
            for spec in tier.models:
                self.client.prices(spec)
        if ledger is None:
            url = cfg.ledger_url()
            ledger = open_ledger(url, cfg.budget_for, tz=ZoneInfo(cfg.timezone), flush_s=cfg.ledger_flush_s, durability=cfg.ledger_durability)
            if cfg.ledger is None:  # say where the default ledger lives, so no file appears unexplained
                logging.getLogger("tierwise").info("tierwise: spend ledger at %s (set ledger: in the config to move it)", url)
        self.ledger: Ledger = ledger
        self._core = Core(
            config=cfg,
            classifier=classifier or _classifier(cfg),
            policy=policy or ThresholdPolicy([t.name for t in cfg.tiers], cfg.effective_thresholds(), cfg.downgrade),
            ledger=self.ledger,
            client=self.client,
            checks=all_of(cfg.checks if checks is None else list(checks)),
            logger=logger or make_logger(cfg.log_content),
            verifier=load_verifier(cfg.escalation.verifier) if cfg.escalation.verifier else None,
            cache_store=RedisCache(cfg.cache.url, cfg.cache.ttl_s) if cfg.cache is not None and cfg.cache.url else None,
        )
        self.learning = Learner(self._core, cfg.learning, self._learning_call)
        # Spans per request and attempt (an OpenTelemetry tracer provider, or telemetry.otlp_endpoint), and the app's callback.
        self._telemetry = telemetry_for(cfg, tracer_provider, on_route)

    def _learning_call(self, messages: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _served(self, run: Run, result: RoutedResponse) -> RoutedResponse:
        """The answer goes back to the caller; the learning loop only notes it (shadow calls run later)."""
        self.learning.observe(run.request.tenant, run.request.request_id, run.messages, run.features, result.route, result)
        if self._telemetry is not None:
            self._telemetry.served(result.route)
        return result

    def _closer(self, run: Run, closer: StreamCloser) -> StreamCloser:
        """A stream's closer that, once the stream is billed, reports its route (spans, on_route) as an answer's is."""
        def close(chunks: list[Any], completed: bool, error: BaseException | None) -> BaseException | None:
            found = closer(chunks, completed, error)
            if self._telemetry is not None:
                self._telemetry.served(run.route)
            return found

        return close

    def feedback(self, request_id: str, quality: float, tenant: str = "default") -> None:
        """Grade the answer a recent request got, in [0, 1] (a thumbs-down: 0): a label for the next refit."""
        self.learning.feedback(request_id, quality, tenant)

    def _start(
        self, messages: Any, tenant: str, request_id: str | None, checks: Any, strict: bool, kwargs: dict[str, Any], tier: str | None = None
    ) -> Run | Replay:
        return start(self._core, messages, tenant=tenant, request_id=request_id, checks=checks, strict=strict, kwargs=kwargs, tier=tier)

    def _look(self, run: Run | Replay, deadline: float | None) -> tuple[Run | RoutedResponse | None, float]:
        """A claimed request id: the run, its stored answer, or None to look again (another caller
        serves it). Each look claims again, so an id whose owner died, or that failed, is taken over."""
        if isinstance(run, Run):
            return run, 0.0
        done = run.answer(_rebuild)
        if done is not None:
            return done, 0.0
        deadline = time.monotonic() + self.config.timeout_s if deadline is None else deadline
        if time.monotonic() > deadline:
            raise DuplicateRequestError(f"request id {run.request_id!r} is still being served by another caller", run.request_id)
        return None, deadline

    def close(self) -> None:
        """Let pending shadow labels finish, then close the ledger's connections."""
        self.learning.close()
        self.ledger.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Router(_Base):
    """Routes each request to the cheapest tier likely to answer it well.

    `complete()` takes OpenAI-style messages and any litellm keyword (temperature, max_tokens,
    tools, response_format, mock_response, stream, ...) and returns the litellm response with
    `.route` added, or a stream of chunks when `stream=True`.
    """

    def __init__(self, config: RouterConfig | None = None, *, sleep: Callable[[float], None] = time.sleep, **strategies: Any) -> None:
        super().__init__(config, **strategies)
        self._sleep = sleep

    @overload
    def complete(
        self, messages: Any, *, stream: Literal[False] = False, tenant: str = ..., request_id: str | None = ...,
        checks: Sequence[QualityCheck | str] | None = ..., strict: bool = ..., tier: str | None = ..., **kwargs: Any,
    ) -> RoutedResponse: ...

    @overload
    def complete(
        self, messages: Any, *, stream: Literal[True], tenant: str = ..., request_id: str | None = ...,
        checks: Sequence[QualityCheck | str] | None = ..., strict: bool = ..., tier: str | None = ..., **kwargs: Any,
    ) -> RoutedStream: ...

    def complete(
        self,
        messages: Any,
        *,
        stream: bool = False,
        tenant: str = "default",
        request_id: str | None = None,
        checks: Sequence[QualityCheck | str] | None = None,
        strict: bool = False,
        tier: str | None = None,
        **kwargs: Any,
    ) -> RoutedResponse | RoutedStream:
        args = (messages, tenant, request_id, checks, strict, {**kwargs, "stream": True} if stream else kwargs, tier)
        found, deadline = self._look(self._start(*args), None)
        while found is None:
            self._sleep(_POLL_S)
            found, deadline = self._look(self._start(*args), deadline)
        if not isinstance(found, Run):  # a replayed request id or a cache hit: a stream when a stream was asked for
            return RoutedStream(iter(replay_chunks(found)), found.route, _already_billed) if stream else found
        run = found
        while (call := run.next_call()) is not None:
            if isinstance(call, Sleep):
                self._sleep(call.seconds)
                continue
            try:
                response, tries = self.client.complete(call.spec, run.messages, call.kwargs)
            except BaseException as exc:  # noqa: BLE001 - run.failed records it, then re-raises what it cannot handle
                run.failed(call, exc)
                continue
            if run.buffer_stream:
                chunks: list[Any] = []
                try:
                    chunks.extend(response)
                except BaseException as exc:  # noqa: BLE001 - the stream broke while it was read: bill what came
                    run.failed(call, exc, chunks)
                    continue
                if run.buffered(call, chunks, tries):
                    return RoutedStream(iter(chunks), run.route, self._closer(run, _already_billed))
                continue
            if run.stream:
                return RoutedStream(iter(response), run.route, self._closer(run, run.stream_started(call, tries)))
            run.succeeded(call, response, tries)
        if run.buffer_stream:
            return RoutedStream(iter(run.stream_result()), run.route, self._closer(run, _already_billed))
        return self._served(run, run.result())

    def _learning_call(self, messages: Any, **kwargs: Any) -> Any:
        return self.complete(messages, **kwargs)


class AsyncRouter(_Base):
    """The asyncio twin of Router: `await router.acomplete(...)`."""

    def __init__(
        self, config: RouterConfig | None = None, *, asleep: Callable[[float], Awaitable[None]] = asyncio.sleep, **strategies: Any
    ) -> None:
        super().__init__(config, **strategies)
        self._asleep = asleep

    @overload
    async def acomplete(
        self, messages: Any, *, stream: Literal[False] = False, tenant: str = ..., request_id: str | None = ...,
        checks: Sequence[QualityCheck | str] | None = ..., strict: bool = ..., tier: str | None = ..., **kwargs: Any,
    ) -> RoutedResponse: ...

    @overload
    async def acomplete(
        self, messages: Any, *, stream: Literal[True], tenant: str = ..., request_id: str | None = ...,
        checks: Sequence[QualityCheck | str] | None = ..., strict: bool = ..., tier: str | None = ..., **kwargs: Any,
    ) -> AsyncRoutedStream: ...

    async def acomplete(
        self,
        messages: Any,
        *,
        stream: bool = False,
        tenant: str = "default",
        request_id: str | None = None,
        checks: Sequence[QualityCheck | str] | None = None,
        strict: bool = False,
        tier: str | None = None,
        **kwargs: Any,
    ) -> RoutedResponse | AsyncRoutedStream:
        args = (messages, tenant, request_id, checks, strict, {**kwargs, "stream": True} if stream else kwargs, tier)
        begun, step = await begin_off_loop(self._start, args)  # one trip to a worker thread: the claim and the first hold
        found, deadline = self._look(begun, None)
        while found is None:
            await self._asleep(_POLL_S)
            begun, step = await begin_off_loop(self._start, args)
            found, deadline = self._look(begun, deadline)
        if not isinstance(found, Run):
            return AsyncRoutedStream(_replay_chunks(replay_chunks(found)), found.route, _already_billed) if stream else found
        run = found
        while step is not None:
            if isinstance(step, Sleep):
                await self._asleep(step.seconds)
                step = await next_call_off_loop(run)
                continue
            call = step
            try:
                response, tries = await self.client.acomplete(call.spec, run.messages, call.kwargs)
            except BaseException as exc:  # noqa: BLE001 - includes CancelledError: billed, then re-raised
                run.failed(call, exc)
                step = await next_call_off_loop(run)
                continue
            if run.buffer_stream:
                chunks = []
                try:
                    async for chunk in response:
                        chunks.append(chunk)
                except BaseException as exc:  # noqa: BLE001 - the stream broke while it was read: bill what came
                    run.failed(call, exc, chunks)
                    step = await next_call_off_loop(run)
                    continue
                if await off_loop(run, run.buffered, call, chunks, tries):
                    return AsyncRoutedStream(_replay_chunks(chunks), run.route, self._closer(run, _already_billed))
                step = await next_call_off_loop(run)
                continue
            if run.stream:
                return AsyncRoutedStream(aiter(response), run.route, self._closer(run, run.stream_started(call, tries)))
            # The bill, the check, the next step and, when done, the answer: one trip to a worker
            # thread, or none when billing touches only memory.
            after = await settle_and_step(run, call, response, tries)
            if not isinstance(after, (Call, Sleep)):
                return self._served(run, after)
            step = after
        if run.buffer_stream:
            return AsyncRoutedStream(_replay_chunks(await asyncio.to_thread(run.stream_result)), run.route,
                                     self._closer(run, _already_billed))
        return self._served(run, await asyncio.to_thread(run.result))

    def _learning_call(self, messages: Any, **kwargs: Any) -> Any:
        # Shadow calls run on the loop's worker threads, which have no event loop of their own.
        return asyncio.run(self.acomplete(messages, **kwargs))

