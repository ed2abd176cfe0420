"""The HTTP API on a real uvicorn server (loopback), real Postgres and Redis, a loopback website server and Dagster."""

from __future__ import annotations

import csv
import io
import json
import logging
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import dagster as dg
import httpx
import psycopg
import pytest
from websockets.sync.client import connect as ws_connect

from glaze_pipeline.api.service import MULTIPART_FRAMING_BYTES
from glaze_pipeline.core.model.urls import parse_entity
from glaze_pipeline.core.pipeline.record import CachedRecords, cached_record, walk_cache
from glaze_pipeline.core.storage.api_keys import revoke_key
from glaze_pipeline.sandbox.sites import SiteServer, synthetic_pages
from glaze_pipeline_tests.api.live import ApiServer, api_server, new_key, run_batch, sensor_tick


@pytest.fixture(scope="module")
def site(servers) -> Iterator[SiteServer]:
    with SiteServer(synthetic_pages) as server, pytest.MonkeyPatch.context() as mp:
        ip, port = server.address
        mp.setenv("GLAZE_RESOLVE", f"*.bench.example={ip}:{port}")
        mp.setenv("GLAZE_REQUESTS_WAIT_S", "0")  # a sensor tick with nothing queued ends at once
        mp.setenv("GLAZE_MAX_UPLOAD_MB", "2")
        mp.setenv("GLAZE_API_MAX_WAIT_S", "300")  # a held POST outlasts a run on a loaded machine
        yield server


@pytest.fixture(scope="module")
def api(site) -> Iterator[ApiServer]:
    with api_server() as server:
        yield server


@pytest.fixture
def token(conn) -> str:
    return new_key(conn)


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


def host() -> str:
    """A website nobody asked about before: its answers are in no cache yet."""
    return f"https://co{uuid.uuid4().hex[:10]}.bench.example"


def title(url: str) -> str:
    """The company name the synthetic site states (sandbox/sites.py)."""
    return url.split("//")[1].split(".")[0].replace("-", " ").title()


def enrich(client: httpx.Client, url: str, fields: list[str] | None = None, **kwargs: object) -> httpx.Response:
    return client.post("/v1/enrich", json={"url": url, "fields": fields or ["company_name"]}, **kwargs)  # type: ignore[arg-type]


# --- auth ---------------------------------------------------------------------------------------------


def test_every_bad_key_gets_the_same_401_and_no_key_is_logged(api, conn, token, caplog):
    revoked = new_key(conn, "revoked")
    revoke_key(conn, revoked.split("_")[1])
    conn.commit()
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    cases = {
        "missing": {},
        "empty": {"X-API-Key": ""},
        "malformed": {"X-API-Key": "hello"},
        "unknown id": {"X-API-Key": "glz_000000000000_" + "A" * 43},
        "wrong secret": {"X-API-Key": wrong_secret},
        "revoked": {"X-API-Key": revoked},
    }
    body = {"url": host(), "fields": ["company_name"]}
    with caplog.at_level(logging.DEBUG), httpx.Client(base_url=api.url) as client:
        answers = {name: client.post("/v1/enrich", json=body, headers=h) for name, h in cases.items()}
        in_query = client.get(f"/v1/tables?api_key={token}&X-API-Key={token}")
        accepted = client.get("/v1/tables", headers={"X-API-Key": token})
    first = answers["missing"]
    assert first.status_code == 401 and first.headers["www-authenticate"] == "ApiKey"
    for name, answer in answers.items():
        assert (answer.status_code, answer.json(), answer.headers.get("www-authenticate")) == (
            401,
            first.json(),
            "ApiKey",
        ), name
    assert in_query.status_code == 401  # a key is read from the header only
    assert accepted.status_code == 200
    # The server's logs (uvicorn, the app, psycopg, redis) never show a key; this test's own client may.
    server_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "GET /v1/tables?api_key=glz_[redacted]" in server_logs  # the access log saw the request, not the key
    assert token not in server_logs and revoked not in server_logs


