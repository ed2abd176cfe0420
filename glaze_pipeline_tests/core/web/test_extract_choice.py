"""Choosing among candidates, with reasons, and the values the extractor refuses or reads in more formats.

Small hand-written pages, one rule each. Confidences come from the fitted table, so these tests
assert which value is chosen, that the losers stay with a reason, and how confidences compare
to GLAZE_MIN_CONFIDENCE's default.
"""

from __future__ import annotations

import pytest

from glaze_pipeline.core.model.candidates import Attempt, Found, attempts_to_frame
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.web.extract import Page, extract
from glaze_pipeline.core.web.extract.calibration import load_table, recalibrate

BASE = "https://acme.example/"
MIN_CONFIDENCE = 70


def run(html: str, url: str = BASE) -> list[Found]:
    return extract([Page(url, html.encode("utf-8"))], url)


def of(found: list[Found], field: str) -> list[Found]:
    return sorted((f for f in found if f.field == field), key=lambda f: -f.confidence)


def chosen(found: list[Found], field: str) -> Found:
    return of(found, field)[0]


def lost(found: list[Found], field: str, value: str) -> Found:
    return next(f for f in found if f.field == field and f.value == value)


# --- emails -------------------------------------------------------------------------------------------


def test_the_general_inbox_wins_over_personal_and_departmental_addresses() -> None:
    html = """<p>Careers: <a href="mailto:careers@acme.example">careers@acme.example</a></p>
      <p>Press: maria.lopez@acme.example</p><p>Sales: sales@acme.example</p>
      <p>Anything else: <a href="mailto:info@acme.example">info@acme.example</a></p>"""
    found = run(html)
    assert chosen(found, "company_email").value == "info@acme.example"
    assert "general inbox" in lost(found, "company_email", "maria.lopez@acme.example").reason
    assert "narrow purpose" in lost(found, "company_email", "careers@acme.example").reason
    assert all(f.confidence < chosen(found, "company_email").confidence for f in of(found, "company_email")[1:])


def test_the_sites_own_domain_wins_over_a_third_party_domain() -> None:
    html = '<a href="mailto:complaints@regulator.example.org">c</a><a href="mailto:hello@acme.example">h</a>'
    found = run(html)
    assert chosen(found, "company_email").value == "hello@acme.example"
    assert "another organisation's domain" in lost(found, "company_email", "complaints@regulator.example.org").reason


def test_another_organisations_address_given_with_its_website_is_never_chosen() -> None:
    html = """<p>Financial Ombudsman Service</p><p>Phone: 0800 023 4567</p>
      <p>Email: <a href="mailto:complaint.info@ombudsman.example.org">complaint.info@ombudsman.example.org</a></p>
      <p>Website: www.ombudsman.example.org</p>"""
    found = run(html, url="https://acme.co.uk/contact")
    email = chosen(found, "company_email")
    assert email.value == "complaint.info@ombudsman.example.org"  # still in the audit trail ...
    assert email.confidence < MIN_CONFIDENCE and "no value chosen" in email.reason  # ... but honestly not ours
    phone = chosen(found, "company_phone")
    assert phone.confidence < MIN_CONFIDENCE and "another organisation's contact block" in phone.reason


def test_a_jobs_inbox_alone_is_not_the_company_email() -> None:
    found = run('<p>For hiring inquiries, please email <a href="mailto:hiring@acme.example">us</a>.</p>')
    email = chosen(found, "company_email")
    assert email.confidence < MIN_CONFIDENCE and "narrow purpose" in email.reason


def test_a_staff_directory_without_a_general_inbox_gives_no_company_email() -> None:
    staff = ["benona", "jfoster", "msamples", "mtimmons"]
    html = "".join(
        f'<p>Dept {i}: <a href="mailto:{n}@acme.example">{n}@acme.example</a></p>' for i, n in enumerate(staff)
    )
    found = run(html)
    assert all(f.confidence < MIN_CONFIDENCE for f in of(found, "company_email"))
    assert "staff directory" in chosen(found, "company_email").reason


