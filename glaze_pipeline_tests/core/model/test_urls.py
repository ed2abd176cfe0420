"""URL normalisation: every spelling of an entity gets one canonical URL and one row key."""

from __future__ import annotations

import hashlib

import pytest

from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.core.model.urls import Entity, InvalidUrl, make_row_key, parse_entity

W, LC, LP = EntityType.COMPANY_WEBSITE, EntityType.LINKEDIN_COMPANY, EntityType.LINKEDIN_PERSON

# (input, normalized_url, entity_type, entity_id)
VALID: list[tuple[str, str, EntityType, str]] = [
    ("acme.com", "https://acme.com", W, "acme.com"),
    ("https://acme.com/", "https://acme.com", W, "acme.com"),
    ("http://acme.com", "http://acme.com", W, "acme.com"),
    ("HTTPS://WWW.ACME.COM/", "https://acme.com", W, "acme.com"),
    ("www.acme.com", "https://acme.com", W, "acme.com"),
    ("  acme.com\t", "https://acme.com", W, "acme.com"),
    ('"acme.com"', "https://acme.com", W, "acme.com"),
    ("<https://acme.com/>", "https://acme.com", W, "acme.com"),
    ("acme.com/en/", "https://acme.com/en", W, "acme.com"),
    ("acme.com/About/Team", "https://acme.com/About/Team", W, "acme.com"),
    ("https://acme.com:443/x", "https://acme.com/x", W, "acme.com"),
    ("http://acme.com:80", "http://acme.com", W, "acme.com"),
    ("https://acme.com:8443/", "https://acme.com:8443", W, "acme.com"),
    ("https://acme.com/#pricing", "https://acme.com", W, "acme.com"),
    (
        "https://acme.com/p?utm_source=x&utm_medium=y&gclid=1&fbclid=2&b=2&a=1&ref=hn&trackingId=3",
        "https://acme.com/p?a=1&b=2",
        W,
        "acme.com",
    ),
    ("https://acme.com/?UTM_Campaign=z&si=abc", "https://acme.com", W, "acme.com"),
    ("https://acme.com/s?q=2&q=1", "https://acme.com/s?q=2&q=1", W, "acme.com"),
    ("münchen-bäckerei.de", "https://xn--mnchen-bckerei-dib09a.de", W, "xn--mnchen-bckerei-dib09a.de"),
    (
        "https://MÜNCHEN-bäckerei.de/",
        "https://xn--mnchen-bckerei-dib09a.de",
        W,
        "xn--mnchen-bckerei-dib09a.de",
    ),
    ("acme.com.", "https://acme.com", W, "acme.com"),
    ("shop.acme.co.uk", "https://shop.acme.co.uk", W, "shop.acme.co.uk"),
    ("//acme.com/x", "https://acme.com/x", W, "acme.com"),
    ("https:/acme.com", "https://acme.com", W, "acme.com"),
    ("http://93.184.216.34:8080/", "http://93.184.216.34:8080", W, "93.184.216.34"),
    ("http://[2001:db8::1]/", "http://[2001:db8::1]", W, "2001:db8::1"),
    # LinkedIn companies
    (
        "https://www.linkedin.com/company/Acme-Inc/",
        "https://www.linkedin.com/company/acme-inc",
        LC,
        "linkedin.com/company/acme-inc",
    ),
    (
        "linkedin.com/company/acme-inc/about/?trk=public_profile",
        "https://www.linkedin.com/company/acme-inc",
        LC,
        "linkedin.com/company/acme-inc",
    ),
    (
        "https://de.linkedin.com/company/acme-inc?originalSubdomain=de",
        "https://www.linkedin.com/company/acme-inc",
        LC,
        "linkedin.com/company/acme-inc",
    ),
    (
        "https://www.linkedin.com/school/stanford-university/",
        "https://www.linkedin.com/company/stanford-university",
        LC,
        "linkedin.com/company/stanford-university",
    ),
    (
        "https://www.linkedin.com/showcase/acme-cloud/",
        "https://www.linkedin.com/company/acme-cloud",
        LC,
        "linkedin.com/company/acme-cloud",
    ),
    (
        "https://www.linkedin.com/company/caf%C3%A9-paris",
        "https://www.linkedin.com/company/caf%c3%a9-paris",
        LC,
        "linkedin.com/company/caf%c3%a9-paris",
    ),
    # LinkedIn people
    ("linkedin.com/in/Jane-Doe", "https://www.linkedin.com/in/jane-doe", LP, "linkedin.com/in/jane-doe"),
    (
        "https://uk.linkedin.com/in/jane-doe-82a505/?lipi=abc",
        "https://www.linkedin.com/in/jane-doe-82a505",
        LP,
        "linkedin.com/in/jane-doe-82a505",
    ),
    (
        "https://m.linkedin.com/in/jane-doe",
        "https://www.linkedin.com/in/jane-doe",
        LP,
        "linkedin.com/in/jane-doe",
    ),
    (
        "https://www.linkedin.com/in/jane-doe/details/experience/",
        "https://www.linkedin.com/in/jane-doe",
        LP,
        "linkedin.com/in/jane-doe",
    ),
    (
        "https://sy.linkedin.com/pub/krzysztof-marzec/a7/576/b50?trk=biz_employee_pub",
        "https://www.linkedin.com/in/krzysztof-marzec-b50576a7",
        LP,
        "linkedin.com/in/krzysztof-marzec-b50576a7",
    ),
    ("linkedin.com/pub/jane-doe", "https://www.linkedin.com/in/jane-doe", LP, "linkedin.com/in/jane-doe"),
]