def test_a_key_sees_only_its_own_requests_and_tables(api, conn, token):
    other = new_key(conn, "other")
    with api.client(token) as mine, api.client(other) as theirs:
        request_id = enrich(mine, host()).json()["request_id"]
        assert mine.get(f"/v1/enrich/{request_id}").status_code == 200
        assert theirs.get(f"/v1/enrich/{request_id}").status_code == 404
        upload = mine.post("/v1/tables", files={"file": ("mine.csv", f"website\n{host()}\n".encode())})
        table_id = upload.json()["table_id"]
        assert [t["table_id"] for t in mine.get("/v1/tables").json()] == [table_id]
        assert theirs.get("/v1/tables").json() == []
        assert theirs.get(f"/v1/tables/{table_id}").status_code == 404
        assert theirs.get(f"/v1/tables/{table_id}/export").status_code == 404
        assert mine.get(f"/v1/tables/{table_id}").status_code == 200


def test_rate_limit_answers_429_with_retry_after(api, conn):
    token = new_key(conn, "slow", rate_per_min=6, burst=3)  # one request every 10 s after a burst of 3
    with api.client(token) as client:
        codes = [client.get("/v1/tables").status_code for _ in range(4)]
        refused = client.get("/v1/tables")
    assert codes[:3] == [200, 200, 200]
    assert codes[3] == 429 and refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert "6 requests per minute" in refused.json()["detail"]


# --- single records ----------------------------------------------------------------------------------


def test_bad_url_and_unknown_field_get_422_naming_them(api, token):
    with api.client(token) as client:
        bad_url = client.post("/v1/enrich", json={"url": "not a url", "fields": ["company_name"]})
        unknown = client.post("/v1/enrich", json={"url": host(), "fields": ["company_name", "shoe_size"]})
        misfit = client.post("/v1/enrich", json={"url": host(), "fields": ["person_title"]})
        wrong_type = client.post("/v1/enrich", json={"url": host(), "type": "linkedin_person", "fields": ["name"]})
    assert bad_url.status_code == 422 and bad_url.json()["detail"][0]["loc"] == ["body", "url"]
    assert "not a URL" in bad_url.json()["detail"][0]["msg"]
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["input"] == "shoe_size"
    assert misfit.status_code == 422 and "person_title" in misfit.json()["detail"][0]["msg"]
    assert wrong_type.status_code == 422 and wrong_type.json()["detail"][0]["loc"] == ["body", "type"]
    assert "not a linkedin_person" in wrong_type.json()["detail"][0]["msg"]


def test_a_budget_that_is_not_a_finite_amount_gets_422_saying_so(api, conn, token):
    before = conn.execute("SELECT count(*) FROM glaze.requests").fetchone()
    with api.client(token) as client:
        answers = {
            raw: client.post(
                "/v1/enrich",
                content=f'{{"url": "{host()}", "fields": ["company_name"], "max_cost_usd": {raw}}}',
                headers={"content-type": "application/json"},
            )
            for raw in ("NaN", "Infinity", '"nan"', "-1")
        }
    for raw, answer in answers.items():
        assert answer.status_code == 422, raw
        assert answer.json()["detail"][0]["loc"] == ["body", "max_cost_usd"]
    assert all("finite number" in answers[raw].json()["detail"][0]["msg"] for raw in ("NaN", "Infinity", '"nan"'))
    assert conn.execute("SELECT count(*) FROM glaze.requests").fetchone() == before