# --- phones ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fax",
    [
        "<p>Fax: (214) 555-0199</p>",  # labelled before
        "<p>(214) 555-0199 fax</p>",  # labelled after the number
        "<p>Fax</p><p>(214) 555-0199</p>",  # a bare label on the line above
    ],
)
def test_a_phone_wins_over_a_number_the_page_labels_fax(fax: str) -> None:
    html = f"<p>12 Main Street, Dallas, TX 75201</p>{fax}<p>Phone: (214) 555-0142</p>"
    found = run(html, url="https://acme.com/")
    assert chosen(found, "company_phone").value == "+12145550142"
    assert "fax" in lost(found, "company_phone", "+12145550199").reason


def test_a_fax_alone_is_no_phone() -> None:
    found = run("<p>12 Main Street, Dallas, TX 75201</p><p>Fax: (214) 555-0199</p>", url="https://acme.com/")
    assert chosen(found, "company_phone").confidence < MIN_CONFIDENCE


def test_the_headquarters_number_wins_over_a_branchs() -> None:
    html = """<h3>Regional office</h3><p>1 Side St, Austin, TX 78701</p><p>Phone: (512) 555-0100</p>
      <h3>Worldwide Headquarters</h3><p>2 Main St, Dallas, TX 75201</p><p>Phone: (214) 555-0142</p>"""
    found = run(html, url="https://acme.com/")
    assert chosen(found, "company_phone").value == "+12145550142"


OFFICES = """<h4>Farmington Office</h4><p>4801 N. Butler Ave</p><p>Farmington, NM 87401</p>
  <p>Phone: 505-326-1111</p><p>Fax: 505-326-3130</p>
  <h4>Cortez Office</h4><p>2204 E. Main</p><p>Cortez, CO 81321</p><p>Phone: 970-565-7972</p>"""


def test_offices_listed_after_the_first_are_branches() -> None:
    found = run(OFFICES, url="https://acme.com/contact")
    assert chosen(found, "company_phone").value == "+15053261111"
    assert "branch" in lost(found, "company_phone", "+19705657972").reason
    assert chosen(found, "company_city").value == "Farmington"
    cortez = lost(found, "company_city", "Cortez")
    assert "branch" in cortez.reason and cortez.confidence < MIN_CONFIDENCE
    assert lost(found, "company_phone", "+19705657972").confidence < MIN_CONFIDENCE


def test_an_office_heading_needs_its_town_in_the_address_below() -> None:
    # "Microsoft Office" names no town the lines under it give: the number under it is no branch's.
    html = """<h4>Dallas Office</h4><p>12 Main St</p><p>Dallas, TX 75201</p><p>Phone: 214-555-0142</p>
      <h4>Microsoft Office</h4><p>Training line: 214-555-0100</p>"""
    found = run(html, url="https://acme.com/")
    assert chosen(found, "company_phone").value == "+12145550142"
    assert "branch" not in lost(found, "company_phone", "+12145550100").reason


def test_opening_hours_head_no_office() -> None:
    html = """<p>Store Hours</p><p>Mon-Sat: 10am-6pm</p><p>Distribution Centre: Tue. - Sat. 10am-4pm</p>
      <p>Tel: (416) 736-6120</p><p>Toronto Showroom</p><p>Tel: (416) 515-1212</p>"""
    found = run(html, url="https://acme.ca/")
    assert chosen(found, "company_phone").value == "+14167366120"
    assert "branch" in lost(found, "company_phone", "+14165151212").reason


def test_national_numbers_read_with_the_pages_language_when_nothing_else_says_where() -> None:
    html = '<html lang="de"><body><p>Telefon: 030 5557 2100</p></body></html>'
    assert chosen(run(html, url="https://acme.com/"), "company_phone").value == "+493055572100"


# --- places ---------------------------------------------------------------------------------------------


