"""Website extraction: each method, each trap, and the demo sites against their expected values.

Confidences come from the fitted table (core/web/extract/confidence.json), so these tests assert
which value wins and how values compare; test_extract_choice.py covers the choice rules and cleaning.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import glaze_pipeline.sandbox
from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.web.extract import EVIDENCE_LIMIT, METHODS, REGIONAL, Page, decode_html, extract
from glaze_pipeline.core.web.extract.base import Clue, Context, Method, parse_page
from glaze_pipeline.core.web.extract.text import visible_lines

DEMO_SITES = Path(glaze_pipeline.sandbox.__file__).parent / "demo_sites"
BASE = "https://acme.example/"


def run(html: str | bytes, url: str = BASE, base_url: str | None = None) -> list[Found]:
    body = html.encode("utf-8") if isinstance(html, str) else html
    return extract([Page(url, body)], base_url or url)


MIN_CONFIDENCE = 70  # GLAZE_MIN_CONFIDENCE's default: below it, a value is kept only as a candidate


def values_of(found: list[Found], field: str) -> list[str]:
    return [f.value for f in found if f.field == field]


def emitted(found: list[Found], field: str) -> Found:
    """The field's highest-confidence value: the one the merge would take."""
    return max((f for f in found if f.field == field), key=lambda f: f.confidence)


def chosen(found: list[Found], field: str) -> str | None:
    candidates = [f for f in found if f.field == field]
    return emitted(found, field).value if candidates else None


def confidence_of(found: list[Found], field: str, value: str) -> int:
    return next(f.confidence for f in found if f.field == field and f.value == value)


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
    assert chosen(run(html.encode("cp1252")), "company_name") == "Café Lumière"


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


def test_json_ld_organization_fills_every_field_above_the_default_min_confidence() -> None:
    found = run(json_ld(FULL_ORG))
    expected = {
        "company_name": "Acme Widgets",  # the brand; its legal name "Acme Widgets Ltd" is the same candidate
        "company_description": "We make widgets.",
        "company_email": "hello@acme.example",
        "company_phone": "+442079460958",
        "company_linkedin": "https://www.linkedin.com/company/acme-widgets",
        "company_twitter": "https://x.com/acmewidgets",
        "company_city": "Leeds",
        "company_country": "GB",
        "company_hq_location": "Leeds, GB",
        "company_founded_year": "2009",
        "company_employee_count": "120",
        "company_website": "https://acme.example",
    }
    assert {field: chosen(found, field) for field in expected} == expected
    # Structured employee counts are too rare in the labelled corpus to have earned a high confidence.
    assert all(f.confidence >= MIN_CONFIDENCE for f in found if f.field in expected and "employee" not in f.field)
    assert values_of(found, "company_name") == ["Acme Widgets"]


def test_json_ld_evidence_names_property_and_page() -> None:
    found = run(json_ld(FULL_ORG))
    name = next(f for f in found if f.field == "company_name")
    assert name.evidence == f"json-ld Organization.name @ {BASE}"


def test_json_ld_accepts_list_graph_and_business_types() -> None:
    listed = json_ld('[{"@type": "WebSite", "name": "Not a company"}, {"@type": "Corporation", "name": "Acme"}]')
    assert chosen(run(listed), "company_name") == "Acme"
    graph = json_ld(
        '{"@context": "https://schema.org", "@graph": ['
        '{"@type": "WebPage", "name": "Home page"},'
        '{"@type": ["Thing", "HomeAndConstructionBusiness"], "name": "Acme Builders"}]}'
    )
    assert chosen(run(graph), "company_name") == "Acme Builders"
    iri = json_ld(
        '[{"@type": "http://schema.org/Organization", "name": "A"}, {"@type": "schema:Corporation", "name": "B"}]'
    )
    assert sorted(values_of(run(iri), "company_name")) == ["A", "B"]


def test_json_ld_ignores_non_organization_types() -> None:
    html = json_ld('{"@type": "Product", "name": "Widget 3000", "description": "A widget."}')
    assert run(html) == []


