"""Website extraction: each method, each trap, and the demo sites against their expected values."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import glaze_pipeline.sandbox
from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.web.extract import EVIDENCE_LIMIT, Page, decode_html, extract

DEMO_SITES = Path(glaze_pipeline.sandbox.__file__).parent / "demo_sites"
BASE = "https://acme.example/"


def run(html: str | bytes, url: str = BASE, base_url: str | None = None) -> list[Found]:
    body = html.encode("utf-8") if isinstance(html, str) else html
    return extract([Page(url, body)], base_url or url)


def values(found: list[Found], field: str) -> list[tuple[str, int]]:
    return [(f.value, f.confidence) for f in found if f.field == field]


def json_ld(data: str) -> str:
    return f'<html><head><script type="application/ld+json">{data}</script></head><body></body></html>'


# --- decoding -------------------------------------------------------------------------------------------


def test_decode_uses_header_charset_over_meta() -> None:
    body = '<meta charset="utf-8"><p>Café</p>'.encode("cp1252")
    assert "Café" in decode_html(body, "text/html; charset=windows-1252")


def test_decode_reads_meta_charset_cp1252_without_mojibake() -> None:
    body = '<html><head><meta charset="windows-1252"></head><body>Café l’atelier 2 €</body></html>'
    text = decode_html(body.encode("cp1252"), "text/html")
    assert "Café l’atelier 2 €" in text
    assert "Ã" not in text


def test_decode_reads_http_equiv_charset() -> None:
    body = '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"><p>Lumière’s</p>'
    # Latin-1 labels mean Windows-1252 on the web, so the curly apostrophe survives.
    assert "Lumière’s" in decode_html(body.encode("cp1252"), None)


def test_decode_defaults_to_utf8_then_falls_back_to_cp1252() -> None:
    assert decode_html("Café".encode(), None) == "Café"
    assert decode_html("Café Lumière".encode("cp1252"), None) == "Café Lumière"


def test_undeclared_windows_1252_keeps_its_own_letters() -> None:
    # Latin-1 would turn these bytes into invisible C1 control characters.
    assert decode_html("l’atelier, 2 € – œuvre".encode("cp1252"), None) == "l’atelier, 2 € – œuvre"


def test_decode_ignores_meta_claiming_utf16() -> None:
    body = '<meta charset="utf-16"><p>Café!</p>'.encode()  # even length: it would decode as UTF-16
    assert "Café!" in decode_html(body, None)


def test_decode_falls_back_when_declared_charset_is_wrong_or_unknown() -> None:
    assert decode_html("Café".encode("cp1252"), "text/html; charset=utf-8") == "Café"
    assert decode_html("Café".encode(), "text/html; charset=klingon-8") == "Café"


def test_decode_honours_utf8_bom() -> None:
    assert decode_html(b"\xef\xbb\xbf" + "Café".encode(), "text/html; charset=windows-1252") == "Café"


def test_cp1252_page_extracts_accented_name() -> None:
    html = '<html><head><meta charset="windows-1252"><meta property="og:site_name" content="Café Lumière">'
    found = run(html.encode("cp1252"))
    assert values(found, "company_name") == [("Café Lumière", 80)]


# --- JSON-LD --------------------------------------------------------------------------------------------

FULL_ORG = """{
  "@context": "https://schema.org", "@type": "Organization",
  "name": "Acme  Widgets", "legalName": "Acme Widgets Ltd", "url": "https://acme.example/",
  "description": "We make widgets.", "email": "Hello@Acme.example", "telephone": "+44 20 7946 0958",
  "sameAs": ["https://www.linkedin.com/company/acme-widgets/", "https://twitter.com/acmewidgets",
             "https://www.facebook.com/acmewidgets"],
  "address": {"@type": "PostalAddress", "addressLocality": "Leeds", "addressCountry": "GB"},
  "foundingDate": "2009-05-01", "numberOfEmployees": {"@type": "QuantitativeValue", "value": 120}
}"""


def test_json_ld_organization_fills_every_field_with_its_confidence() -> None:
    found = run(json_ld(FULL_ORG))
    assert values(found, "company_name") == [("Acme Widgets", 90), ("Acme Widgets Ltd", 85)]
    assert values(found, "company_description") == [("We make widgets.", 90)]
    assert values(found, "company_email") == [("hello@acme.example", 92)]  # +2: an address for everyone
    assert values(found, "company_phone") == [("+442079460958", 85)]
    assert values(found, "company_linkedin") == [("https://www.linkedin.com/company/acme-widgets", 90)]
    assert values(found, "company_twitter") == [("https://x.com/acmewidgets", 90)]
    assert values(found, "company_city") == [("Leeds", 85)]
    assert values(found, "company_country") == [("GB", 85)]
    assert values(found, "company_founded_year") == [("2009", 90)]
    assert values(found, "company_employee_count") == [("120", 85)]
    assert values(found, "company_website") == [("https://acme.example", 85)]


def test_json_ld_evidence_names_property_and_page() -> None:
    found = run(json_ld(FULL_ORG))
    name = next(f for f in found if f.field == "company_name" and f.confidence == 90)
    assert name.evidence == f"json-ld Organization.name @ {BASE}"


def test_json_ld_accepts_list_graph_and_business_types() -> None:
    listed = json_ld('[{"@type": "WebSite", "name": "Not a company"}, {"@type": "Corporation", "name": "Acme"}]')
    assert values(run(listed), "company_name") == [("Acme", 90)]
    graph = json_ld(
        '{"@context": "https://schema.org", "@graph": ['
        '{"@type": "WebPage", "name": "Home page"},'
        '{"@type": ["Thing", "HomeAndConstructionBusiness"], "name": "Acme Builders"}]}'
    )
    assert values(run(graph), "company_name") == [("Acme Builders", 90)]
    iri = json_ld(
        '[{"@type": "http://schema.org/Organization", "name": "A"}, {"@type": "schema:Corporation", "name": "B"}]'
    )
    assert values(run(iri), "company_name") == [("A", 90), ("B", 90)]


def test_json_ld_ignores_non_organization_types() -> None:
    html = json_ld('{"@type": "Product", "name": "Widget 3000", "description": "A widget."}')
    assert run(html) == []


def test_json_ld_bad_block_is_skipped_and_good_block_still_read() -> None:
    html = (
        '<script type="application/ld+json">{"@type": "Organization", "name": </script>'
        '<script type="application/ld+json">{"@type": "Organization", "name": "Acme"}</script>'
    )
    assert values(run(html), "company_name") == [("Acme", 90)]


def test_json_ld_repairs_common_mistakes() -> None:
    trailing_comma = json_ld('{"@type": "Organization", "name": "Acme", "sameAs": ["https://x.com/acme",],}')
    assert values(run(trailing_comma), "company_name") == [("Acme", 90)]
    wrapped = json_ld('<!-- {"@type": "Organization", "name": "Acme"} -->')
    assert values(run(wrapped), "company_name") == [("Acme", 90)]
    raw_newline = json_ld('{"@type": "Organization", "description": "Line one\nline two"}')
    assert values(run(raw_newline), "company_description") == [("Line one line two", 90)]


def test_json_ld_country_object_and_plain_employee_number() -> None:
    html = json_ld(
        '{"@type": "LocalBusiness", "numberOfEmployees": 42.0,'
        ' "address": [{"addressLocality": "Lyon", "addressCountry": {"@type": "Country", "name": "France"}}]}'
    )
    found = run(html)
    assert values(found, "company_country") == [("FR", 85)]
    assert values(found, "company_city") == [("Lyon", 85)]
    assert values(found, "company_employee_count") == [("42", 85)]


def test_json_ld_values_the_catalog_rejects_are_dropped() -> None:
    html = json_ld(
        '{"@type": "Organization", "name": "  ", "foundingDate": "unknown", "email": "not-an-email",'
        ' "address": {"addressCountry": "Atlantis"}, "numberOfEmployees": {"value": "many"}}'
    )
    assert run(html) == []


# --- OpenGraph / meta -----------------------------------------------------------------------------------


def test_meta_and_opengraph() -> None:
    html = """<head>
      <meta property="og:site_name" content="Acme">
      <meta name="description" content="Widgets for everyone.">
      <meta property="og:description" content="The widget people.">
      <meta property="og:url" content="https://acme.example/en/">
      <meta name="twitter:site" content="@acmehq">
      <meta property="og:title" content="Buy widgets now">
    </head>"""
    found = run(html)
    assert values(found, "company_name") == [("Acme", 80)]
    assert values(found, "company_description") == [("Widgets for everyone.", 75), ("The widget people.", 75)]
    assert values(found, "company_website") == [("https://acme.example/en", 70)]
    assert values(found, "company_twitter") == [("https://x.com/acmehq", 75)]


# --- <title> --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "base_url", "brand"),
    [
        (
            "Helix Biotech | Engineering proteins for a greener planet",
            "https://helix-biotech.example/",
            "Helix Biotech",
        ),
        # The tagline is shorter than the brand here: only the domain tells them apart.
        (
            "Grow faster – Acme Corporation International",
            "https://www.acme.co.uk/",
            "Acme Corporation International",
        ),
        ("Pricing · Lumen Labs", "https://app.lumenlabs.io/", "Lumen Labs"),
        ("Nordlicht: Software für Handwerker", "https://nordlicht.de/", "Nordlicht"),
        ("Home | Quokka", "https://unrelated.example/", "Quokka"),
        ("Welcome to Hewlett-Packard", "https://unrelated.example/", "Hewlett-Packard"),
        ("TinyForge", "https://tinyforge.example/", "TinyForge"),
        # No part matches the domain: the shortest part is the best guess.
        ("Ship parcels overnight, anywhere | Parcelo", "https://unrelated.example/", "Parcelo"),
    ],
)
def test_title_picks_the_brand_not_the_tagline(title: str, base_url: str, brand: str) -> None:
    found = run(f"<title>{title}</title>", url=base_url)
    confirmed_by_domain = "unrelated" not in base_url
    assert values(found, "company_name") == [(brand, 70 if confirmed_by_domain else 55)]


def test_title_that_is_only_a_sentence_gives_no_name() -> None:
    found = run("<title>We ship parcels overnight to anywhere in the country</title>")
    assert values(found, "company_name") == []


# --- links ----------------------------------------------------------------------------------------------


def test_mailto_link_is_an_email_without_its_query() -> None:
    found = run('<a href="mailto:Sales@Acme.example?subject=Hi%20there">Write</a>')
    assert values(found, "company_email") == [("sales@acme.example", 87)]  # on the site's own domain, +2 general
    assert found[0].evidence == f"mailto link @ {BASE}"


@pytest.mark.parametrize(
    "address",
    [
        "example@acme.example",
        "name@example.com",
        "you@example.org",
        "noreply@acme.example",
        "no-reply-billing@acme.example",
        "605a1d3c2b@o450.ingest.sentry.io",
        "abc123@sentry.wixpress.com",
        "support@wixpress.com",
    ],
)
def test_placeholder_and_third_party_emails_are_skipped(address: str) -> None:
    html = f'<a href="mailto:{address}">mail</a><p>Write to {address} today.</p>'
    assert values(run(html), "company_email") == []


def test_tel_link_with_country_code() -> None:
    found = run('<a href="tel:+44%2020%207946%200958">call</a>')
    assert values(found, "company_phone") == [("+442079460958", 75)]


def test_tel_link_with_00_prefix() -> None:
    assert values(run('<a href="tel:0049 30 5557 2100">call</a>'), "company_phone") == [("+493055572100", 75)]


def test_national_tel_uses_page_cctld_region() -> None:
    found = run('<a href="tel:030 5557 2100">call</a>', url="https://www.acme.de/kontakt")
    assert values(found, "company_phone") == [("+493055572100", 75)]
    uk = run('<a href="tel:020 7946 0958">call</a>', url="https://acme.co.uk/")
    assert values(uk, "company_phone") == [("+442079460958", 75)]


def test_national_tel_without_inferable_region_is_skipped() -> None:
    for url in ("https://acme.example/", "https://acme.com/", "https://acme.eu/"):
        assert values(run('<a href="tel:030 5557 2100">call</a>', url=url), "company_phone") == []


def test_national_json_ld_telephone_follows_the_same_rule() -> None:
    html = json_ld('{"@type": "Organization", "telephone": "01 45 67 89 10"}')
    assert values(run(html, url="https://acme.fr/"), "company_phone") == [("+33145678910", 85)]
    assert values(run(html, url="https://acme.example/"), "company_phone") == []


def test_social_profile_links() -> None:
    html = """
      <a href="https://www.linkedin.com/company/acme-widgets/about/">LinkedIn</a>
      <a href="https://twitter.com/AcmeWidgets">Twitter</a>
      <a href="https://x.com/acme_eu?lang=en">X</a>
      <a href="/about">About</a>
    """
    found = run(html)
    assert values(found, "company_linkedin") == [("https://www.linkedin.com/company/acme-widgets", 80)]
    assert values(found, "company_twitter") == [
        ("https://x.com/AcmeWidgets", 80),
        ("https://x.com/acme_eu", 80),
    ]


def test_share_buttons_are_not_profiles() -> None:
    html = """
      <a href="https://twitter.com/intent/tweet?text=Hi&amp;url=https%3A%2F%2Facme.example">Tweet</a>
      <a href="https://x.com/share?url=https%3A%2F%2Facme.example">Post</a>
      <a href="https://www.linkedin.com/shareArticle?mini=true&amp;url=https%3A%2F%2Facme.example">Share</a>
      <a href="https://x.com/acmehq">Follow</a>
    """
    found = run(html)
    assert values(found, "company_twitter") == [("https://x.com/acmehq", 80)]
    assert values(found, "company_linkedin") == []


def test_repeated_link_is_reported_once() -> None:
    html = '<a href="https://x.com/acmehq">X</a><footer><a href="https://x.com/acmehq">X</a></footer>'
    assert values(run(html), "company_twitter") == [("https://x.com/acmehq", 80)]


# --- visible text ---------------------------------------------------------------------------------------


def test_visible_text_email() -> None:
    found = run("<body><p>Questions? Email support@acme.example.</p></body>")
    assert values(found, "company_email") == [("support@acme.example", 80)]
    assert found[0].evidence == f"visible text @ {BASE}"


def test_emails_inside_script_style_or_file_names_are_not_text() -> None:
    html = """<body>
      <script>var inbox = "dev@acme-internal.example";</script>
      <style>.x::after { content: "css@acme-internal.example"; }</style>
      <img src="/img/logo@2x.png" alt="logo@2x.png"><p>retina: logo@2x.png</p>
      <!-- old@acme.example -->
    </body>"""
    assert values(run(html), "company_email") == []


# --- robustness -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"\x00\x00\x00",
        b"\xff\xfe\x00g\x00a\x00r",
        b"<<<>>>",
        b"<html",
        b"%PDF-1.7\n\x00\x01\x02junk",
    ],
)
def test_garbage_gives_nothing(body: bytes) -> None:
    assert run(body) == []


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20261101)
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(400)))
        extract([Page("https://acme.de/", body, "text/html; charset=bogus")], "http://[::1")


def test_no_pages_and_unparseable_base_url() -> None:
    assert extract([], BASE) == []
    found = extract([Page(BASE, b"<title>Acme</title>")], "not a url")
    assert values(found, "company_name") == [("Acme", 55)]


def test_evidence_is_capped() -> None:
    url = "https://acme.example/" + "a" * 500
    found = run('<a href="mailto:hi@acme.example">hi</a>', url=url)
    assert found and all(len(f.evidence) <= EVIDENCE_LIMIT for f in found)
    assert found[0].evidence.startswith("mailto link @ https://acme.example/aaa")


def test_every_page_is_read_and_evidence_says_which() -> None:
    pages = [
        Page("https://acme.example/", b"<title>Acme | Widgets for everyone</title>"),
        Page("https://acme.example/contact", b'<a href="mailto:hi@acme.example">hi</a>'),
    ]
    found = extract(pages, "https://acme.example/")
    assert [(f.field, f.evidence) for f in found] == [
        ("company_name", "title @ https://acme.example/"),
        ("company_email", "mailto link @ https://acme.example/contact"),
    ]


# --- demo sites -----------------------------------------------------------------------------------------


def demo_pages(host: str) -> list[Page]:
    files = sorted((DEMO_SITES / host).glob("*.html"), key=lambda p: (p.name != "index.html", p.name))
    return [Page(f"https://{host}/" + ("" if f.name == "index.html" else f.name), f.read_bytes()) for f in files]


EXPECTED: dict[str, dict[str, str]] = json.loads((DEMO_SITES / "expected.json").read_text(encoding="utf-8"))


def test_every_demo_site_has_expectations() -> None:
    hosts = {p.name for p in DEMO_SITES.iterdir() if p.is_dir()}
    assert hosts == set(EXPECTED)
    assert len(hosts) == 6


@pytest.mark.parametrize("host", sorted(EXPECTED))
def test_demo_site_best_values(host: str) -> None:
    found = extract(demo_pages(host), f"https://{host}/")
    top = {f.field: max(g.confidence for g in found if g.field == f.field) for f in found}
    best: dict[str, set[str]] = {}
    for f in found:
        if f.confidence == top[f.field]:
            best.setdefault(f.field, set()).add(f.value)
    # One value at the top per field, so the expectation does not depend on tie-breaking.
    assert all(len(v) == 1 for v in best.values()), best
    assert {field: v.pop() for field, v in best.items()} == EXPECTED[host]


def test_demo_traps_are_present() -> None:
    """The demo pages keep exercising what they were written to exercise."""
    cafe = (DEMO_SITES / "cafe-lumiere.example" / "index.html").read_bytes()
    assert "Café Lumière".encode("cp1252") in cafe
    with pytest.raises(UnicodeDecodeError):
        cafe.decode("utf-8")
    helix = (DEMO_SITES / "helix-biotech.example" / "index.html").read_text(encoding="utf-8")
    assert "twitter.com/intent/tweet" in helix
    assert "<title>Helix Biotech | Engineering proteins for a greener planet</title>" in helix
    kestrel = (DEMO_SITES / "kestrel-logistics.example" / "index.html").read_text(encoding="utf-8")
    assert 'href="tel:020 7946 0321"' in kestrel
    assert "mailto:" not in kestrel


# --- deeper extraction: each field and its trap ------------------------------------------------------


def best(found: list[Found], field: str) -> str | None:
    candidates = [f for f in found if f.field == field]
    return max(candidates, key=lambda f: f.confidence).value if candidates else None


def test_microdata_organization_is_structured_data() -> None:
    html = """<div itemscope itemtype="https://schema.org/Organization">
      <span itemprop="name">Acme Widgets</span><a itemprop="email" href="mailto:info@acme.example">mail</a>
      <div itemprop="address" itemscope itemtype="https://schema.org/PostalAddress">
        <span itemprop="addressLocality">Leeds</span><span itemprop="addressCountry">GB</span></div></div>"""
    found = run(html)
    assert ("Acme Widgets", 90) in values(found, "company_name")
    assert best(found, "company_city") == "Leeds" and best(found, "company_country") == "GB"


def test_logo_is_the_header_image_not_a_badge_or_sprite() -> None:
    html = """<header><a href="/"><img src="/img/sprite-icons.png" alt="logo sprite">
      <img src="/img/acme-logo.svg" alt="Acme"></a></header>
      <footer><img src="/img/award-badge-logo.png"><img src="/img/partner-logo.png"></footer>"""
    found = run(html)
    assert values(found, "company_logo_url") == [("https://acme.example/img/acme-logo.svg", 80)]


def test_every_social_profile_in_canonical_form_and_no_share_buttons() -> None:
    html = """<a href="https://www.facebook.com/pages/Acme-Widgets/123456789">f</a>
      <a href="https://www.facebook.com/sharer/sharer.php?u=https://acme.example">share</a>
      <a href="http://instagram.com/acmewidgets/">i</a><a href="https://www.instagram.com/p/Bx12/">post</a>
      <a href="https://www.youtube.com/user/AcmeTV?feature=watch">y</a><a href="https://www.youtube.com/watch?v=abc">v</a>
      <a href="https://github.com/acme-widgets/widget-sdk">code</a><a href="https://twitter.com/#!/AcmeNews">t</a>"""
    found = run(html)
    assert best(found, "company_facebook") == "https://www.facebook.com/123456789"
    assert values(found, "company_instagram") == [("https://www.instagram.com/acmewidgets", 80)]
    assert values(found, "company_youtube") == [("https://www.youtube.com/user/AcmeTV", 80)]
    assert best(found, "company_github") == "https://github.com/acme-widgets"
    assert best(found, "company_twitter") == "https://x.com/AcmeNews"


def test_links_to_the_sites_own_pages_are_not_profiles() -> None:
    found = run(
        '<a href="https://github.com/blog">Blog</a><a href="https://github.com/contact">Contact</a>',
        url="https://github.com/",
    )
    assert values(found, "company_github") == []


@pytest.mark.parametrize(
    "text",
    ["sales [at] acme [dot] example", "sales(at)acme.example", "sales {at} acme.example", "sales at acme dot example"],
)
def test_obfuscated_emails(text: str) -> None:
    assert best(run(f"<p>Write to {text}</p>"), "company_email") == "sales@acme.example"


def test_cloudflare_protected_email_is_decoded() -> None:
    address = b"info@acme.example"
    encoded = "2a" + bytes(b ^ 0x2A for b in address).hex()
    html = (
        f'<a href="/cdn-cgi/l/email-protection#{encoded}">[email protected]</a><span data-cfemail="{encoded}"></span>'
    )
    assert values(run(html), "company_email") == [("info@acme.example", 87)]


def test_words_that_only_look_like_obfuscation_are_not_emails() -> None:
    assert values(run("<p>Your claim is evaluated at support.apple.com within days.</p>"), "company_email") == []


def test_third_party_email_scores_below_the_companys_own() -> None:
    found = run('<a href="mailto:complaints@ombudsman.example.org">o</a><a href="mailto:hello@acme.example">a</a>')
    scores = dict(values(found, "company_email"))
    assert scores["hello@acme.example"] >= 80 > scores["complaints@ombudsman.example.org"]


def test_text_phone_with_inferred_country_and_fax_skipped() -> None:
    html = "<p>Acme Inc, 12 Main Street, Dallas, TX 75201</p><p>Phone: (214) 555-0142</p><p>Fax: (214) 555-0199</p>"
    found = run(html, url="https://acme.com/")
    assert values(found, "company_phone") == [("+12145550142", 75)]  # the US address makes national numbers readable
    assert best(found, "company_city") == "Dallas" and best(found, "company_country") == "US"


def test_phone_without_any_country_clue_is_not_guessed() -> None:
    assert values(run("<p>Call (214) 555-0142</p>", url="https://acme.com/"), "company_phone") == []


@pytest.mark.parametrize(
    ("text", "city", "country"),
    [
        ("14 New Bond St, Bath, BA1 1BE", "Bath", "GB"),
        ("2701 California Ave SW Seattle, WA 98116", "Seattle", "US"),
        ("4120 Clipper Court, Fremont CA 94538 USA", "Fremont", "US"),
        ("Unit 5, 100 King St W, Toronto, ON M5X 1A9", "Toronto", "CA"),
        ("493 Charles Street, North Perth, WA 6006.", "North Perth", "AU"),
        ("Kungsgatan 4, Stockholm, Sweden", "Stockholm", "SE"),
    ],
)
def test_postal_address_gives_city_and_iso_country(text: str, city: str, country: str) -> None:
    found = run(f"<address>{text}</address>")
    assert best(found, "company_city") == city
    assert best(found, "company_country") == country


def test_german_postcode_and_town_on_a_german_site() -> None:
    assert best(run("<p>Musterstraße 1, 10115 Berlin</p>", url="https://acme.de/impressum"), "company_city") == "Berlin"


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("Family owned since 1989.", "1989"),
        ("Acme was established in 1921 in Leeds.", "1921"),
        ("Gegründet 1998 in Hamburg.", "1998"),
        ("Fondée en 2004 à Lyon.", "2004"),
    ],
)
def test_founded_year_from_text(text: str, year: str) -> None:
    assert best(run(f"<p>{text}</p>"), "company_founded_year") == year


def test_copyright_years_and_member_since_are_not_founding() -> None:
    found = run("<p>© 1998-2014 Acme Ltd. All rights reserved.</p><p>BBB member since 2005</p>")
    assert values(found, "company_founded_year") == []


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("We have 120 employees in three offices.", "120"),
        ("Acme employs a team of 45 people.", "45"),
        ("Über 1.200 Mitarbeiter weltweit.", "1200"),
    ],
)
def test_employee_count_only_when_stated(text: str, count: str) -> None:
    assert best(run(f"<p>{text}</p>"), "company_employee_count") == count


@pytest.mark.parametrize(
    "text",
    ["2000 people trained", "Over 10 million people use Acme", "We served 300 clients", "500 people attended"],
)
def test_people_counts_that_are_not_staff(text: str) -> None:
    assert values(run(f"<p>{text}</p>"), "company_employee_count") == []


def test_brand_beats_legal_name_and_both_agree() -> None:
    html = (
        "<title>Acme Widgets | Widgets for everyone</title>"
        "<footer>© 2014 Acme Widgets Ltd. All rights reserved.</footer>"
    )
    scores = dict(values(run(html, url="https://acmewidgets.example/"), "company_name"))
    assert scores["Acme Widgets"] > scores["Acme Widgets Ltd"]
    # The title's 70, raised by the copyright line and the legal-form name that say the same.
    assert scores["Acme Widgets"] == 80


def test_website_credit_is_not_the_company_name() -> None:
    assert values(run("<footer>© 2014 Website design by Pixel Agency Ltd</footer>"), "company_name") == []


def test_article_meta_description_is_not_the_company_description() -> None:
    html = '<meta name="description" content="How to choose a widget.">'
    assert values(run(html, url="https://acme.example/blog/how-to", base_url=BASE), "company_description") == [
        ("How to choose a widget.", 50)
    ]
    assert values(run(html), "company_description") == [("How to choose a widget.", 75)]


def test_one_finding_per_value_with_agreement_across_methods() -> None:
    html = (
        '<script type="application/ld+json">{"@type": "Organization", "email": "hello@acme.example"}</script>'
        '<a href="mailto:hello@acme.example">m</a>'
    )
    found = values(run(html), "company_email")
    assert found == [("hello@acme.example", 95)]  # 92 from JSON-LD, +5 for the mailto link, capped at 95