def test_the_headquarters_wins_over_branches_and_country_and_location_follow_it() -> None:
    html = """<h3>Division Headquarters</h3><p>325 Corporate Drive</p><p>Mahwah, New Jersey 07430</p>
      <h3>Worldwide Headquarters</h3><p>2825 Airview Boulevard</p><p>Kalamazoo, Michigan 49002</p><p>U.S.A.</p>
      <h3>Branch</h3><p>Unit 1, Newbury, RG14 5PX</p>"""
    found = run(html, url="https://acme.com/contact")
    assert chosen(found, "company_city").value == "Kalamazoo"
    assert "not the headquarters" in lost(found, "company_city", "Mahwah").reason
    assert chosen(found, "company_country").value == "US"
    assert chosen(found, "company_hq_location").value == "Kalamazoo, Michigan, U.S.A."


def test_an_address_in_another_organisations_contact_block_is_not_the_companys() -> None:
    html = """<p>Acme Building Society</p><p>PO Box 600</p><p>Coventry CV3 9YR</p><p>Phone: 0845 766 5522</p>
      <p>Financial Ombudsman Service</p><p>South Quay Plaza</p><p>183 Marsh Wall</p><p>London</p><p>E14 9SR</p>
      <p>Phone: 0800 023 4567</p><p>Email: complaint.info@ombudsman.example.org</p>
      <p>Website: www.ombudsman.example.org</p>"""
    found = run(html, url="https://acme.co.uk/contact")
    assert chosen(found, "company_city").value == "Coventry"
    london = lost(found, "company_city", "London")
    assert "another organisation's contact block" in london.reason and london.confidence < MIN_CONFIDENCE


def test_a_headquarters_heading_in_a_facts_table_gives_the_city() -> None:
    found = run("<dl><dt>Founded</dt><dd>1949</dd><dt>World Headquarters</dt><dd>Minneapolis, Minnesota</dd></dl>")
    assert chosen(found, "company_city").value == "Minneapolis"
    assert chosen(found, "company_country").value == "US"
    assert chosen(found, "company_hq_location").value == "Minneapolis, Minnesota"
    assert chosen(found, "company_founded_year").value == "1949"


@pytest.mark.parametrize(
    ("lines", "url", "city", "country"),
    [
        (["ul. Grabska 11, 32-005 Niepołomice, woj. małopolskie, Polska"], BASE, "Niepołomice", "PL"),
        (["Rua José Moura Coutinho,", "Nº 608, 1º Andar", "4745-330 Trofa", "Portugal"], BASE, "Trofa", "PT"),
        (["Vegagatan 3", "11329 Stockholm", "Sweden"], BASE, "Stockholm", "SE"),
        (["L&T House, Ballard Estate", "Mumbai 400 001, India"], BASE, "Mumbai", "IN"),
        (["Clonminch House, Portlaoise Road, Tullamore, Co. Offaly"], BASE, "Tullamore", "IE"),
        (["101-1305 Welch St", "North Vancouver,", "V7P 1B3, BC.", "Canada"], BASE, "North Vancouver", "CA"),
        (["7224 1st Avenue South", "Seattle,", "Washington", "98108"], BASE, "Seattle", "US"),
        (["Nymphenburger Straße 4", "DE-80335 München"], BASE, "München", "DE"),
        (["Pentland House, Village Way, Wilmslow, Cheshire, SK9 2GH"], BASE, "Wilmslow", "GB"),
        (["75001 Paris"], "https://acme.fr/", "Paris", "FR"),
    ],
)
def test_addresses_in_more_formats(lines: list[str], url: str, city: str, country: str) -> None:
    found = run("<address>" + "<br>".join(lines) + "</address>", url=url)
    assert chosen(found, "company_city").value == city
    assert chosen(found, "company_country").value == country


def test_a_menu_of_towns_is_no_address() -> None:
    found = run("<ul><li>Portland</li><li>Seattle</li><li>Washington</li><li>Austria</li><li>Wien</li></ul>")
    assert of(found, "company_city") == []