def test_json_ld_bad_block_is_skipped_and_good_block_still_read() -> None:
    html = (
        '<script type="application/ld+json">{"@type": "Organization", "name": </script>'
        '<script type="application/ld+json">{"@type": "Organization", "name": "Acme"}</script>'
    )
    assert chosen(run(html), "company_name") == "Acme"


def test_json_ld_repairs_common_mistakes() -> None:
    trailing_comma = json_ld('{"@type": "Organization", "name": "Acme", "sameAs": ["https://x.com/acme",],}')
    assert chosen(run(trailing_comma), "company_name") == "Acme"
    wrapped = json_ld('<!-- {"@type": "Organization", "name": "Acme"} -->')
    assert chosen(run(wrapped), "company_name") == "Acme"
    raw_newline = json_ld('{"@type": "Organization", "description": "Line one\nline two"}')
    assert chosen(run(raw_newline), "company_description") == "Line one line two"
    escaped = json_ld('{"@type": "WebSite", "description": "The Think &amp; Do Tank"}')
    assert chosen(run(escaped), "company_description") == "The Think & Do Tank"


def test_json_ld_country_object_and_plain_employee_number() -> None:
    html = json_ld(
        '{"@type": "LocalBusiness", "numberOfEmployees": 42.0,'
        ' "address": [{"addressLocality": "Lyon", "addressCountry": {"@type": "Country", "name": "France"}}]}'
    )
    found = run(html)
    assert chosen(found, "company_country") == "FR"
    assert chosen(found, "company_city") == "Lyon"
    assert chosen(found, "company_employee_count") == "42"


def test_json_ld_contact_points_and_location_are_read() -> None:
    html = json_ld(
        '{"@type": "Organization", "name": "Acme", "telephone": "(+44)7758085585",'
        ' "contactPoint": [{"@type": "ContactPoint", "telephone": "+1-800-692-7753", "contactType": "sales"}],'
        ' "location": {"@type": "PostalAddress", "addressLocality": "Bristol, Avon,",'
        ' "addressCountry": "United Kingdom"}}'
    )
    found = run(html)
    assert set(values_of(found, "company_phone")) == {"+447758085585", "+18006927753"}
    assert chosen(found, "company_city") == "Bristol"
    assert chosen(found, "company_hq_location") == "Bristol, United Kingdom"


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
    assert chosen(found, "company_name") == "Acme"
    assert set(values_of(found, "company_description")) == {"Widgets for everyone.", "The widget people."}
    assert values_of(found, "company_website") == ["https://acme.example"]  # the site, not one of its pages
    assert values_of(found, "company_twitter") == ["https://x.com/acmehq"]


def test_bare_twitter_handle_and_geo_tags() -> None:
    html = """<head><meta name="twitter:site" content="github"><meta name="geo.placename" content="USA">
      <meta name="geo.region" content="CA-ON"></head>"""
    found = run(html)
    assert values_of(found, "company_twitter") == ["https://x.com/github"]
    assert set(values_of(found, "company_country")) == {"US", "CA"}  # a country in geo.placename is no town
    assert values_of(found, "company_city") == []


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
        ("Grow faster – Acme Corporation International", "https://www.acme.co.uk/", "Acme Corporation International"),
        ("Pricing · Lumen Labs", "https://app.lumenlabs.io/", "Lumen Labs"),
        ("Nordlicht: Software für Handwerker", "https://nordlicht.de/", "Nordlicht"),
        ("VisionProject :: Web based tool for project management", "https://visionproject.se/", "VisionProject"),
        ("Home | Quokka", "https://unrelated.example/", "Quokka"),
        ("Welcome to Hewlett-Packard", "https://unrelated.example/", "Hewlett-Packard"),
        ("TinyForge", "https://tinyforge.example/", "TinyForge"),
        # No part matches the domain: the shortest part is the best guess.
        ("Ship parcels overnight, anywhere | Parcelo", "https://unrelated.example/", "Parcelo"),
    ],
)
def test_title_picks_the_brand_not_the_tagline(title: str, base_url: str, brand: str) -> None:
    assert chosen(run(f"<title>{title}</title>", url=base_url), "company_name") == brand