def test_miss_queues_then_one_sensor_tick_makes_one_run_that_completes_them(api, conn, token, instance):
    urls = [host() for _ in range(3)]
    with api.client(token) as client:
        queued = [enrich(client, u, ["name", "email", "company_founded_year"]) for u in urls]
        assert [r.status_code for r in queued] == [202, 202, 202]
        ids = [r.json()["request_id"] for r in queued]
        assert {r.json()["status"] for r in queued} == {"queued"}
        assert queued[0].headers["location"] == f"/v1/enrich/{ids[0]}"

        events: list[dict] = []
        listener = threading.Thread(target=_listen, args=(api, token, ids[0], events))
        listener.start()
        tick = sensor_tick(instance)
        assert len(tick.run_requests) == 1  # three queued requests, one run
        assert sensor_tick(instance).run_requests == []  # and never launched twice
        result = run_batch(instance, tick.run_requests[0])
        assert result.success
        listener.join(timeout=30)

        done = [client.get(f"/v1/enrich/{i}").json() for i in ids]
        again = enrich(client, urls[1], ["name", "email", "company_founded_year"])
    for url, body in zip(urls, done, strict=True):
        assert body["status"] == "completed", body
        assert body["data"]["company_name"]["value"] == title(url)
        assert body["data"]["company_name"]["source"] == "website"
        assert body["data"]["company_email"]["value"].startswith("hello@")
        assert body["run_id"] == result.run_id and body["run_url"].endswith(f"/runs/{result.run_id}")
        assert body["costs"] == {"total_usd": 0.0, "by_provider": {}}
    assert [e["status"] for e in events][-1] == "completed"
    assert events[-1]["result"]["data"]["company_name"]["value"] == title(urls[0])
    # The job wrote the cache: the same question is now answered at once, with no run.
    assert again.status_code == 200 and again.json()["cache_hit"] is True
    assert again.json()["data"]["company_name"] == done[1]["data"]["company_name"]
    assert sensor_tick(instance).run_requests == []


def _listen(api: ApiServer, token: str, request_id: str, events: list[dict]) -> None:
    url = api.url.replace("http://", "ws://") + f"/v1/enrich/{request_id}/events"
    with ws_connect(url, additional_headers={"X-API-Key": token}, open_timeout=10) as ws:
        for message in ws:
            events.append(json.loads(message))


def test_cache_hit_answers_200_at_once_with_no_run(api, conn, token, instance):
    url = host()
    with api.client(token) as client:
        first = enrich(client, url, ["company_name"])
        run_batch(instance, sensor_tick(instance).run_requests[0])
        assert client.get(f"/v1/enrich/{first.json()['request_id']}").json()["status"] == "completed"
        runs_before = len(instance.get_runs())
        hit = enrich(client, url, ["company_name"])
    assert hit.status_code == 200
    body = hit.json()
    assert body["status"] == "completed" and body["cache_hit"] is True and body["run_id"] is None
    assert body["data"]["company_name"]["value"] == title(url)
    assert sensor_tick(instance).run_requests == []
    assert len(instance.get_runs()) == runs_before


def test_a_remembered_hit_answers_exactly_as_the_full_cache_walk(api, conn, token, instance):
    """The API remembers a hit's cache walk; asked again, it answers from memory only while every cache entry
    the walk read is unchanged, and then it answers exactly what the full walk answers."""
    url, fields = host(), ["company_name", "company_email", "company_industry"]
    with api.client(token) as client:
        enrich(client, url, fields)
        run_batch(instance, sensor_tick(instance).run_requests[0])
    svc = api.server.config.app.state.service
    cache, entity, floor = svc.runtime.cache, parse_entity(url), svc.settings.min_confidence
    providers = [svc.runtime.provider(n) for n in svc.settings.waterfall_order]
    memory = CachedRecords()

    def both(wanted: list[str] = fields) -> tuple[dict | None, dict | None]:
        return memory.answer(cache, providers, entity, wanted, floor), cached_record(
            cache, providers, entity, wanted, floor
        )

    remembered, full = both()
    assert full is not None and remembered == full and memory.reused == 0
    again, full = both()
    assert again == full and memory.reused == 1  # from memory, the same answer
    narrower, full = both(["company_name"])
    assert narrower == full and memory.reused == 1  # other fields: another walk

    # An entry the walk read changes: memory is not used, and the answer follows the cache.
    walk = walk_cache(cache, providers, entity, fields, floor)
    website_key = next(k for k in walk.keys if ":website:" in k)
    payload = json.loads(walk.found[website_key])
    payload["found"] = [[f, "Renamed Co" if f == "company_name" else v, c, e] for f, v, c, e in payload["found"]]
    assert cache.client is not None
    cache.client.set(website_key, json.dumps(payload).encode(), keepttl=True)
    changed, full = both()
    assert changed == full and changed != remembered and memory.reused == 1
    assert changed is not None and changed["data"]["company_name"]["value"] == "Renamed Co"
    assert both() == (full, full) and memory.reused == 2

    cache.client.delete(website_key)  # expired: the run would crawl again, so it is a miss both ways
    assert both() == (None, None) and memory.reused == 2


