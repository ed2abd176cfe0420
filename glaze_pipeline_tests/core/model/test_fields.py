"""The catalog refuses values that are not values and cleans the ones that carry a page's leftovers."""

from __future__ import annotations

import pytest

from glaze_pipeline.core.model.fields import CATALOG, is_not_a_value


def clean(field: str, raw: str) -> str | None:
    return CATALOG[field].clean(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "$metaDescriptionE",  # VisionProject's homepage shipped its template variable
        "{{ site.description }}",
        "Welcome to {{company}}",
        "%%sitename%%",
        "${companyName}",
        "{% block title %}",
        "<%= @company.name %>",
        "[[site_title]]",
    ],
)
def test_unrendered_template_variables_are_refused(raw: str) -> None:
    assert is_not_a_value(raw)
    assert clean("company_description", raw) is None
    assert clean("company_name", raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "Lorem ipsum dolor sit amet",
        "Untitled",
        "Your Company Name",
        "Just another WordPress site",
        "Coming soon",
        "N/A",
    ],
)
def test_placeholder_text_is_refused(raw: str) -> None:
    assert clean("company_name", raw) is None
    assert clean("company_description", raw) is None


def test_real_text_with_dollars_and_braces_is_kept() -> None:
    assert clean("company_description", "Plans from $5 a month {no contract}") == "Plans from $5 a month {no contract}"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("VisionProject :", "VisionProject"),
        ("| Acme Widgets", "Acme Widgets"),
        ("“Acme” -", "Acme"),
        ("Acme, Inc.", "Acme, Inc."),
    ],
)
def test_separators_left_around_a_name_are_trimmed(raw: str, name: str) -> None:
    assert clean("company_name", raw) == name


def test_a_name_of_separators_only_is_refused() -> None:
    assert clean("company_name", " :: | ") is None


@pytest.mark.parametrize(
    ("field", "raw", "profile"),
    [
        ("company_twitter", "https://twitter.com/@Medtronic", "https://x.com/Medtronic"),
        ("company_twitter", "x.com/@acme?lang=en", "https://x.com/acme"),
        ("company_instagram", "https://instagram.com/@acme/", "https://www.instagram.com/acme"),
        ("company_github", "https://github.com/@acme-org", "https://github.com/acme-org"),
        (
            "company_youtube",
            "https://www.youtube.com/@AcmeTV",
            "https://www.youtube.com/@AcmeTV",
        ),  # @ is YouTube's form
    ],
)
def test_an_at_sign_is_not_part_of_a_handle(field: str, raw: str, profile: str) -> None:
    assert clean(field, raw) == profile


@pytest.mark.parametrize(
    ("raw", "profile"),
    [
        ("http://www.youtube.com/VisionProjectHQ", "https://www.youtube.com/c/VisionProjectHQ"),
        ("youtube.com/peakviewroofing/", "https://www.youtube.com/c/peakviewroofing"),
        ("https://www.youtube.com/user/TheMisterPlumber", "https://www.youtube.com/user/TheMisterPlumber"),
        ("https://www.youtube.com/watch?v=abc", None),
        ("https://www.youtube.com/results?search_query=acme", None),
        ("https://www.youtube.com/", None),
    ],
)
def test_legacy_youtube_urls_get_their_profile_form(raw: str, profile: str | None) -> None:
    assert clean("company_youtube", raw) == profile


@pytest.mark.parametrize(
    "raw", ["https://www.facebook.com/media/set/?set=a.1015", "https://www.facebook.com/photo.php?fbid=1"]
)
def test_facebook_pages_that_are_not_profiles_are_refused(raw: str) -> None:
    assert clean("company_facebook", raw) is None


@pytest.mark.parametrize(("raw", "code"), [("U.S.A.", "US"), ("Polska", "PL"), ("South Africa", "ZA"), ("IO", "IO")])
def test_country_names_as_pages_write_them(raw: str, code: str) -> None:
    # "IO" is a real ISO code; a .io domain alone is never read as it (the extractor does not guess from ccTLDs).
    assert clean("company_country", raw) == code