def test_a_title_the_domain_confirms_is_no_less_sure_than_one_it_does_not() -> None:
    confirmed = run("<title>Quokka | Home</title>", url="https://quokka.example/")
    unconfirmed = run("<title>Quokka | Home</title>", url="https://unrelated.example/")
    assert confidence_of(confirmed, "company_name", "Quokka") >= confidence_of(unconfirmed, "company_name", "Quokka")


def test_generic_page_titles_are_no_names() -> None:
    for title in ("About Us", "Contact Us", "Home", "Contacts"):
        assert values_of(run(f"<title>{title}</title><p>x</p>"), "company_name") == [], title


def test_title_that_is_only_a_sentence_gives_no_name() -> None:
    found = run("<title>We ship parcels overnight to anywhere in the country</title>")
    assert values_of(found, "company_name") == []


# --- links ----------------------------------------------------------------------------------------------


def test_mailto_link_is_an_email_without_its_query() -> None:
    found = run('<a href="mailto:Sales@Acme.example?subject=Hi%20there">Write</a>')
    assert values_of(found, "company_email") == ["sales@acme.example"]
    assert emitted(found, "company_email").evidence == f"mailto link @ {BASE}"


def test_mailto_link_with_several_addresses_gives_each() -> None:
    found = run('<a href="mailto:w.scharf@acme.example,%20office@acme.example?subject=x">mail</a>')
    assert chosen(found, "company_email") == "office@acme.example"
    assert set(values_of(found, "company_email")) == {"office@acme.example", "w.scharf@acme.example"}


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
    assert values_of(run(html), "company_email") == []


def test_tel_link_with_country_code() -> None:
    assert values_of(run('<a href="tel:+44%2020%207946%200958">call</a>'), "company_phone") == ["+442079460958"]


def test_tel_link_with_00_prefix() -> None:
    assert values_of(run('<a href="tel:0049 30 5557 2100">call</a>'), "company_phone") == ["+493055572100"]


def test_national_tel_uses_page_cctld_region() -> None:
    found = run('<a href="tel:030 5557 2100">call</a>', url="https://www.acme.de/kontakt")
    assert values_of(found, "company_phone") == ["+493055572100"]
    uk = run('<a href="tel:020 7946 0958">call</a>', url="https://acme.co.uk/")
    assert values_of(uk, "company_phone") == ["+442079460958"]


def test_national_tel_without_inferable_region_is_skipped() -> None:
    for url in ("https://acme.example/", "https://acme.com/", "https://acme.eu/"):
        assert values_of(run('<a href="tel:030 5557 2100">call</a>', url=url), "company_phone") == []


def test_national_json_ld_telephone_follows_the_same_rule() -> None:
    html = json_ld('{"@type": "Organization", "telephone": "01 45 67 89 10"}')
    assert values_of(run(html, url="https://acme.fr/"), "company_phone") == ["+33145678910"]
    assert values_of(run(html, url="https://acme.example/"), "company_phone") == []


def test_social_profile_links() -> None:
    html = """
      <a href="https://www.linkedin.com/company/acme-widgets/about/">LinkedIn</a>
      <a href="https://twitter.com/AcmeWidgets">Twitter</a>
      <a href="https://x.com/acme_eu?lang=en">X</a>
      <a href="/about">About</a>
    """
    found = run(html)
    assert values_of(found, "company_linkedin") == ["https://www.linkedin.com/company/acme-widgets"]
    assert set(values_of(found, "company_twitter")) == {"https://x.com/AcmeWidgets", "https://x.com/acme_eu"}