def test_wait_holds_the_post_until_the_result(api, conn, token, instance):
    url = host()
    answer: list[httpx.Response] = []
    with api.client(token) as client:
        waiting = threading.Thread(target=lambda: answer.append(enrich(client, url, params={"wait": 300}, timeout=310)))
        waiting.start()
        deadline = time.monotonic() + 10
        while not (tick := sensor_tick(instance)).run_requests and time.monotonic() < deadline:
            pass  # the POST is in flight: its request appears in the queue within milliseconds
        run_batch(instance, tick.run_requests[0])
        waiting.join(timeout=300)
    assert answer[0].status_code == 200
    assert answer[0].json()["status"] == "completed" and answer[0].json()["cache_hit"] is False


def test_idempotent_retry_returns_the_same_request(api, token):
    body = {"url": host(), "fields": ["company_name"]}
    with api.client(token) as client:
        first = client.post("/v1/enrich", json=body, headers={"Idempotency-Key": "order-17"})
        retry = client.post("/v1/enrich", json=body, headers={"Idempotency-Key": "order-17"})
        other = client.post("/v1/enrich", json=body, headers={"Idempotency-Key": "order-18"})
        changed = client.post(
            "/v1/enrich", json=body | {"fields": ["company_email"]}, headers={"Idempotency-Key": "order-17"}
        )
    assert first.status_code == retry.status_code == 202
    assert retry.json()["request_id"] == first.json()["request_id"]
    assert other.json()["request_id"] != first.json()["request_id"]
    assert changed.status_code == 409 and "different body" in changed.json()["detail"]


# --- tables -------------------------------------------------------------------------------------------


def test_oversized_upload_gets_413_before_the_body_is_read(api, conn):
    token = new_key(conn, "big")
    cap = api.server.config.app.state.service.max_body_bytes
    total = cap * 20
    with socket.create_connection(("127.0.0.1", int(api.url.rsplit(":", 1)[1]))) as sock:
        boundary = "glazeboundary"
        head = (
            f"POST /v1/tables HTTP/1.1\r\nHost: test\r\nX-API-Key: {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        part = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\nwebsite\n'.encode()
        )
        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        chunk = b"https://a.bench.example\n" * 10_000  # ~240 KB
        sent = len(part)
        sock.settimeout(5)
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered while we were still sending
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break  # it stopped reading
            sent += len(chunk)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < total  # refused while streaming, long before the whole body
    assert b"larger than" in reply