def test_a_country_code_domain_alone_gives_no_country() -> None:
    for url in ("https://microlink.io/", "https://kicktipp.de/", "https://acme.se/"):
        assert of(run("<title>Acme</title><p>We turn websites into data.</p>", url=url), "company_country") == []


def test_a_country_code_domain_supports_a_country_the_page_states() -> None:
    stated = run("<p>Vegagatan 3, 11329 Stockholm, Sweden</p>", url="https://acme.se/")
    elsewhere = run("<p>Vegagatan 3, 11329 Stockholm, Sweden</p>", url="https://acme.example/")
    assert chosen(stated, "company_country").value == chosen(elsewhere, "company_country").value == "SE"
    assert "agrees" in chosen(stated, "company_country").evidence or chosen(stated, "company_country").confidence >= (
        chosen(elsewhere, "company_country").confidence
    )


# --- founding year --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("Patrick Hiller and Ken Snuggs co-founded Abacus in 2000 with the goal of ...", "2000"),
        ("Founded by Stanford alumni in 2000, our summer programs ...", "2000"),
        ("Woods Insurance Service: Formed 1926 in Farmington, New Mexico.", "1926"),
    ],
)
def test_founding_stated_a_few_words_before_the_year(text: str, year: str) -> None:
    assert chosen(run(f"<p>{text}</p>"), "company_founded_year").value == year


def test_founded_beats_since_and_the_about_page_beats_others() -> None:
    pages = [
        Page(BASE, b"<p>Serving Leeds since 2001.</p>"),
        Page(BASE + "about-us", b"<p>Acme was founded in 1987 by two engineers.</p>"),
    ]
    found = extract(pages, BASE)
    assert chosen(found, "company_founded_year").value == "1987"
    assert 'only "since"' in lost(found, "company_founded_year", "2001").reason


# --- names ----------------------------------------------------------------------------------------------


def test_brand_signals_together_name_the_company_above_the_default_threshold() -> None:
    html = """<head><title>Zynk Design | Interior Architects London</title>
      <meta property="og:site_name" content="Zynk Design"></head>
      <body><header><a href="/"><img src="/img/logo.gif" alt="Zynk Design - Interior Architects"></a></header>
      <p>© 2014 Zynk Design. All rights reserved.</p></body>"""
    name = chosen(run(html, url="https://www.zynkdesign.example/"), "company_name")
    assert name.value == "Zynk Design"
    assert name.confidence >= 80
    assert "agrees" in name.evidence


def test_the_words_that_spell_the_domain_are_the_brand_when_longer_names_disagree() -> None:
    pages = [
        Page("https://erinclark.example/about", b"<title>about Erin Clark Dallas Website Design</title>"),
        Page("https://erinclark.example/contact", b"<title>Contact Erin Clark Dallas Web Designer</title>"),
        Page(
            "https://erinclark.example/",
            b"<p>Copyright 2013. Erin Clark Web Design & Graphics. All rights reserved.</p>",
        ),
    ]
    assert chosen(extract(pages, "https://erinclark.example/"), "company_name").value == "Erin Clark"


def test_generic_or_placeholder_names_are_not_kept() -> None:
    found = run("<title>Untitled</title><p>Map data ©2014 Google</p>")
    assert of(found, "company_name") == []


# --- logos ----------------------------------------------------------------------------------------------


def test_the_pages_own_logo_wins_over_client_and_partner_logos() -> None:
    html = """<div id="header">
      <a href="home.vm"><img src="images/website/acme.jpg" alt="Project tools made easy"></a></div>
      <div class="ux-carousel-slide"><img src="images/website/customer_logos/mcdonalds.png"></div>
      <a href="http://www.renomark.example/"><img src="/i/renomarklogo.png" alt="renomarklogo"></a>"""
    found = run(html)
    assert chosen(found, "company_logo_url").value == "https://acme.example/images/website/acme.jpg"
    client = lost(found, "company_logo_url", "https://acme.example/images/website/customer_logos/mcdonalds.png")
    assert "another organisation's logo" in client.reason