def test_share_buttons_are_not_profiles() -> None:
    html = """
      <a href="https://twitter.com/intent/tweet?text=Hi&amp;url=https%3A%2F%2Facme.example">Tweet</a>
      <a href="https://x.com/share?url=https%3A%2F%2Facme.example">Post</a>
      <a href="https://www.linkedin.com/shareArticle?mini=true&amp;url=https%3A%2F%2Facme.example">Share</a>
      <a href="https://x.com/acmehq">Follow</a>
    """
    found = run(html)
    assert values_of(found, "company_twitter") == ["https://x.com/acmehq"]
    assert values_of(found, "company_linkedin") == []


def test_repeated_link_is_one_value() -> None:
    html = '<a href="https://x.com/acmehq">X</a><footer><a href="https://x.com/acmehq">X</a></footer>'
    assert values_of(run(html), "company_twitter") == ["https://x.com/acmehq"]


# --- visible text ---------------------------------------------------------------------------------------


def test_visible_text_email() -> None:
    found = run("<body><p>Questions? Email support@acme.example.</p></body>")
    assert values_of(found, "company_email") == ["support@acme.example"]
    assert emitted(found, "company_email").evidence == f"visible text @ {BASE}"


def test_a_word_glued_to_an_address_is_not_part_of_it() -> None:
    found = run("<p>woods@acme.exampleThis email address is being protected from spambots.</p>")
    assert values_of(found, "company_email") == ["woods@acme.example"]


def test_emails_inside_script_style_or_file_names_are_not_text() -> None:
    html = """<body>
      <script>var inbox = "dev@acme-internal.example";</script>
      <style>.x::after { content: "css@acme-internal.example"; }</style>
      <img src="/img/logo@2x.png" alt="logo@2x.png"><p>retina: logo@2x.png</p>
      <!-- old@acme.example -->
    </body>"""
    assert values_of(run(html), "company_email") == []


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
    assert chosen(found, "company_name") == "Acme"


def test_evidence_is_capped() -> None:
    url = "https://acme.example/" + "a" * 500
    found = run('<a href="mailto:hi@acme.example">hi</a>', url=url)
    assert found and all(len(f.evidence) <= EVIDENCE_LIMIT for f in found)
    assert emitted(found, "company_email").evidence.startswith("mailto link @ https://acme.example/aaa")


def test_every_page_is_read_and_evidence_says_which() -> None:
    pages = [
        Page("https://acme.example/", b"<title>Acme | Widgets for everyone</title>"),
        Page("https://acme.example/contact", b'<a href="mailto:hi@acme.example">hi</a>'),
    ]
    found = extract(pages, "https://acme.example/")
    assert emitted(found, "company_name").evidence == "title @ https://acme.example/"
    assert emitted(found, "company_email").evidence == "mailto link @ https://acme.example/contact"
    assert values_of(found, "company_website") == ["https://acme.example"]


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
        if f.confidence == top[f.field] and f.confidence >= MIN_CONFIDENCE:
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


def test_microdata_organization_is_structured_data() -> None:
    html = """<div itemscope itemtype="https://schema.org/Organization">
      <span itemprop="name">Acme Widgets</span><a itemprop="email" href="mailto:info@acme.example">mail</a>
      <div itemprop="address" itemscope itemtype="https://schema.org/PostalAddress">
        <span itemprop="addressLocality">Leeds</span><span itemprop="addressCountry">GB</span></div></div>"""
    found = run(html)
    assert emitted(found, "company_name").evidence.startswith("microdata Organization.name")
    assert chosen(found, "company_city") == "Leeds" and chosen(found, "company_country") == "GB"


def test_every_social_profile_in_canonical_form_and_no_share_buttons() -> None:
    html = """<a href="https://www.facebook.com/pages/Acme-Widgets/123456789">f</a>
      <a href="https://www.facebook.com/sharer/sharer.php?u=https://acme.example">share</a>
      <a href="http://instagram.com/acmewidgets/">i</a><a href="https://www.instagram.com/p/Bx12/">post</a>
      <a href="https://www.youtube.com/user/AcmeTV?feature=watch">y</a><a href="https://www.youtube.com/watch?v=abc">v</a>
      <a href="https://github.com/acme-widgets/widget-sdk">code</a><a href="https://twitter.com/#!/AcmeNews">t</a>"""
    found = run(html)
    assert chosen(found, "company_facebook") == "https://www.facebook.com/123456789"
    assert values_of(found, "company_instagram") == ["https://www.instagram.com/acmewidgets"]
    assert values_of(found, "company_youtube") == ["https://www.youtube.com/user/AcmeTV"]
    assert chosen(found, "company_github") == "https://github.com/acme-widgets"
    assert chosen(found, "company_twitter") == "https://x.com/AcmeNews"