def test_declared_oversized_upload_is_refused_before_reading(api, token):
    cap = api.server.config.app.state.service.max_body_bytes
    with socket.create_connection(("127.0.0.1", int(api.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/tables HTTP/1.1\r\nHost: test\r\nX-API-Key: {token}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {cap + 1}\r\n\r\n".encode()
        )
        reply = sock.recv(65536)  # not one byte of the body was sent
    assert reply.startswith(b"HTTP/1.1 413")


def test_bad_csv_gets_422_with_the_reason_and_registers_nothing(api, conn, token):
    with api.client(token) as client:
        no_urls = client.post("/v1/tables", files={"file": ("people.csv", b"name,age\nAda,36\nAlan,41\n")})
        wrong_column = client.post(
            "/v1/tables",
            files={"file": ("leads.csv", f"website\n{host()}\n".encode())},
            data={"url_column": "homepage"},
        )
        bad_field = client.post(
            "/v1/tables", files={"file": ("leads.csv", f"website\n{host()}\n".encode())}, data={"fields": "shoe_size"}
        )
        not_a_table = client.post("/v1/tables", files={"file": ("notes.docx", b"PK\x03\x04")})
        no_file = client.post("/v1/tables", data={"name": "nothing"}, files={"other": ("x.csv", b"a\n")})
    assert no_urls.status_code == 422 and "URL" in no_urls.json()["detail"]
    assert wrong_column.status_code == 422 and "homepage" in wrong_column.json()["detail"]
    assert bad_field.status_code == 422 and "shoe_size" in bad_field.json()["detail"]
    assert not_a_table.status_code == 422 and ".docx" in not_a_table.json()["detail"]
    assert no_file.status_code == 422 and "`file`" in no_file.json()["detail"]
    key_id = token.split("_")[1]
    assert conn.execute("SELECT count(*) FROM glaze.tables WHERE api_key_id = %s", (key_id,)).fetchone()[0] == 0


@pytest.mark.slow
def test_upload_runs_like_a_dropped_file_and_the_export_escapes_formulas(api, conn, token, instance):
    from glaze_pipeline.definitions import defs
    from glaze_pipeline.defs.ingest.sensors import new_tables_sensor
    from glaze_pipeline.defs.resources import RuntimeResource

    urls = [host(), host()]
    upload = f'website,note\n{urls[0]},=HYPERLINK("http://evil")\n{urls[1]},+1 555\n{urls[0]},dup\nnot a url,x\n'
    with api.client(token) as client:
        created = client.post(
            "/v1/tables",
            files={"file": ("Leads 2026.csv", upload.encode())},
            data={"fields": "company_name,company_email"},
        )
        assert created.status_code == 201, created.text
        table = created.json()
        assert (table["rows_in"], table["accepted"], table["rejected"], table["duplicates"]) == (4, 2, 1, 1)
        assert table["status"] == "pending" and table["fields"] == ["company_name", "company_email"]

        with dg.build_sensor_context(instance=instance, resources={"runtime": RuntimeResource()}) as context:
            tick = new_tables_sensor(context)
        assert table["table_id"] in [r.partition_key for r in tick.run_requests]  # picked up like an inbox file
        instance.add_dynamic_partitions("tables", [table["table_id"]])
        run = defs.resolve_job_def("enrich_table").execute_in_process(
            instance=instance, partition_key=table["table_id"]
        )
        assert run.success
        conn.execute("UPDATE glaze.tables SET last_run_id = %s WHERE table_id = %s", (run.run_id, table["table_id"]))
        conn.commit()

        summary = client.get(f"/v1/tables/{table['table_id']}").json()
        exported = client.get(f"/v1/tables/{table['table_id']}/export", params={"format": "csv"})
    assert summary["status"] == "enriched" and summary["enriched_rows"] == 2
    assert summary["coverage"] == {"company_name": 1.0, "company_email": 1.0}
    assert summary["run_url"].endswith(f"/runs/{run.run_id}")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0])[:2] == ["website", "note"] and list(rows[0])[-1] == "glaze_status"
    assert [r["website"] for r in rows] == [urls[0], urls[1], urls[0], "not a url"]  # every input row, in order
    assert rows[0]["note"] == '\'=HYPERLINK("http://evil")' and rows[1]["note"] == "'+1 555"
    assert rows[0]["company_name"] == title(urls[0]) and rows[2]["company_name"] == title(urls[0])


