"""Loopback simulators of the paid APIs, speaking their documented wire formats, with failure knobs.

- `linkedin`: the Fresh LinkedIn Data API (RapidAPI): GET /get-company-by-linkedinurl,
  /get-company-by-domain, /get-personal-profile; headers x-rapidapi-key / x-rapidapi-host;
  answers `{"data": {...}, "message": "ok"}`, 404 when there is no such profile, 401 with
  RapidAPI's message for a bad key. Logos are signed CDN URLs that expire
  (`https://media.licdn.com/dms/image/v2/…/company-logo_200_200/…?e=<unix expiry>&v=beta&t=<token>`),
  `specialities` is one comma-separated string.
- `search`: Serper: POST /search with `{"q": ...}` and header X-API-KEY; answers with
  `organic` results and a `knowledgeGraph` whose `type` is the kind of company ("Software
  company") and whose `attributes` are Google's display strings (Headquarters "Austin, TX",
  Founded "March 3, 2009, Leeds, United Kingdom", "Number of employees" "1,234 (2026)");
  a bad key gets 403 `{"message":"Unauthorized.","statusCode":403}`.

Where each shape comes from, with dates: docs/vendors.md.

Answers are made up deterministically from the company's name, so the two APIs agree
with each other. Each vendor's reader (`linkedin_ask`, `serper_ask`) turns a request into
that vendor's answer; `ApiSimulator` puts the failure knobs in front of it (latency, 429
with Retry-After, 5xx rate, timeouts, malformed JSON, not-found), which can change while
it runs. Every request is logged with its arrival time on the server's clock, so tests
assert on what the provider really sent. Entities whose name contains `missing` are not
found; `malformed` ones get broken JSON.

    python -m glaze_pipeline.sandbox.apis linkedin --latency 0.02   # serve in the foreground
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from glaze_pipeline.sandbox.loopback import HIT, LoopbackServer

INDUSTRIES = ("Software Development", "Logistics", "Biotechnology", "Robotics", "Financial Services", "Retail")
PLACES = (("London", "GB", "United Kingdom"), ("Berlin", "DE", "Germany"), ("Austin", "US", "United States"))
BANDS = ((10, "2-10"), (50, "11-50"), (200, "51-200"), (500, "201-500"), (1000, "501-1000"), (10**9, "1001+"))


@dataclass
class Knobs:
    """What the simulator does besides answering; change the fields while it runs."""

    latency_s: float = 0.0
    rate_limit_per_s: float = 0.0  # over this many requests in the trailing second: 429 (0 = no limit)
    retry_after_s: float | None = 1.0  # Retry-After sent with every 429 (None: no Retry-After, as a spent quota)
    error_rate: float = 0.0  # share of requests answered 503
    timeout_rate: float = 0.0  # share of requests that hang for `hang_s` (longer than the client waits)
    hang_s: float = 30.0
    malformed_rate: float = 0.0  # share of 200 answers with a broken JSON body
    not_found_rate: float = 0.0  # share of entities (by name, so stable) that do not exist
    force_status: int | None = None  # answer every request with this status (401, 429, 503…)
    location: str = ""  # Location header sent with a forced 3xx
    fail_first: int = 0  # the first N requests get 503
    throttle_first: int = 0  # the first N requests get 429 with Retry-After


def _digest(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def label_of(entity: str) -> str:
    """The company or person handle inside a domain, LinkedIn URL or search query."""
    value = entity.strip().lower()
    if "linkedin.com/" in value:
        return value.rstrip("/").rsplit("/", 1)[-1]
    host = urlsplit(value if "://" in value else f"//{value}").hostname or value
    if "." in host and " " not in value:
        return host.removeprefix("www.").split(".")[0]
    return re.sub(r"[^a-z0-9]+", "-", value).strip("-")


# The demo's fictional companies: what the simulators say agrees with their websites.
DEMO_COMPANIES: dict[str, tuple[str, str, str, str, int, int]] = {
    # label: (name, industry, city, country code, founded, employees)
    "northwind-robotics": ("Northwind Robotics", "Robotics", "Berlin", "DE", 2016, 85),
    "bluefjord-analytics": ("Bluefjord Analytics", "Software Development", "Oslo", "NO", 2011, 42),
    "cafe-lumiere": ("Café Lumière", "Food and Beverage Services", "Lyon", "FR", 1998, 14),
    "helix-biotech": ("Helix Biotech", "Biotechnology", "Ghent", "BE", 2013, 64),
    "tinyforge": ("TinyForge", "Software Development", "Utrecht", "NL", 2020, 7),
    "kestrel-logistics": ("Kestrel Logistics", "Logistics", "Leeds", "GB", 2009, 120),
}
_COUNTRY_NAMES = {
    "DE": "Germany",
    "NO": "Norway",
    "FR": "France",
    "BE": "Belgium",
    "NL": "Netherlands",
    "GB": "United Kingdom",
}


def company_facts(label: str) -> dict[str, Any]:
    """The one made-up truth about a company, shared by both simulators."""
    h = _digest(label)
    name = label.replace("-", " ").title()
    city, country, country_name = PLACES[h % len(PLACES)]
    employees = 5 + h % 4000
    if label in DEMO_COMPANIES:
        name, industry, city, country, founded, employees = DEMO_COMPANIES[label]
        return {
            "name": name,
            "industry": industry,
            "employees": employees,
            "band": next(band for top, band in BANDS if employees <= top),
            "city": city,
            "country": country,
            "country_name": _COUNTRY_NAMES[country],
            "founded": founded,
            "description": f"{name} is a {industry.lower()} company based in {city}.",
            "specialties": [industry.lower()],
        }
    return {
        "name": name,
        "industry": INDUSTRIES[h % len(INDUSTRIES)],
        "employees": employees,
        "band": next(band for top, band in BANDS if employees <= top),
        "city": city,
        "country": country,
        "country_name": country_name,
        "founded": 1950 + h % 70,
        "description": f"{name} is a {INDUSTRIES[h % len(INDUSTRIES)].lower()} company based in {city}.",
        "specialties": ["automation", "analytics", "logistics", "biotech", "payments"][h % 3 : h % 3 + 3],
    }


def linkedin_company(label: str, domain: str | None) -> dict[str, Any]:
    f = company_facts(label)
    return {
        "company_id": str(_digest(label) % 10**8),
        "company_name": f["name"],
        "description": f["description"],
        "domain": domain or f"{label}.com",
        "employee_count": f["employees"],
        "employee_range": f["band"],
        "follower_count": f["employees"] * 7,
        "hq_city": f["city"],
        "hq_country": f["country"],
        "hq_full_address": f"{f['city']}, {f['country_name']}",
        "industries": [f["industry"]],
        "linkedin_url": f"https://www.linkedin.com/company/{label}/",
        "logo_url": signed_logo_url(label),
        "specialities": ", ".join(f["specialties"]),
        "tagline": f"{f['name']}: {f['industry']}",
        "website": f"https://{domain or label + '.com'}",
        "year_founded": f["founded"],
    }


LOGO_LIFETIME_S = 60 * 86_400  # signed media.licdn.com links seen in public samples expire weeks to months later


def signed_logo_url(label: str, now: float | None = None) -> str:
    """A logo the way LinkedIn's CDN serves it: a signed URL that stops working at `e` (unix seconds).

    Shape from public samples of media.licdn.com company logos (docs/vendors.md).
    """
    issued = int(now if now is not None else time.time()) // 86_400 * 86_400
    expiry = issued + LOGO_LIFETIME_S
    media_id = f"D4E0BAQ{_digest(label) % 10**10:010d}"
    token = hashlib.sha256(f"{label}:{expiry}".encode()).hexdigest()[:43]
    return (
        f"https://media.licdn.com/dms/image/v2/{media_id}/company-logo_200_200/company-logo_200_200/0/"
        f"{issued * 1000}/{label.replace('-', '_')}_logo?e={expiry}&v=beta&t={token}"
    )


def linkedin_person(label: str) -> dict[str, Any]:
    h = _digest(label)
    company = ("acme-robotics", "kestrel-logistics", "helix-biotech")[h % 3]
    f = company_facts(company)
    title = ("Head of Growth", "CTO", "Data Engineer")[h % 3]
    return {
        "full_name": label.replace("-", " ").title(),
        "headline": f"{title} at {f['name']}",
        "job_title": title,
        "location": f"{f['city']}, {f['country_name']}",
        "company": f["name"],
        "company_linkedin_url": f"https://www.linkedin.com/company/{company}/",
        "linkedin_url": f"https://www.linkedin.com/in/{label}/",
    }


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October")
_US_STATES = {"Austin": "TX"}


def knowledge_graph_attributes(label: str, f: dict[str, Any]) -> dict[str, str]:
    """Google's display strings, as Serper passes them on: a US place is "City, ST", any other
    "City, Country"; Founded is a bare year or "Month D, YYYY, Place"; the headcount carries its year."""
    h = _digest(label)
    state = _US_STATES.get(f["city"]) if f["country"] == "US" else None
    place = f"{f['city']}, {state}" if state else f"{f['city']}, {f['country_name']}"
    founded = str(f["founded"]) if h % 2 else f"{_MONTHS[h % 10]} {1 + h % 28}, {f['founded']}, {place}"
    return {
        "Headquarters": place,
        "Founded": founded,
        "Number of employees": f"{f['employees']:,} (2026)",
        "CEO": f"Jane Roe ({_MONTHS[h % 10][:3]} {1 + h % 28}, 2019–)",
    }


def serper_answer(query: str) -> dict[str, Any]:
    label = label_of(query)
    f = company_facts(label)
    domain = query if "." in query and " " not in query else f"{label}.com"
    return {
        "searchParameters": {"q": query, "type": "search", "engine": "google"},
        "knowledgeGraph": {
            "title": f["name"],
            "type": f"{f['industry']} company",
            "website": f"https://{domain}",
            "imageUrl": f"https://encrypted-tbn0.gstatic.com/images?q=tbn:{label}&s=0",
            "description": f["description"],
            "descriptionSource": "Wikipedia",
            "descriptionLink": f"https://en.wikipedia.org/wiki/{f['name'].replace(' ', '_')}",
            "attributes": knowledge_graph_attributes(label, f),
        },
        "organic": [
            {
                "title": f"{f['name']} | LinkedIn",
                "link": f"https://www.linkedin.com/company/{label}",
                "snippet": f"{f['name']} | {f['employees']:,} followers on LinkedIn. {f['description']}",
                "position": 1,
            },
            {"title": f["name"], "link": f"https://{domain}/", "snippet": f["description"], "position": 2},
            {
                "title": f"{f['name']} - Crunchbase Company Profile",
                "link": f"https://www.crunchbase.com/organization/{label}",
                "snippet": f"{f['name']} was founded in {f['founded']} and is based in {f['city']}.",
                "position": 3,
            },
        ],
    }


# --- the vendors: how each reads a request and what it answers --------------------------------


@dataclass(frozen=True)
class Ask:
    """One request read by its vendor's rules: the key it came with, what it asks about, the vendor's answer."""

    api_key: str | None
    entity: str
    status: int
    body: dict[str, Any]


Exists = Callable[[str], bool]  # a company or person label -> whether the simulated vendor knows it
Reader = Callable[[web.Request, Exists], Awaitable[Ask]]


async def linkedin_ask(request: web.Request, exists: Exists) -> Ask:
    key = request.headers.get("x-rapidapi-key")
    entity = request.query.get("linkedin_url") or request.query.get("domain") or ""
    label = label_of(entity)
    wrong_host = request.headers.get("x-rapidapi-host") != "web-scraping-api2.p.rapidapi.com"
    if not entity or wrong_host or not exists(label):
        return Ask(key, entity, 404, {"data": None, "message": "not found"})
    if request.path == "/get-personal-profile":
        data = linkedin_person(label)
    else:
        data = linkedin_company(label, request.query.get("domain"))
    return Ask(key, entity, 200, {"data": data, "message": "ok"})


async def serper_ask(request: web.Request, exists: Exists) -> Ask:
    key = request.headers.get("X-API-KEY")
    try:
        query = str((await request.json())["q"])
    except (ValueError, KeyError, TypeError):
        return Ask(key, "", 400, {"message": "q is required"})
    if not exists(label_of(query)):
        return Ask(key, query, 200, {"organic": [], "searchParameters": {"q": query}})
    return Ask(key, query, 200, serper_answer(query))


@dataclass(frozen=True)
class VendorSim:
    routes: tuple[tuple[str, str], ...]
    read: Reader
    bad_key: tuple[int, dict[str, Any]]  # what the vendor answers a key it does not know


VENDORS: dict[str, VendorSim] = {
    "linkedin": VendorSim(
        (("GET", "/get-company-by-linkedinurl"), ("GET", "/get-company-by-domain"), ("GET", "/get-personal-profile")),
        linkedin_ask,
        # RapidAPI's gateway answers an unknown key itself, before the API sees the request.
        (401, {"message": "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info."}),
    ),
    "search": VendorSim((("POST", "/search"),), serper_ask, (403, {"message": "Unauthorized.", "statusCode": 403})),
}
STATS_PATH = "/__sim/stats"


# --- the simulator: a vendor's routes behind the failure knobs ---------------------------------


class ApiSimulator(LoopbackServer):
    """One simulated API on 127.0.0.1; `log` holds each request with its entity and status."""

    def __init__(self, vendor: str, api_key: str = "sim-key", knobs: Knobs | None = None, seed: int = 7) -> None:
        if vendor not in VENDORS:
            raise ValueError(f"no simulator for {vendor!r}")
        super().__init__()
        self.vendor = vendor
        self.api_key = api_key
        self.knobs = knobs or Knobs()
        self._random = random.Random(seed)
        self._recent: deque[float] = deque()
        self._decided = 0  # requests answered or refused so far: what fail_first and throttle_first count
        self.active = 0
        self.max_active = 0  # most requests being answered at once: what the concurrency limit holds down

    def env(self) -> dict[str, str]:
        """The GLAZE_* variables that point the provider here."""
        prefix = f"GLAZE_{self.vendor.upper()}_"
        return {prefix + "BASE_URL": self.base_url, prefix + "API_KEY": self.api_key}

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(STATS_PATH, self._stats)
        vendor = VENDORS[self.vendor]
        for method, path in vendor.routes:
            router.add_route(method, path, partial(self._answer, vendor.read))

    def by_entity(self) -> Counter[str]:
        return Counter(h.entity for h in list(self.log) if h.path != STATS_PATH)

    async def _stats(self, request: web.Request) -> web.Response:
        asked = [h for h in list(self.log) if h.path != STATS_PATH]
        return web.json_response({"requests": len(asked), "by_status": dict(Counter(h.status for h in asked))})

    def _exists(self, label: str) -> bool:
        return "missing" not in label and (_digest(label) % 1000) >= self.knobs.not_found_rate * 1000

    def _refusal(self, key: str | None) -> tuple[int, float | None] | None:
        """A status that overrides the answer (and a Retry-After), or None to answer."""
        k = self.knobs
        decided, self._decided = self._decided, self._decided + 1
        if key != self.api_key:
            return VENDORS[self.vendor].bad_key[0], None
        if k.force_status is not None:
            return k.force_status, k.retry_after_s if k.force_status == 429 else None
        if decided < k.fail_first:
            return 503, None
        if decided < k.throttle_first:
            return 429, k.retry_after_s
        if k.rate_limit_per_s > 0:
            now = time.monotonic()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= k.rate_limit_per_s:
                return 429, k.retry_after_s
            self._recent.append(now)
        if k.error_rate and self._random.random() < k.error_rate:
            return 503, None
        return None

    async def _answer(self, read: Reader, request: web.Request) -> web.Response:
        k = self.knobs
        ask = await read(request, self._exists)
        request[HIT].entity = ask.entity
        refusal = self._refusal(ask.api_key)
        hang = refusal is None and k.timeout_rate > 0 and self._random.random() < k.timeout_rate
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if k.latency_s:
                await asyncio.sleep(k.latency_s)
            if hang:
                await asyncio.sleep(k.hang_s)
        finally:
            self.active -= 1
        if refusal is not None:
            status, retry_after = refusal
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            if 300 <= status < 400:
                headers["Location"] = k.location
            body = VENDORS[self.vendor].bad_key[1] if status == VENDORS[self.vendor].bad_key[0] else None
            return web.json_response(body or {"message": f"simulated {status}"}, status=status, headers=headers)
        broken = "malformed" in ask.entity or (k.malformed_rate and self._random.random() < k.malformed_rate)
        if ask.status == 200 and broken:
            return web.Response(text='{"data": {"company_name": "Tru', content_type="application/json")
        return web.json_response(ask.body, status=ask.status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendor", choices=["linkedin", "search"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default="sim-key")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    sim = ApiSimulator(args.vendor, args.key, Knobs(latency_s=args.latency)).start(args.port)
    print(json.dumps({"vendor": args.vendor, "base_url": sim.base_url}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