def test_links_to_the_sites_own_pages_are_not_profiles() -> None:
    found = run(
        '<a href="https://github.com/blog">Blog</a><a href="https://github.com/contact">Contact</a>',
        url="https://github.com/",
    )
    assert values_of(found, "company_github") == []


@pytest.mark.parametrize(
    "text",
    ["sales [at] acme [dot] example", "sales(at)acme.example", "sales {at} acme.example", "sales at acme dot example"],
)
def test_obfuscated_emails(text: str) -> None:
    assert chosen(run(f"<p>Write to {text}</p>"), "company_email") == "sales@acme.example"


def test_cloudflare_protected_email_is_decoded() -> None:
    address = b"info@acme.example"
    encoded = "2a" + bytes(b ^ 0x2A for b in address).hex()
    html = (
        f'<a href="/cdn-cgi/l/email-protection#{encoded}">[email protected]</a><span data-cfemail="{encoded}"></span>'
    )
    assert values_of(run(html), "company_email") == ["info@acme.example"]


def test_words_that_only_look_like_obfuscation_are_not_emails() -> None:
    assert values_of(run("<p>Your claim is evaluated at support.apple.com within days.</p>"), "company_email") == []


def test_text_phone_with_the_country_the_address_states() -> None:
    html = "<p>Acme Inc, 12 Main Street, Dallas, TX 75201</p><p>Phone: (214) 555-0142</p>"
    found = run(html, url="https://acme.com/")
    assert chosen(found, "company_phone") == "+12145550142"  # the US address makes national numbers readable
    assert chosen(found, "company_city") == "Dallas" and chosen(found, "company_country") == "US"


def test_phone_without_any_country_clue_is_not_guessed() -> None:
    assert values_of(run("<p>Call (214) 555-0142</p>", url="https://acme.com/"), "company_phone") == []


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
    assert chosen(found, "company_city") == city
    assert chosen(found, "company_country") == country


def test_german_postcode_and_town_on_a_german_site() -> None:
    assert (
        chosen(run("<p>Musterstraße 1, 10115 Berlin</p>", url="https://acme.de/impressum"), "company_city") == "Berlin"
    )


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
    assert chosen(run(f"<p>{text}</p>"), "company_founded_year") == year


def test_copyright_years_and_member_since_are_not_founding() -> None:
    found = run("<p>© 1998-2014 Acme Ltd. All rights reserved.</p><p>BBB member since 2005</p>")
    assert values_of(found, "company_founded_year") == []


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("We have 120 employees in three offices.", "120"),
        ("Acme employs a team of 45 people.", "45"),
        ("Über 1.200 Mitarbeiter weltweit.", "1200"),
    ],
)
def test_employee_count_only_when_stated(text: str, count: str) -> None:
    assert chosen(run(f"<p>{text}</p>"), "company_employee_count") == count


@pytest.mark.parametrize(
    "text",
    [
        "2000 people trained",
        "Over 10 million people use Acme",
        "We served 300 clients",
        "500 people attended",
        "Deutsche Bahn: > 10.000 Mitarbeitende; 72.157 Follower",  # a directory's size band of another company
    ],
)
def test_people_counts_that_are_not_staff(text: str) -> None:
    assert values_of(run(f"<p>{text}</p>"), "company_employee_count") == []