# (input, exact InvalidUrl message)
INVALID: list[tuple[str, str]] = [
    ("", "empty URL"),
    ("   ", "empty URL"),
    ('""', "empty URL"),
    ("foo bar", "not a URL: 'foo bar'"),
    ("acme", "not a URL: 'acme'"),
    ("Acme Inc.", "not a URL: 'Acme Inc.'"),
    ("ftp://acme.com", "unsupported scheme 'ftp'"),
    ("mailto:info@acme.com", "unsupported scheme 'mailto'"),
    ("javascript:alert(1)", "unsupported scheme 'javascript'"),
    ("info@acme.com", "looks like an email address, not a URL: 'info@acme.com'"),
    ("https://user:pw@acme.com", "URLs with a user name or password are not supported"),
    ("https://", "no host"),
    ("https://localhost/", "host 'localhost' is not a domain name (no dot)"),
    ("https://acme..com", "host 'acme..com' is not a valid host name"),
    ("https://ac_me.com", "host 'ac_me.com' is not a valid host name"),
    ("http://127.1", "host '127.1' is not a valid host name"),
    ("https://acme.com:99999", "invalid port"),
    ("3.14", "not a URL: '3.14'"),
    ("https://www.linkedin.com/feed/", "LinkedIn URL is not a company or profile page"),
    ("https://www.linkedin.com/jobs/view/123", "LinkedIn URL is not a company or profile page"),
    ("https://www.linkedin.com/posts/jane_activity-1", "LinkedIn URL is not a company or profile page"),
    ("https://www.linkedin.com/company/", "LinkedIn URL is not a company or profile page"),
    ("https://linkedin.com", "LinkedIn URL is not a company or profile page"),
    ("https://www.linkedin.com/pub/dir/jane/doe", "LinkedIn URL is not a company or profile page"),
    ("https://business.linkedin.com/marketing", "LinkedIn URL is not a company or profile page"),
    (
        "https://lnkd.in/abc",
        "LinkedIn short links (lnkd.in) are not supported: use the full linkedin.com URL",
    ),
    ("https://acme.com/" + "a" * 2100, "URL longer than 2048 characters"),
]


@pytest.mark.parametrize(("raw", "normalized", "entity_type", "entity_id"), VALID)
def test_parse_entity_normalises(raw: str, normalized: str, entity_type: EntityType, entity_id: str) -> None:
    entity = parse_entity(raw)
    assert entity.normalized_url == normalized
    assert entity.entity_type is entity_type
    assert entity.entity_id == entity_id
    assert entity.row_key == make_row_key(entity_type, entity_id)


@pytest.mark.parametrize(("raw", "reason"), INVALID)
def test_parse_entity_rejects_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidUrl) as caught:
        parse_entity(raw)
    assert str(caught.value) == reason


def test_invalid_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unsupported scheme"):
        parse_entity("ftp://acme.com")


@pytest.mark.parametrize(
    "spelling",
    [
        "acme.com",
        "https://www.ACME.com/",
        "acme.com/en",
        "http://acme.com:80/?utm_source=newsletter",
        "https://acme.com:8443/de/#top",
        "ACME.COM.",
    ],
)
def test_spellings_of_one_company_share_a_row_key(spelling: str) -> None:
    assert parse_entity(spelling).row_key == parse_entity("acme.com").row_key


def test_row_key_is_sha256_prefix_of_type_and_id() -> None:
    entity = parse_entity("acme.com")
    expected = hashlib.sha256(b"company_website\nacme.com").hexdigest()[:24]
    assert entity.row_key == expected
    assert len(entity.row_key) == 24


def test_different_entities_get_different_row_keys() -> None:
    keys = {
        parse_entity(url).row_key
        for url in (
            "acme.com",
            "acme.org",
            "shop.acme.com",
            "linkedin.com/company/acme",
            "linkedin.com/in/acme",
        )
    }
    assert len(keys) == 5


def test_linkedin_country_editions_share_a_row_key() -> None:
    keys = {
        parse_entity(url).row_key
        for url in (
            "https://www.linkedin.com/in/jane-doe",
            "https://de.linkedin.com/in/Jane-Doe/",
            "https://m.linkedin.com/in/jane-doe?trk=x",
            "linkedin.com/in/jane-doe#experience",
        )
    }
    assert len(keys) == 1


def test_input_url_is_kept_as_given_but_stripped() -> None:
    entity = parse_entity("  https://www.Acme.com/?utm_source=x \n")
    assert entity == Entity(
        input_url="https://www.Acme.com/?utm_source=x",
        normalized_url="https://acme.com",
        entity_type=EntityType.COMPANY_WEBSITE,
        entity_id="acme.com",
        row_key=make_row_key(EntityType.COMPANY_WEBSITE, "acme.com"),
    )


def test_idn_and_punycode_spellings_are_one_entity() -> None:
    assert parse_entity("münchen-bäckerei.de").row_key == parse_entity("xn--mnchen-bckerei-dib09a.de").row_key