# --- health, metrics, docs ------------------------------------------------------------------------------


def test_healthz_and_metrics(api, conn, token):
    conn.execute(
        "INSERT INTO glaze.provider_calls (provider, request_hash, status, cost_usd, table_id) VALUES "
        "('search', %s, 'filled', 0.25, 'metrics-test'), ('search', %s, 'filled', 0.5, 'metrics-test')",
        (uuid.uuid4().hex, uuid.uuid4().hex),
    )
    conn.commit()
    with api.client(token) as client:
        enrich(client, host())
        health = client.get("/healthz")
        text = client.get("/metrics").text
    total = conn.execute("SELECT sum(cost_usd)::float8 FROM glaze.provider_calls WHERE provider = 'search'").fetchone()[
        0
    ]
    queued = conn.execute("SELECT count(*) FROM glaze.requests WHERE status = 'queued'").fetchone()[0]
    assert health.status_code == 200 and health.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}
    figures = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if not line.startswith("#")
    }
    assert figures['glaze_requests{state="pending"}'] == queued >= 1
    assert figures['glaze_provider_cost_usd_total{provider="search"}'] == pytest.approx(total)
    assert "glaze_request_duration_seconds_bucket" in text and "glaze_request_success_ratio" in text
    conn.execute("DELETE FROM glaze.provider_calls WHERE table_id = 'metrics-test'")
    conn.commit()


def test_openapi_lists_the_field_catalog_and_an_example_per_endpoint(api):
    from glaze_pipeline.core.model.fields import FIELD_NAMES

    with httpx.Client(base_url=api.url) as client:
        spec = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    enum = spec["components"]["schemas"]["FieldName"]["enum"]
    assert set(FIELD_NAMES) <= set(enum) and "name" in enum and "industry" in enum
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            good = [c for c in responses if c.startswith("2")]
            content = responses[good[0]].get("content", {})
            schema = next(iter(content.values()), {}).get("schema", {}) if content else {}
            ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                assert spec["components"]["schemas"][name].get("examples"), (method, path, name)


def test_console_refuses_forms_from_another_origin_and_sockets_without_a_key(api, token):
    from websockets.exceptions import InvalidStatus

    with httpx.Client(base_url=api.url) as client:
        forged = client.post("/console/login", data={"api_key": token}, headers={"Origin": "https://evil.example"})
        same = client.post("/console/login", data={"api_key": token}, headers={"Origin": api.url})
    assert forged.status_code == 403 and "glaze_session" not in forged.headers.get("set-cookie", "")
    assert same.status_code == 303 and "HttpOnly" in same.headers["set-cookie"]
    assert "SameSite=strict" in same.headers["set-cookie"]
    url = api.url.replace("http://", "ws://") + f"/v1/enrich/{uuid.uuid4()}/events"
    with (  # refused at the handshake: no socket without a key
        pytest.raises(InvalidStatus),
        ws_connect(url, additional_headers={"X-API-Key": "wrong"}, open_timeout=10),
    ):
        pass


# --- least privilege ----------------------------------------------------------------------------------


def test_read_paths_log_in_as_the_reader_and_cannot_write(api):
    """Requests, tables, exports and metrics read as glaze_reader: a bug in a read path cannot change data."""
    service = api.server.config.app.state.service
    with service.db.reading() as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("glaze_reader",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE glaze.requests SET status = 'failed'")
        conn.rollback()
        conn.execute("SET TRANSACTION READ WRITE")  # even a read-write transaction has no right to write
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE glaze.requests SET status = 'failed'")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT key_hash FROM glaze.api_keys")  # key hashes are not for readers
        conn.rollback()


def test_one_upload_cap_for_every_way_in(api):
    service = api.server.config.app.state.service
    assert service.max_body_bytes == service.settings.upload_limits.max_bytes + MULTIPART_FRAMING_BYTES