def test_brand_and_legal_name_are_one_candidate_and_agreement_raises_it() -> None:
    title_only = run("<title>Acme Widgets | Widgets for everyone</title>", url="https://acmewidgets.example/")
    html = (
        "<title>Acme Widgets | Widgets for everyone</title>"
        "<footer>© 2014 Acme Widgets Ltd. All rights reserved.</footer>"
    )
    found = run(html, url="https://acmewidgets.example/")
    assert values_of(found, "company_name") == ["Acme Widgets"]  # the brand shown; the legal name agrees
    assert "agrees: copyright" in emitted(found, "company_name").evidence
    assert confidence_of(found, "company_name", "Acme Widgets") >= confidence_of(
        title_only, "company_name", "Acme Widgets"
    )


def test_website_credit_is_not_the_company_name() -> None:
    assert values_of(run("<footer>© 2014 Website design by Pixel Agency Ltd</footer>"), "company_name") == []


def test_a_map_s_copyright_is_not_the_company_name() -> None:
    assert values_of(run("<p>Map data ©2014 Google</p>"), "company_name") == []


def test_article_meta_description_is_no_surer_than_the_homepage_s() -> None:
    html = '<meta name="description" content="How to choose a widget.">'
    article = run(html, url="https://acme.example/blog/how-to", base_url=BASE)
    home = run(html)
    assert (
        values_of(article, "company_description")
        == values_of(home, "company_description")
        == ["How to choose a widget."]
    )
    assert emitted(article, "company_description").confidence <= emitted(home, "company_description").confidence
    # Beside the homepage's own, an article's description loses the choice.
    both = extract([Page(BASE, html.replace("How to choose a widget.", "Widgets for all.").encode()),
                    Page("https://acme.example/blog/how-to", html.encode())], BASE)  # fmt: skip
    assert chosen(both, "company_description") == "Widgets for all."


def test_one_value_per_statement_with_agreement_across_methods() -> None:
    alone = run('<a href="mailto:hello@acme.example">m</a>')
    html = (
        '<script type="application/ld+json">{"@type": "Organization", "email": "hello@acme.example"}</script>'
        '<a href="mailto:hello@acme.example">m</a>'
    )
    found = run(html)
    assert values_of(found, "company_email") == ["hello@acme.example"]
    assert "agrees: mailto" in emitted(found, "company_email").evidence
    assert emitted(found, "company_email").confidence >= emitted(alone, "company_email").confidence


def test_only_the_regional_methods_depend_on_the_sites_region() -> None:
    """Once the pages say which country a .com site is in, only REGIONAL methods read the pages again:
    every other method must find the same whatever the region, and each regional one reads something new."""
    html = """<html><head><script type="application/ld+json">
      {"@type": "Organization", "name": "Acme", "telephone": "01 42 68 53 00"}</script></head><body>
      <div itemscope itemtype="https://schema.org/Organization"><span itemprop="name">Acme</span>
        <span itemprop="telephone">01 42 68 53 01</span></div>
      <header><a href="/"><img src="/logo.png" alt="Acme"></a></header>
      <a href="tel:0142685302">Call</a> <a href="mailto:info@acme.example">Mail</a>
      <a href="https://www.linkedin.com/company/acme">in</a>
      <p>Téléphone : 01 42 68 53 03</p><p>12 rue de la Paix</p><p>75002 Paris</p>
      <p>Founded in 1990. © 2024 Acme SAS</p></body></html>"""
    doc = parse_page(Page(BASE, html.encode("utf-8")))
    assert doc is not None
    lines = tuple(visible_lines(doc))

    def found(method: Method, region: str | None, guessed: bool) -> list[Clue | None]:
        ctx = Context(BASE, BASE, "acme", region, "acme.example", True, region_guessed=guessed, lines=lines)
        return list(method(doc, ctx))

    for method in METHODS:
        readings = [found(method, region, guessed) for region, guessed in ((None, False), ("FR", False), ("FR", True))]
        if method.__name__ in REGIONAL:
            assert readings[0] != readings[1], f"{method.__name__} reads nothing new with the region"
        else:
            assert readings[0] == readings[1] == readings[2], f"{method.__name__} depends on the region"
