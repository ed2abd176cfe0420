"""The rules that say which candidate speaks for the company, field by field, and each field's quality label.

A rule is a sentence and a score (higher is better): the sentence is what a loser reads when it
lost on that rule. `disqualified` says why a value cannot be the company's at all; the quality
label ("general", "fax", "hq", ...) is a feature the calibration measures.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from glaze_pipeline.core.web.extract.base import brand_of, compact
from glaze_pipeline.core.web.extract.candidate import Candidate, Rule, Site

# --- email ----------------------------------------------------------------------------------------------

_GENERAL = re.compile(
    r"^(?:info|contact|contacts|hello|hi|hallo|hola|office|mail|email|enquiries|enquiry|inquiries|inquiry|"
    r"general|post|kontakt|biuro|reception|welcome|team|mainoffice|headoffice|ask|bonjour|ciao|"
    r"informacion|information|contacto|kontor|toimisto)"
    r"(?:desk|us|team|line|center|centre|\d+)?(?:[.\-_+].*)?$"  # infodesk@, contactus@, info.uk@, info-de@
)
# Desks a customer may write to for anything: as good as a general inbox when the site has none.
_CUSTOMER_DESK = re.compile(r"sales|support|help|service|care|order|reservation|booking|member|enquir|inquir|partner")
# Desks with one narrow purpose (jobs, the press, donations): not the company's contact address.
_NARROW_DESK = re.compile(
    r"career|job|hiring|recruit|\bhr|press|media|\bpr\b|marketing|donation|webmaster|privacy|legal|compliance|"
    r"security|abuse|investor|\bir\b|supplier|purchas|procure|responsib|admin|billing|account|financ|"
    r"invoice|newsletter|events?\b|tech"
)
EMAIL_KINDS = {"general": 3, "desk": 2, "person": 1, "narrow": 0}


def email_kind(address: str, site: Site) -> str:
    """general (info@), desk (sales@, support@), person (a name, or unrecognised) or narrow (careers@, press@)."""
    local = address.split("@", 1)[0].lower()
    if _GENERAL.match(local) or (site.brand and compact(local) == site.brand):
        return "general"
    if _NARROW_DESK.search(local):
        return "narrow"
    return "desk" if _CUSTOMER_DESK.search(local) else "person"


def email_domain(address: str, site: Site) -> str:
    """own (the site's host), sister (the same brand elsewhere, or named after the company) or other."""
    domain = address.rsplit("@", 1)[-1].lower().removeprefix("www.")
    if site.host and (domain == site.host or domain.endswith("." + site.host)):
        return "own"
    label = brand_of("http://" + domain)
    if label and (label == site.brand or any(len(n) >= 4 and (n == label or n in label) for n in site.names)):
        return "sister"
    return "other"


def _subsidiary(address: str, site: Site) -> bool:
    """The same brand under another suffix (info@acme.ca on acme.com): a national subsidiary's domain."""
    domain = address.rsplit("@", 1)[-1].lower()
    return email_domain(address, site) == "sister" and brand_of("http://" + domain) == site.brand


def _email_rules(site: Site) -> list[Rule]:
    def kind(c: Candidate) -> int:
        return EMAIL_KINDS[email_kind(c.value, site)]

    return [
        ("another organisation's address, given with its website", lambda c: "foreign" not in c.traits),
        ("an address on another organisation's domain", lambda c: email_domain(c.value, site) != "other"),
        ("a departmental or personal address, not the general inbox", kind),
        (
            "the same brand's domain in another country, not the site's own",
            lambda c: email_domain(c.value, site) == "own",
        ),
    ]


def _email_flavour(candidate: Candidate, site: Site) -> str:
    if "foreign" in candidate.traits:
        return "foreign"
    domain = email_domain(candidate.value, site)
    return (
        "other-domain" if domain == "other" else "sister" if domain == "sister" else email_kind(candidate.value, site)
    )


# --- the other fields -----------------------------------------------------------------------------------


def _everywhere(trait: str) -> Callable[[Candidate], bool]:
    """Whether every statement of a candidate carries the trait (one clean mention clears a number)."""
    return lambda c: all(trait in x.traits for x in c.clues)


_PHONE_RULES: list[Rule] = [
    ("a number in another organisation's contact block", lambda c: not _everywhere("foreign")(c)),
    ("a number the page labels fax", lambda c: not _everywhere("fax")(c)),
    ("not under the headquarters heading", lambda c: "hq" in c.traits),
    ("a branch or division's number", lambda c: not _everywhere("branch")(c)),
    ("an unlabelled number in running text", lambda c: _labelled(c)),
]


def _labelled(c: Candidate) -> bool:
    return bool(c.methods & {"structured", "link"} or "labelled" in c.traits)


def _phone_flavour(c: Candidate) -> str:
    if _everywhere("foreign")(c):
        return "foreign"
    if _everywhere("fax")(c):
        return "fax"
    if "hq" in c.traits:
        return "hq"
    if _everywhere("branch")(c):
        return "branch"
    return "labelled" if _labelled(c) else "plain"


_PLACES = ("company_city", "company_country", "company_hq_location")
_PLACE_KIND = {"structured": 3, "heading": 3, "postal": 3, "meta": 2, "phrase": 1}


def _place_kind(c: Candidate) -> int:
    kinds = [_PLACE_KIND.get(x.method if x.method != "text" else next(iter(x.traits & set(_PLACE_KIND)), ""), 0)
             for x in c.clues]  # fmt: skip
    return max(kinds, default=0)


_PLACE_RULES: list[Rule] = [
    ("an address in another organisation's contact block", lambda c: not _everywhere("foreign")(c)),
    ("not the headquarters", lambda c: "hq" in c.traits),
    ("a branch or division's address", lambda c: "branch" not in c.traits or "hq" in c.traits),
    ("named in passing, not in a postal address", _place_kind),
    ("not where the company says it is based", lambda c: "based-in" in c.traits),
]


def _place_flavour(c: Candidate) -> str:
    if _everywhere("foreign")(c):
        return "foreign"
    if "hq" in c.traits:
        return "hq"
    if "branch" in c.traits:
        return "branch"
    return {3: "postal", 2: "meta", 1: "phrase"}.get(_place_kind(c), "other")


def names_the_domain(name: str, site: Site) -> bool:
    """Whether a name and the domain spell one brand ("Acme Widgets" on acmewidgets.com, "Lumen" on lumenlabs.io)."""
    squeezed = compact(name)
    return bool(site.brand) and (site.brand in squeezed or (len(squeezed) >= 3 and squeezed in site.brand))


def _name_rules(site: Site) -> list[Rule]:
    return [
        ("not the brand the domain names", lambda c: "brand" in c.traits or names_the_domain(c.value, site)),
        ("fewer kinds of statement agree", lambda c: len(c.methods - {"text"}) + min(len(c.pages), 2)),
    ]


def _name_flavour(c: Candidate, site: Site) -> str:
    agreeing = len(c.methods - {"text"})
    brand = "brand" in c.traits or names_the_domain(c.value, site)
    return ("brand" if brand else "unconfirmed") + ("-many" if agreeing >= 2 else "")


_LOGO_RULES: list[Rule] = [
    ("another organisation's logo (a client, partner or badge)", lambda c: not c.traits & {"offsite", "not-ours"}),
    ("not the logo the site declares in its structured data", lambda c: "structured" in c.methods),
    ("not the logo in the site's header or linking home", lambda c: bool(c.traits & {"header", "home-link"})),
    ("not the logo the site names in its meta tags", lambda c: "meta" in c.methods),
    ("an image named after the brand, not marked as a logo", lambda c: "brand" not in c.traits or len(c.traits) > 1),
]  # fmt: skip


def _logo_flavour(c: Candidate) -> str:
    if c.traits & {"offsite", "not-ours"}:
        return "foreign"
    if c.methods & {"structured", "meta"}:
        return "declared"
    if c.traits & {"header", "home-link"}:
        return "home"
    return "brand-file" if "brand" in c.traits else "plain"


_SECONDARY_ACCOUNT = re.compile(r"career|jobs|recruit|ceo|support|help|news|press|store|shop|fans?$", re.IGNORECASE)


def _handle(url: str) -> str:
    return compact(url.rstrip("/").rsplit("/", 1)[-1])


def _social_rules(site: Site) -> list[Rule]:
    names = {n for n in (site.brand, *site.names) if len(n) >= 3}

    def ours(c: Candidate) -> int:
        handle = _handle(c.value)
        return int(any(n in handle or (len(handle) >= 4 and handle in n) for n in names))

    return [
        ("a secondary account (careers, support, an executive)", lambda c: not _secondary(c)),
        ("a handle that does not name the company", ours),
    ]


def _secondary(c: Candidate) -> bool:
    return bool(_SECONDARY_ACCOUNT.search(_handle(c.value)))


def _social_flavour(c: Candidate, site: Site) -> str:
    if _secondary(c):
        return "secondary"
    return "declared" if "structured" in c.methods else "link"


def _founding_stated(c: Candidate) -> bool:
    return bool(c.methods & {"structured"} or c.traits & {"strong", "kv"})


_FOUNDED_RULES: list[Rule] = [
    ('only "since", not "founded" or "established"', _founding_stated),
    ("not on the about or history page", lambda c: "about" in c.traits),
]

_DESCRIPTION_RULES: list[Rule] = [
    (
        "another page's description, not the homepage's",
        lambda c: bool(c.traits & {"home"}) or "structured" in c.methods,
    ),
]


def field_rules(field_name: str, site: Site) -> list[Rule]:
    if field_name == "company_email":
        return _email_rules(site)
    if field_name == "company_phone":
        return _PHONE_RULES
    if field_name in _PLACES:
        return _PLACE_RULES
    if field_name == "company_name":
        return _name_rules(site)
    if field_name == "company_logo_url":
        return _LOGO_RULES
    if field_name == "company_founded_year":
        return _FOUNDED_RULES
    if field_name == "company_description":
        return _DESCRIPTION_RULES
    if field_name.startswith("company_") and field_name in _SOCIAL:
        return _social_rules(site)
    return []


_SOCIAL = {"company_linkedin", "company_twitter", "company_facebook", "company_instagram", "company_youtube",
           "company_github"}  # fmt: skip


def flavour(c: Candidate, site: Site) -> str:
    """The field's own quality label for a candidate: the feature calibration measures besides its standing."""
    f = c.field
    if f == "company_email":
        return _email_flavour(c, site)
    if f == "company_phone":
        return _phone_flavour(c)
    if f in _PLACES:
        return _place_flavour(c)
    if f == "company_name":
        return _name_flavour(c, site)
    if f == "company_logo_url":
        return _logo_flavour(c)
    if f in _SOCIAL:
        return _social_flavour(c, site)
    if f == "company_founded_year":
        return "strong" if _founding_stated(c) else "weak"
    if f == "company_description":
        return "home" if c.traits & {"home"} or "structured" in c.methods else "inner"
    if f == "company_employee_count":
        return "stated" if c.methods & {"structured"} or "kv" in c.traits else "text"
    return "any"


def disqualified(candidate: Candidate, site: Site) -> str | None:
    """Why a value cannot be the company's at all (another organisation's, a fax, a jobs inbox), or None."""
    f = candidate.field
    if f == "company_email" and "foreign" in candidate.traits:
        return "another organisation's address, given with its website"
    if f == "company_email" and email_kind(candidate.value, site) == "narrow":
        return "an inbox for one narrow purpose (jobs, the press, donations), not for contacting the company"
    if f == "company_email" and email_kind(candidate.value, site) == "person" and site.people >= 3:
        return "a staff directory: personal addresses only, no inbox for the company"
    if f == "company_email" and site.own_emails and _subsidiary(candidate.value, site):
        return "a subsidiary's address: the brand's domain in another country, beside the site's own addresses"
    if f == "company_phone" and _everywhere("foreign")(candidate):
        return "a number in another organisation's contact block"
    if f == "company_phone" and _everywhere("fax")(candidate):
        return "a number the page labels fax"
    if f in _PLACES and _everywhere("foreign")(candidate):
        return "an address in another organisation's contact block"
    if f == "company_logo_url" and candidate.traits & {"offsite", "not-ours"}:
        return "another organisation's logo (a client, partner or badge)"
    return None
