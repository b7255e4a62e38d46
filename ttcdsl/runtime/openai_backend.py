"""The ``openai`` backend: generation through OpenAI-compatible HTTP endpoints.

One URL (a single ``vllm serve``, or a router in front of replicas) or several (a pool this
backend routes itself). Each sample is one request (``n=1`` with the sample's own seed, as in the
``vllm`` backend, so samples do not depend on the round structure or on which server made them);
a round's requests go out concurrently from one asyncio loop (``httpx.AsyncClient``), at most
``concurrency`` at a time per endpoint.

Routing and failures:

* Affinity: a query's samples go to the same endpoint (rendezvous hashing of the query id over
  the live endpoints), so its prompt prefix is cached once; when an endpoint is taken out, only
  its queries move.
* A connection error, a timeout, a 5xx or a 429 is retried with jittered exponential backoff
  (a ``Retry-After`` of a 429 or 5xx is honoured up to the request ``timeout``; a longer one
  fails the request: waiting it out would look like a hang); ``eject_after`` consecutive failures take an
  endpoint out of the rotation for the rest of the round (when all are out, all are tried
  again).
* A request that still fails after ``retries`` retries, or is refused outright (another 4xx),
  ends its query's samples there: the result holds the samples before it (samples are numbered
  consecutively) and a shortfall with the reason; the runtime records the query as failed and the
  run goes on.
* A 401, 403 or 404 says the same of every request (the API key, its rights, the URL or the
  model, which all requests share): once one comes back nothing more is sent, the requests
  already in flight finish, and the round ends in a :class:`~ttcdsl.runtime.backend.BackendError`
  naming the endpoint and the server's words. The samples that came back are the runtime's
  (stored as each request completes), and a resume asks only for the rest.
* Fire-and-cancel: a request with a stop test (:data:`~ttcdsl.runtime.backend.StopTest`) calls
  it each time the contiguous prefix of its returned samples grows; once it holds, the request's
  samples still pending are cancelled: one waiting on its endpoint's concurrency limit is never
  sent, one in flight has its HTTP request cancelled, which closes the connection (vLLM's server
  aborts a request whose client disconnects). One that came back before the cancel took effect
  is returned (it was generated; the runtime stores and bills it, and never uses it).
* Token counts are the server's ``usage`` (never estimated: a server without ``usage`` gives
  unknown counts). The API key is read from the environment variable ``api_key_env`` names
  (default ``OPENAI_API_KEY``) and is only ever sent in the Authorization header.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ttcdsl.runtime.backend import (
    BackendCapabilities,
    BackendError,
    GeneratedSample,
    GenerationRequest,
    GenerationResult,
    StopTest,
)
from ttcdsl.runtime.live import (
    LiveQueries,
    Option,
    mean_logprob,
    prompt_nll,
    unknown_query_reason,
)

OPTIONS: dict[str, Option] = {
    "model": Option(str, None, "served model name; default: the first /v1/models lists at the "
                           "first endpoint that answers"),
    "api": Option(str, "chat", "chat (/v1/chat/completions) or completions (/v1/completions)"),
    "concurrency": Option(int, 8, "requests in flight per endpoint"),
    "timeout": Option(float, 300.0, "seconds per request, to the response's last byte"),
    "retries": Option(int, 4, "retries of a failed request (connection errors, 5xx, 429)"),
    "backoff": Option(float, 0.5, "seconds before the first retry (doubled each time, jittered)"),
    "eject_after": Option(int, 3, "consecutive failures that take an endpoint out"),
    "api_key_env": Option(str, "OPENAI_API_KEY", "environment variable holding the API key"),
    "logprobs": Option(bool, False, "always return mean token logprobs"),
}


PROGRESS_EVERY = 15.0  # seconds between a long round's progress lines


def base_url(url: str) -> str:
    """``http://host:port`` or ``.../v1`` to the API base ``.../v1``."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise BackendError(f"--endpoint {url!r}: expected an http:// or https:// URL")
    return url if url.endswith("/v1") else url + "/v1"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds: a number of seconds or an HTTP
    date (RFC 9110 allows both; proxies and some gateways send the date). None when absent or
    unreadable, so the usual backoff applies; a date in the past is no wait."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is GMT; a date without a zone is read so
            import datetime

            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(seconds, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class _Retryable(Exception):
    """A failure worth another try (connection, timeout, 5xx, 429)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


class _Refused(Exception):
    """A failure another try will not fix (a 4xx other than 429, a malformed response)."""


class _Fatal(Exception):
    """A failure every request would meet (module docstring): the round stops sending."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


# What a status the whole run would meet means, for the error's hint.
FATAL_STATUS_HINTS = {
    401: "the server refused the credentials: the API key is read from the environment variable "
         "{env} ({state})",
    403: "the server refused the credentials' rights: the API key is read from the environment "
         "variable {env} ({state})",
    404: "the server has no such path or model: the --endpoint is the API's base URL (up to /v1), "
         "and --backend-option model=NAME one it serves",
}


@dataclass
class _Listing:
    """One endpoint's answer to ``GET /v1/models``: the models it serves, or why it gave none."""

    url: str
    served: list[str] | None = None
    problem: str | None = None
    answered: bool = True  # False: no answer at all (down, unreachable)


@dataclass
class _Endpoint:
    url: str
    limit: asyncio.Semaphore | None = None
    failures: int = 0  # consecutive
    out: bool = False


class OpenAIBackend:
    """Samples from OpenAI-compatible endpoints (module docstring)."""

    name = "openai"
    # generate() takes on_result: each request's result is handed over as soon as it is complete,
    # so the runtime stores its samples before the round ends (a paid API bills each request, and
    # a kill late in a long round lost every sample the round had got back)
    streams_results = True

    def __init__(
        self,
        endpoints: Sequence[str],
        options: dict[str, Any],
        queries: LiveQueries,
        *,
        need_logprobs: bool = False,
        need_prompt_nll: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """``progress``: where a round that takes a while says how far it got (every
        :data:`PROGRESS_EVERY` seconds; a round that ends sooner says nothing)."""
        if options["api"] not in ("chat", "completions"):
            raise BackendError(f"--backend-option api={options['api']!r}: expected chat or completions")
        for key in ("concurrency", "eject_after"):
            if options[key] < 1:
                raise BackendError(f"--backend-option {key} must be at least 1")
        if options["timeout"] <= 0 or options["backoff"] < 0:
            raise BackendError("--backend-option timeout must be > 0 and backoff >= 0")
        self.urls = [base_url(u) for u in endpoints]
        if len(set(self.urls)) != len(self.urls):
            raise BackendError("an --endpoint is given twice")
        self.options = dict(options)
        self.queries = queries
        self.logprobs = bool(need_logprobs or options["logprobs"])
        # measured on the first sample of every request, as the vllm backend does (vLLM's
        # `prompt_logprobs` extension; a server without it is refused on the first round)
        self.prompt_nll = bool(need_prompt_nll)
        self._model: str | None = options["model"]
        self._model_checked = False
        self._jitter = random.Random()  # backoff jitter only; never touches sampling
        self._progress = progress
        # (status, reason) of the first 401/403/404 of a round: nothing more is sent once set
        self._fatal: tuple[int, str] | None = None

    @property
    def model(self) -> str | None:
        if not self._model_checked and self.urls:
            listings = self._listings()
            source = None
            if self._model is None:
                self._model, source = self._discover_model(listings)
            # a discovered model is held to every endpoint as a named one is: a pool whose
            # servers serve different models would spend on some and have the rest refused
            self._check_model(self._model, listings, source)
            self._model_checked = True
        return self._model

    @property
    def settings(self) -> dict[str, Any]:
        """The options a sample depends on (stored with a run; a resume must use the same)."""
        return {"model": self.model, "api": self.options["api"]}

    @property
    def capabilities(self) -> BackendCapabilities:
        # Deterministic: every sample is seeded (a server that honours `seed`, as vLLM does).
        return BackendCapabilities(
            logprobs=self.logprobs, prompt_tokens=True, deterministic=True,
            labelled=self.queries.labelled, answers=True,
        )

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.options["api_key_env"])
        return {"Authorization": f"Bearer {key}"} if key else {}

    def prompt_token_counts(self, query_ids: Sequence[str]) -> dict[str, int]:
        """Each query's prompt tokens from the first endpoint's ``/tokenize`` (vLLM's server
        extension; the chat template applied as for generation): the bound a policy that
        charges prompt tokens needs before the first round. A server without it is refused."""
        import httpx

        model = self.model
        url = self.urls[0].removesuffix("/v1") + "/tokenize"
        timeout = self.options["timeout"]

        async def count_all() -> dict[str, int]:
            counts: dict[str, int] = {}
            async with httpx.AsyncClient(headers=self._headers(), timeout=timeout) as client:
                for query_id in query_ids:
                    if self.options["api"] == "chat":
                        body = {"model": model, "messages": self.queries.messages(query_id),
                                "add_generation_prompt": True}
                    else:
                        body = {"model": model, "prompt": self.queries.get(query_id).prompt}
                    try:
                        response = await _within(client.post(url, json=body), timeout)
                        response.raise_for_status()
                        counts[query_id] = int(response.json()["count"])
                    except (httpx.HTTPError, KeyError, TypeError, ValueError) as error:
                        raise BackendError(
                            f"{url}: could not count the prompt tokens of query {query_id!r} "
                            f"({type(error).__name__}: {error})",
                            hint="charging prompt tokens needs a server with vLLM's /tokenize; "
                            "leave prompt tokens out of the budget for other servers",
                        ) from None
            return counts

        return asyncio.run(count_all())

    def _listings(self) -> list[_Listing]:
        """Each endpoint's ``/v1/models``, asked once before anything is spent."""
        import httpx

        timeout = self.options["timeout"]

        async def get_all() -> list:
            async with httpx.AsyncClient(headers=self._headers(), timeout=timeout) as client:
                return await asyncio.gather(
                    *[_within(client.get(base + "/models"), timeout) for base in self.urls],
                    return_exceptions=True)

        listings = []
        for base, response in zip(self.urls, asyncio.run(get_all()), strict=True):
            url = base + "/models"
            if isinstance(response, httpx.TransportError):
                listings.append(_Listing(url, problem=f"no answer ({type(response).__name__}: "
                                                      f"{response})", answered=False))
                continue
            if isinstance(response, httpx.DecodingError):
                listings.append(_Listing(url, problem=f"could not list the served models (the "
                                                      f"body could not be decoded: {response})"))
                continue
            if isinstance(response, BaseException):
                raise response
            if response.status_code in (401, 403):  # the requests would meet it too: refused now
                self._fatal = (response.status_code, f"{url}: HTTP {response.status_code}: "
                                                     f"{response.text[:300]}")
                self._raise_fatal()
            try:
                response.raise_for_status()
                listings.append(_Listing(url, served=_served_models(response)))
            except (httpx.HTTPError, ValueError) as error:
                listings.append(_Listing(url, problem=f"could not list the served models ({error})"))
        return listings

    def _discover_model(self, listings: list[_Listing]) -> tuple[str, str]:
        """The first model of the first endpoint that lists one, and that endpoint's listing URL:
        a pool is not refused because its first endpoint is down while another answers."""
        for listing in listings:
            if listing.served:
                return listing.served[0], listing.url
        empty = "could not list the served models (it lists no model)"
        raise BackendError(
            "; ".join(f"{listing.url}: {listing.problem or empty}" for listing in listings),
            hint="check the endpoint, or name the model: --backend-option model=NAME",
        )

    def _check_model(self, model: str, listings: list[_Listing], source: str | None = None) -> None:
        """Refuse, before anything is spent, a model an endpoint's ``/v1/models`` does not list
        (named, or discovered at ``source``), and a pool nothing answers at (one dead endpoint of
        several is taken out of the rotation later, as in a round). An endpoint without the
        listing (a router may have none) is taken at its word."""
        for listing in listings:
            if listing.served and model not in listing.served:
                found = f" (the model {source} lists first)" if source else ""
                raise BackendError(
                    f"{listing.url}: serves {', '.join(map(repr, listing.served[:5]))}, "
                    f"not the model {model!r}{found}",
                    hint="every endpoint must serve the model; name a served model: "
                    "--backend-option model=NAME",
                )
        if not any(listing.answered for listing in listings):
            raise BackendError(
                "; ".join(f"{listing.url}: {listing.problem}" for listing in listings),
                hint="check that the server is up and the --endpoint is right",
            )

    # ----------------------------------------------------------------------------- protocol

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        stops: Sequence[StopTest | None] | None = None,
        on_result: Callable[[int, GenerationResult], None] | None = None,
    ) -> list[GenerationResult]:
        """One round's results, in request order; ``on_result(i, result)`` is called (on this
        thread) as soon as request ``i``'s result is complete, before the round ends."""
        if not requests:
            return []
        if not self.urls:
            raise BackendError("the openai backend needs --endpoint URL")
        stops = list(stops) if stops is not None else [None] * len(requests)
        if len(stops) != len(requests):
            raise ValueError(f"{len(stops)} stop tests for {len(requests)} requests")
        model = self.model
        self._fatal = None
        results = asyncio.run(self._round(list(requests), model, stops, on_result))
        self._raise_fatal()
        return results

    def _raise_fatal(self) -> None:
        """The round's 401/403/404 as the run's error (module docstring), if one came back."""
        if self._fatal is None:
            return
        status, reason = self._fatal
        env = self.options["api_key_env"]
        state = "set" if os.environ.get(env) else "not set"
        raise BackendError(
            f"{reason}; every request would meet it, so nothing more was sent",
            hint=FATAL_STATUS_HINTS[status].format(env=env, state=state)
            + "; the samples that came back are kept, and a resume asks only for the rest",
        )

    def close(self) -> None:
        """Nothing stays open between rounds (each round's client is closed with it)."""

    async def _round(
        self, requests: list[GenerationRequest], model: str, stops: list[StopTest | None],
        on_result: Callable[[int, GenerationResult], None] | None = None,
    ) -> list[GenerationResult]:
        import httpx

        endpoints = [
            _Endpoint(u, asyncio.Semaphore(self.options["concurrency"])) for u in self.urls
        ]
        limits = httpx.Limits(max_connections=self.options["concurrency"] * len(endpoints))
        async with httpx.AsyncClient(
            timeout=self.options["timeout"], headers=self._headers(), limits=limits
        ) as client:
            jobs = []
            for request in requests:
                if request.query_id not in self.queries:
                    jobs.append(None)
                    continue
                seeds = request.seeds or (None,) * request.n
                # Bodies first: a request the API cannot take is refused before anything is sent.
                bodies = [self._body(request, model, seed, first=i == 0)
                          for i, seed in enumerate(seeds)]
                jobs.append([
                    asyncio.create_task(self._sample(client, endpoints, body, request, i, seed))
                    for i, seed, body in zip(request.sample_indices, seeds, bodies, strict=True)
                ])
            tasks = [t for job in jobs if job for t in job]
            watcher = asyncio.create_task(self._watch(tasks)) if self._progress else None
            try:
                return list(await asyncio.gather(*[
                    self._collect_one(i, request, job, test, on_result)
                    for i, (request, job, test) in enumerate(zip(requests, jobs, stops,
                                                                  strict=True))
                ]))
            finally:
                if watcher is not None:
                    watcher.cancel()

    async def _watch(self, tasks: list[asyncio.Task]) -> None:
        """Say how far a long round got: against a slow or stalled pool a round can take
        minutes (a request's timeout times its retries), and the run's own progress line comes
        only at the round's end."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            finished = [t for t in tasks if t.done()]
            failed = sum(1 for t in finished if not t.cancelled() and isinstance(t.result(), str))
            self._progress(
                f"  {len(finished)}/{len(tasks)} requests of this round back"
                + (f" ({failed} failed for good)" if failed else "")
                + f" after {time.monotonic() - started:.0f}s")

    async def _collect_one(self, i: int, request: GenerationRequest,
                           tasks: list[asyncio.Task] | None, test: StopTest | None,
                           on_result: Callable[[int, GenerationResult], None] | None,
                           ) -> GenerationResult:
        result = await self._collect(request, tasks, test)
        if on_result is not None:
            on_result(i, result)
        return result

    async def _collect(
        self, request: GenerationRequest, tasks: list[asyncio.Task] | None, test: StopTest | None
    ) -> GenerationResult:
        """One request's result from its samples' tasks; with a stop test, the tasks still
        pending when it holds are cancelled (module docstring)."""
        if tasks is None:
            return GenerationResult(
                query_id=request.query_id, samples=(), shortfall=request.n,
                reason=unknown_query_reason(request.query_id),
            )
        if test is not None:
            pending, prefix = set(tasks), 0
            while pending:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                start = prefix
                while (prefix < len(tasks) and tasks[prefix].done()
                       and not isinstance(tasks[prefix].result(), str)):
                    prefix += 1
                if prefix > start and test([t.result() for t in tasks[:prefix]]):
                    break
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                # a task that finished before its cancel took effect was generated: returned
                made = [t.result() for t in tasks if not t.cancelled()]
                return GenerationResult(
                    query_id=request.query_id,
                    samples=tuple(o for o in made if not isinstance(o, str)),
                    cancelled=sum(t.cancelled() for t in tasks),
                )
        outcomes = await asyncio.gather(*tasks)
        samples: list[GeneratedSample] = []
        reason = None
        for outcome in outcomes:  # the consecutive run of successes from the first
            if isinstance(outcome, str):
                reason = outcome
                break
            samples.append(outcome)
        return GenerationResult(
            query_id=request.query_id, samples=tuple(samples),
            shortfall=request.n - len(samples), reason=reason,
        )

    async def post_all(self, path: str, bodies: Sequence[tuple[str, dict[str, Any]]], parse):
        """Each ``(route_key, body)`` POSTed to ``path`` (from the servers' root, where vLLM
        serves its pooling API, not under ``/v1``) of this backend's endpoints with
        :meth:`_call`, concurrently (``concurrency`` per endpoint); the parsed payloads, or the
        reason each failed, in order."""
        import httpx

        endpoints = [
            _Endpoint(u.removesuffix("/v1"), asyncio.Semaphore(self.options["concurrency"]))
            for u in self.urls
        ]
        limits = httpx.Limits(max_connections=self.options["concurrency"] * len(endpoints))
        self._fatal = None
        async with httpx.AsyncClient(
            timeout=self.options["timeout"], headers=self._headers(), limits=limits
        ) as client:
            outcomes = await asyncio.gather(*[
                self._call(client, endpoints, path, body, key, parse) for key, body in bodies
            ])
        self._raise_fatal()
        return outcomes

    def _route(self, endpoints: list[_Endpoint], query_id: str) -> _Endpoint:
        """Rendezvous hashing over the endpoints still in (all of them when none is)."""
        live = [e for e in endpoints if not e.out] or endpoints
        return max(live, key=lambda e: hashlib.sha256(f"{e.url}\0{query_id}".encode()).digest())

    async def _sample(
        self, client, endpoints: list[_Endpoint], body: dict[str, Any],
        request: GenerationRequest, index: int, seed: int | None,
    ) -> GeneratedSample | str:
        """One sample, retried over the pool; a string is the reason it could not be made."""
        path = "/chat/completions" if self.options["api"] == "chat" else "/completions"
        asked_prompt = "prompt_logprobs" in body
        return await self._call(
            client, endpoints, path, body, request.query_id,
            lambda payload: self._parse(request, index, seed, payload, asked_prompt=asked_prompt),
        )

    async def _call(self, client, endpoints: list[_Endpoint], path: str, body: dict[str, Any],
                    route_key: str, parse):
        """POST ``body`` to ``path`` of the endpoint ``route_key`` routes to, with the retries,
        backoff and ejection of the module docstring; ``parse(payload)`` (which raises
        :class:`_Refused` on a malformed response), or a string: why it failed. Generation and
        the reward-model scorer (:mod:`ttcdsl.runtime.reward`) share it."""
        attempts = self.options["retries"] + 1
        last = "no attempt"
        for attempt in range(attempts):
            endpoint = self._route(endpoints, route_key)
            try:
                async with endpoint.limit:
                    if self._fatal is not None:  # every request would meet it: not sent
                        return f"not sent: {self._fatal[1]}"
                    payload = await self._post(client, endpoint.url + path, body)
                endpoint.failures = 0
                return parse(payload)
            except _Fatal as error:
                reason = f"{endpoint.url}: {error}"
                if self._fatal is None:
                    self._fatal = (error.status, reason)
                return reason
            except _Refused as error:
                return f"{endpoint.url}: request refused: {error}"
            except _Retryable as error:
                last = f"{endpoint.url}: {error}"
                if error.wait is not None and error.wait > self.options["timeout"]:
                    # a wait longer than a request may take is not a retry, it is a hang
                    return (f"{last}; the server asks to retry after {error.wait:g} s "
                            f"(Retry-After), longer than the timeout ({self.options['timeout']:g} s)")
                endpoint.failures += 1
                if endpoint.failures >= self.options["eject_after"]:
                    endpoint.out = True
                if attempt + 1 < attempts:
                    wait = self.options["backoff"] * 2**attempt * self._jitter.uniform(0.5, 1.5)
                    await asyncio.sleep(max(wait, error.wait or 0.0))
        return f"failed after {attempts} attempts; last: {last}"

    async def _post(self, client, url: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            response = await _within(client.post(url, json=body), self.options["timeout"])
        except httpx.TimeoutException:
            raise _Retryable(f"no response within {self.options['timeout']:g} s") from None
        except httpx.TransportError as error:
            raise _Retryable(f"connection failed ({type(error).__name__}: {error})") from None
        except httpx.DecodingError as error:  # a Content-Encoding its body is not in (a proxy's)
            raise _Retryable(f"the response body could not be decoded ({error})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            # Retry-After is read on every status retried (a 503 says it as a 429 does), under
            # the one rule of _call: honoured up to the timeout, a longer one fails at once
            raise _Retryable(f"HTTP {status}", retry_after_seconds(response.headers.get("retry-after")))
        if 300 <= status < 400:  # not followed: a POST redirected may come back a GET
            raise _Refused(f"HTTP {status}, a redirect to {response.headers.get('location')!r}; "
                           "give the URL it redirects to as the --endpoint")
        if status in FATAL_STATUS_HINTS:
            raise _Fatal(f"HTTP {status}: {response.text[:300]}", status)
        if status != 200:
            raise _Refused(f"HTTP {status}: {response.text[:300]}")
        try:
            return _json_body(response)
        except ValueError as error:
            raise _Retryable(str(error)) from None

    def _body(
        self, request: GenerationRequest, model: str, seed: int | None, *, first: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model, "n": 1, "max_tokens": request.max_tokens,
            "temperature": 1.0 if request.temperature is None else request.temperature,
            "top_p": 1.0 if request.top_p is None else request.top_p,
        }
        if seed is not None:
            body["seed"] = seed
        # vLLM's extensions, sent only when the policy sets them (plain OpenAI lacks them).
        for name in ("top_k", "min_p", "repetition_penalty", "presence_penalty",
                     "frequency_penalty"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        want = request.logprobs if request.logprobs is not None else (0 if self.logprobs else None)
        if self.prompt_nll and first:
            body["prompt_logprobs"] = 0  # the prompt tokens' own log-probabilities only
        if self.options["api"] == "chat":
            body["messages"] = self.queries.messages(request.query_id)
            if want is not None:
                body["logprobs"] = True
                body["top_logprobs"] = want
        else:
            query = self.queries.get(request.query_id)
            if query.messages is not None:
                raise BackendError(
                    f"query {request.query_id!r} is a chat; the completions API takes prompts",
                    hint="--backend-option api=chat",
                )
            body["prompt"] = query.prompt
            if want is not None:
                body["logprobs"] = want
        return body

    def _parse(
        self, request: GenerationRequest, index: int, seed, payload, *, asked_prompt: bool = False
    ) -> GeneratedSample:
        """One sample from a response. What the run reads is checked: text that is not a
        string, or log-probabilities missing where they were asked for or not numbers, refuse the
        response (another try of a misbehaving server gets the same); a token count or finish reason
        no server can mean (negative, not a whole number, more completion tokens than
        ``max_tokens``, a finish reason outside the API's) is stored as unknown, never as
        given, so the report says unknown instead of billing or averaging it. Zero tokens are
        such a count for a prompt (every request sends one) and for a non-empty text (it was
        made of tokens): a server that fills ``usage`` with zeros measured nothing."""
        choice = _first_choice(payload)
        try:
            usage = payload.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            if self.options["api"] == "chat":
                text = choice["message"]["content"]
                text = "" if text is None else text  # no content (a refusal, a tool call)
                content = (choice.get("logprobs") or {}).get("content")
                values = None if content is None else [t["logprob"] for t in content]
            else:
                text = choice["text"]
                values = (choice.get("logprobs") or {}).get("token_logprobs")
            if not isinstance(text, str):
                raise TypeError(f"the generated text is {type(text).__name__}, not a string")
            # an empty list for a text that has tokens is as missing as none (its mean unknown)
            if (self.logprobs or request.logprobs is not None) and (
                    values is None or (not values and text)):
                raise _Refused("the server returned no logprobs, and the run reads them "
                               "(the policy's confidence scorer, or logprobs=true)")
            if values is not None:
                # checked here, with the rest of the body: a null or textual log-probability
                # is the server's malformed answer, not a crash in the mean
                mean = mean_logprob([_logprob(value) for value in values])
            nll = None
            if asked_prompt:
                # vLLM puts them at the top of a chat response, in the choice of a completion
                holder = payload if self.options["api"] == "chat" else choice
                if holder.get("prompt_logprobs") is None:
                    raise _Refused(
                        "the server returned no prompt_logprobs (a vLLM extension), and the "
                        "policy reads prompt_nll")
                nll = _prompt_nll(holder)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            # AttributeError: a list or string where the API has an object (`logprobs: [...]`)
            raise _Refused(f"malformed response ({type(error).__name__}: {error})") from None
        answer, correct = self.queries.answer_and_label(request.query_id, text)
        finish = choice.get("finish_reason")
        return GeneratedSample(
            sample_index=index, text=text, answer=answer, correct=correct,
            prompt_tokens=_token_count(usage.get("prompt_tokens"), MAX_PROMPT_TOKENS, least=1),
            completion_tokens=_token_count(usage.get("completion_tokens"), request.max_tokens,
                                           least=1 if text else 0),
            finish_reason=finish if finish in FINISH_REASONS else None,
            mean_logprob=None if values is None else mean, prompt_nll=nll,
            seed=seed,
        )


async def _within(request, timeout: float):
    """``await request`` (an httpx call) within ``timeout`` seconds in all, to the response's
    last byte: httpx's timeout bounds each read, not the request, so a server trickling its
    body would never time out. A request cut here is cancelled (its connection closes) and
    raises httpx's ReadTimeout, as a silent server does."""
    import httpx

    try:
        return await asyncio.wait_for(request, timeout)
    except TimeoutError:  # asyncio's, since Python 3.11
        raise httpx.ReadTimeout(f"no complete response within {timeout:g} s") from None


def _json_body(response) -> Any:
    """A response's JSON; a ValueError quoting the start of a body that is not JSON (an HTML
    page of a proxy or a web UI, a stream), so the user sees what answered."""
    try:
        return response.json()
    except ValueError:
        raise ValueError(f"the body is not JSON: {response.text[:100]!r}") from None


def _first_choice(payload: Any) -> Any:
    """The first choice of a completion response; :class:`_Refused` saying what the body is
    instead (an error object sent with status 200, as some gateways do, is quoted)."""
    if isinstance(payload, dict) and "choices" not in payload and "error" in payload:
        raise _Refused(f"the server answered an error: {json.dumps(payload['error'])[:300]}")
    if not isinstance(payload, dict) or "choices" not in payload:
        raise _Refused(f"malformed response: the body is {_json_kind(payload)} without 'choices'")
    choices = payload["choices"]
    if not isinstance(choices, list) or not choices:
        kind = "an empty list" if choices == [] else _json_kind(choices)
        raise _Refused(f"malformed response: its 'choices' is {kind}, not a list of choices")
    return choices[0]


def _served_models(response) -> list[str]:
    """The model ids of a ``/v1/models`` response; a ValueError saying what is wrong with a body
    that is not such a listing (a server's bad answer is the user's to fix, not a crash)."""
    payload = _json_body(response)
    if not isinstance(payload, dict) or "data" not in payload:
        raise ValueError(f"the body is {_json_kind(payload)}, not an object with a 'data' list")
    if not isinstance(payload["data"], list):
        raise ValueError(f"its 'data' is {_json_kind(payload['data'])}, not a list of models")
    served = []
    for entry in payload["data"]:
        model = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model, str) or not model:
            raise ValueError(f"an entry of its 'data' has no model id: {str(entry)[:100]}")
        served.append(model)
    return served


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (dict, "an object"), (list, "a list"),
                       (str, "a string"), ((int, float), "a number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


# The finish reasons of OpenAI's API and vLLM's ("abort": the request was cancelled); another
# value would be counted as "not cut at max_tokens" without anyone knowing what it means.
FINISH_REASONS = frozenset({"stop", "length", "abort", "content_filter", "tool_calls",
                            "function_call"})


MAX_PROMPT_TOKENS = 1 << 31  # past any context window: a count above it is not one


def _token_count(value: Any, cap: int | None = None, least: int = 0) -> int | None:
    """A usage count as the server gave it, or None (unknown) where no server can mean it: not
    a whole number, fewer than ``least`` (negative; 0 for a prompt or a non-empty text, which
    are made of tokens), or (``cap``: completion tokens) more than ``max_tokens``. Unknown is
    billed as ``max_tokens``; a count taken as 0 would make a token budget never apply."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    count = int(value)
    if count < least or (cap is not None and count > cap):
        return None
    return count


def _prompt_nll(holder: dict[str, Any]) -> float | None:
    """The prompt's NLL from vLLM's ``prompt_logprobs`` (asked with 0 alternatives: each position
    maps the prompt token's id to its log-probability; position 0 is null)."""
    positions = holder["prompt_logprobs"]
    values: list[float | None] = []
    for position in positions:
        if position is None:
            values.append(None)
            continue
        if len(position) != 1:
            raise ValueError(f"a prompt position has {len(position)} log-probabilities, not 1")
        (entry,) = position.values()
        values.append(_logprob(entry["logprob"], "prompt"))
    return prompt_nll(values)


def _logprob(value: Any, what: str = "token") -> float:
    """A log-probability as the server gave it; a TypeError or ValueError (a malformed
    response) for one that is not a number or no log-probability can be."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # as the server wrote it (null, not Python's None)
        raise TypeError(f"a {what} log-probability is {json.dumps(value)[:50]}, not a number")
    if not math.isfinite(value) or value > 1e-6:  # a probability above 1
        raise ValueError(f"a {what} log-probability is {value!r}, not a log-probability "
                         "(finite and at most 0)")
    return float(value)