def test_only_a_partners_logo_gives_no_logo() -> None:
    html = '<a href="http://www.renomark.example/"><img src="/i/renomarklogo.png" alt="RenoMark"></a>'
    logo = chosen(run(html), "company_logo_url")
    assert logo.confidence < MIN_CONFIDENCE and "no value chosen" in logo.reason


def test_a_logo_served_from_another_organisations_domain_is_theirs() -> None:
    html = """<header><img src="http://www.google.com/uds/css/small-logo.png" alt="logo"></header>
      <img src="/img/acme-logo.png" alt="Acme">"""
    found = run(html)
    assert chosen(found, "company_logo_url").value == "https://acme.example/img/acme-logo.png"
    google = lost(found, "company_logo_url", "http://www.google.com/uds/css/small-logo.png")
    assert "another organisation's logo" in google.reason


def test_the_logo_in_the_header_wins_over_one_only_named_in_an_og_image() -> None:
    html = """<head><meta property="og:image" content="https://acme.example/uploads/techno_logo.png"></head>
      <body><header><a href="/"><img src="/img/cc.logo.svg" alt="Acme"></a></header></body>"""
    assert chosen(run(html), "company_logo_url").value == "https://acme.example/img/cc.logo.svg"


# --- socials --------------------------------------------------------------------------------------------


def test_the_main_account_wins_over_a_careers_or_executive_account() -> None:
    html = """<a href="https://twitter.com/@Medtronic">t</a><a href="https://twitter.com/MedtronicCEO">ceo</a>
      <a href="https://www.facebook.com/MedtronicCareers">jobs</a><a href="https://www.facebook.com/Medtronic">f</a>"""
    found = run(html, url="https://www.medtronic.example/")
    assert chosen(found, "company_twitter").value == "https://x.com/Medtronic"
    assert chosen(found, "company_facebook").value == "https://www.facebook.com/Medtronic"
    assert "secondary account" in lost(found, "company_twitter", "https://x.com/MedtronicCEO").reason


def test_a_legacy_youtube_link_on_the_page_gets_its_profile_form() -> None:
    found = run('<a href="http://www.youtube.com/VisionProjectHQ">YouTube</a>')
    assert chosen(found, "company_youtube").value == "https://www.youtube.com/c/VisionProjectHQ"


# --- descriptions ---------------------------------------------------------------------------------------


def test_an_unrendered_template_description_is_refused_and_the_next_one_is_used() -> None:
    pages = [
        Page(BASE, b'<meta name="description" content="$metaDescriptionE"><title>Acme</title>'),
        Page(BASE + "product", b'<meta name="description" content="Acme is a tool for project management.">'),
    ]
    found = extract(pages, BASE)
    assert [f.value for f in of(found, "company_description")] == ["Acme is a tool for project management."]


# --- the audit trail and the fitted table ---------------------------------------------------------------


def test_losing_candidates_reach_the_candidate_frame_with_their_reason() -> None:
    found = run('<a href="mailto:maria.lopez@acme.example">j</a><a href="mailto:info@acme.example">i</a>')
    frame = attempts_to_frame([Attempt("row-1", tuple(found), Status.FILLED, detail="1 page(s): " + BASE)], "website")
    emails = frame.filter(frame["field"] == "company_email").sort("confidence", descending=True)
    assert emails["value"].to_list() == ["info@acme.example", "maria.lopez@acme.example"]
    loser_detail = emails["detail"][1]
    assert loser_detail.startswith("a departmental or personal address") and loser_detail.endswith("1 page(s): " + BASE)


def test_the_fitted_table_maps_estimates_monotonically() -> None:
    table = load_table()
    estimates = [i / 100 for i in range(101)]
    mapped = [recalibrate(p, table.recalibration) for p in estimates]
    assert mapped == sorted(mapped)
    assert mapped[0] >= 0 and mapped[-1] <= 1
    assert table.counts["*"][0] > 500  # fitted on hundreds of labelled candidates, not a handful
