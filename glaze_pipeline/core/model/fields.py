"""The field catalog: the only place an enrichable field is defined.

Everything else (pandera model, Postgres columns, CLI choices, the table in docs/fields.md)
is generated from `CATALOG`, so adding a field is one entry here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

import phonenumbers

from glaze_pipeline.errors import UserFacingError


class EntityType(StrEnum):
    COMPANY_WEBSITE = "company_website"
    LINKEDIN_COMPANY = "linkedin_company"
    LINKEDIN_PERSON = "linkedin_person"


class Subject(StrEnum):
    """Whom a field describes; decides which entity types may want it."""

    COMPANY = "company"
    PERSON = "person"


SUBJECT_OF_ENTITY: dict[EntityType, Subject] = {
    EntityType.COMPANY_WEBSITE: Subject.COMPANY,
    EntityType.LINKEDIN_COMPANY: Subject.COMPANY,
    EntityType.LINKEDIN_PERSON: Subject.PERSON,
}

Normaliser = Callable[[str], str | None]

_SPACES = re.compile(r"\s+")
_EMAIL = re.compile(r"^[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,63}$")
_INT = re.compile(r"^\d{1,9}$")


# Template syntax a page shipped unrendered ("$metaDescriptionE", "{{ site.name }}", "%%sitename%%"): not a value.
_UNRENDERED = re.compile(
    r"\{\{.*?\}\}|\{%.*?%\}|<%.*?%>|%%\w+%%|\$\{[^}]*\}|\[\[\w+\]\]|^\$[A-Za-z_]\w*$|^%\w+%$", re.DOTALL
)
# Text a theme or CMS fills in until someone writes the real thing.
_PLACEHOLDER = re.compile(
    r"^(?:lorem ipsum\b.*|untitled(?: document| page)?|coming soon|under construction|default title|site title|"
    r"(?:your|my) (?:company|business|site|website|blog)(?: name)?|company name|business name|"
    r"just another wordpress site|my (?:wordpress )?blog|undefined|null|none|n/?a|tbd|test|\.+|-+)$",
    re.IGNORECASE,
)


def is_not_a_value(text: str) -> bool:
    """Unrendered template variables and placeholder text: what a page shows before anyone filled it in."""
    return bool(_UNRENDERED.search(text) or _PLACEHOLDER.match(text.strip()))


def _text(limit: int) -> Normaliser:
    def normalise(raw: str) -> str | None:
        value = _SPACES.sub(" ", raw).strip()
        if not value or is_not_a_value(value):
            return None
        return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"

    return normalise


# Separators a title leaves at either end of a name ("VisionProject :", "| Acme").
_NAME_EDGES = " \t:;|/\\-–—·•»«,"


def _name(limit: int) -> Normaliser:
    """A name as written, without the separators and quotes a title or a footer leaves around it."""
    text = _text(limit)

    def normalise(raw: str) -> str | None:
        value = text(raw)
        if value is None:
            return None
        value = value.strip(_NAME_EDGES).strip("\"'“”‘’").strip(_NAME_EDGES)
        return value if any(ch.isalnum() for ch in value) else None

    return normalise


def normalise_email(raw: str) -> str | None:
    value = raw.strip().lower().removeprefix("mailto:").split("?", 1)[0]
    return value if _EMAIL.match(value) else None


def normalise_phone(raw: str) -> str | None:
    """E.164 when the number carries its country code; digits with + otherwise None."""
    value = raw.strip().removeprefix("tel:")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "." not in parts.hostname:
        return None
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.hostname.lower()}{path}"


def normalise_image_url(raw: str) -> str | None:
    """An image URL with its query string: CDNs sign image links there (LinkedIn's `?e=<expiry>&v=beta&t=<token>`),
    and a signed link without its signature is a broken link. Only the fragment goes."""
    base = normalise_url(raw.split("#", 1)[0].split("?", 1)[0])
    if base is None:
        return None
    query = raw.split("#", 1)[0].partition("?")[2].strip()
    return f"{base}?{query}" if query and not any(ch.isspace() for ch in query) else base


def signed_url_expiry(url: str) -> datetime | None:
    """When a signed media link stops working, if it says so (`e=<unix seconds>`, as LinkedIn's CDN does)."""
    match = re.search(r"[?&]e=(\d{9,11})(?:&|$)", url)
    return datetime.fromtimestamp(int(match.group(1)), UTC) if match else None


_NOT_PROFILES = frozenset({"share", "sharer", "intent", "shareArticle", "home", "login", "search"})


def _profile(
    host_pattern: str, prefixes: tuple[str, ...], canonical: str, not_profiles: frozenset[str] = frozenset()
) -> Normaliser:
    """Canonical social profile URL (`canonical` + handle), refusing share/intent links and site pages."""
    pattern = re.compile(
        r"^(?:https?://)?(?:[a-z]{2,3}\.|www\.|m\.)?" + host_pattern + r"/(" + "|".join(prefixes) + r")([^/?#]+)",
        re.IGNORECASE,
    )
    refused = _NOT_PROFILES | not_profiles

    def normalise(raw: str) -> str | None:
        match = pattern.match(raw.strip())
        if not match:
            return None
        # A profile URL names the account without the "@" people write before a handle (x.com/@acme).
        handle = match.group(2) if match.group(1) == "@" else match.group(2).lstrip("@")
        if not handle or handle in refused or handle.startswith(("sharer", "share")):
            return None
        return canonical.format(prefix=match.group(1), handle=handle.lower() if "linkedin" in host_pattern else handle)

    return normalise


def normalise_employee_range(raw: str) -> str | None:
    """ "51-200 employees" → "51-200", "10,001+" → "10001+": the bands LinkedIn and others publish."""
    value = re.sub(r"[,\s.'’]|employees?", "", raw.strip().lower())
    match = re.fullmatch(r"(\d{1,7})(?:[-–](\d{1,7})|\+)", value)
    if not match:
        return None
    low, high = match.group(1), match.group(2)
    if int(low) > MAX_EMPLOYEES or (high is not None and int(high) > MAX_EMPLOYEES):
        return None
    if high is None:
        return f"{int(low)}+"
    return f"{int(low)}-{int(high)}" if int(low) <= int(high) else None


def normalise_country(raw: str) -> str | None:
    value = raw.strip()
    if len(value) == 2 and value.isalpha():
        code = value.upper()
        return code if code in _COUNTRY_CODES else None
    return COUNTRY_NAMES.get(value.lower())


def normalise_year(raw: str) -> str | None:
    match = re.search(r"\b(1[6-9]\d\d|20\d\d)\b", raw)
    if not match:
        return None
    year = int(match.group(1))
    return str(year) if 1600 <= year <= datetime.now(UTC).year else None


# More than any company employs (Walmart, the largest private employer, reports about 2.1 million): a
# bigger headcount is a typo, a unit mix-up or a planted value, never a fact about a company.
MAX_EMPLOYEES = 3_000_000


def normalise_count(raw: str) -> str | None:
    value = re.sub(r"[,\s.'’]", "", raw.strip().rstrip("+"))
    return str(int(value)) if _INT.match(value) and 0 < int(value) <= MAX_EMPLOYEES else None


# Mail services anyone can have an address at: a company's published address may be there, but an address at
# any other organisation's domain is not the company's.
MAIL_HOSTS = frozenset(
    {
        *("gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com"),
        *("ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "zoho.com"),
        *("gmx.de", "gmx.net", "gmx.com", "gmx.at", "gmx.ch", "web.de", "t-online.de", "freenet.de", "posteo.de"),
        *("mailbox.org", "orange.fr", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr", "libero.it", "virgilio.it"),
        *("tiscali.it", "alice.it", "yandex.ru", "yandex.com", "mail.ru", "qq.com", "163.com", "126.com"),
        *("naver.com", "seznam.cz", "wp.pl", "o2.pl", "onet.pl", "interia.pl", "btinternet.com", "sky.com"),
        *("virginmedia.com", "bigpond.com", "shaw.ca", "rogers.com", "sympatico.ca", "comcast.net", "verizon.net"),
        *("att.net", "sbcglobal.net", "bellsouth.net", "cox.net", "earthlink.net", "telenet.be", "skynet.be"),
        *("ziggo.nl", "kpnmail.nl", "planet.nl", "xs4all.nl", "bluewin.ch", "hispeed.ch", "aon.at", "a1.net"),
        *("chello.at", "telia.com", "online.no", "eircom.net", "fastmail.com", "tutanota.com", "hey.com"),
        *("hotmail.co.uk", "hotmail.de", "hotmail.fr", "hotmail.it", "hotmail.es", "yahoo.co.uk", "yahoo.de"),
        *("yahoo.fr", "yahoo.it", "yahoo.es", "outlook.de", "outlook.fr", "live.co.uk", "live.de", "live.fr"),
    }
)
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "gv", "go"})


def registrable_name(host: str) -> str:
    """The name a domain is registered under, without its suffix: "acme" for shop.acme.co.uk and acme.com."""
    labels = host.lower().strip(".").removeprefix("www.").split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return labels[-3]
    return labels[-2] if len(labels) >= 2 else labels[0]


def implausible(field: str, value: str, company_hosts: frozenset[str] | set[str] = frozenset()) -> str | None:
    """Why a normalised value cannot be true of the company, or None. The catalog's normalisers already bound
    employee counts and founding years; this adds what needs the company: its email's domain."""
    if field != "company_email" or not company_hosts:
        return None
    domain = value.rsplit("@", 1)[-1].lower()
    # The company's names: each host's registered name, and every label before it, since a company on a
    # hosted platform (acme.wixsite.com, acme.business.site) writes from its own domain (info@acme.de).
    names = {registrable_name(h) for h in company_hosts}
    names |= {label for h in company_hosts for label in h.lower().split(".")[:-2] if label != "www"}
    if domain in MAIL_HOSTS or registrable_name(domain) in names:
        return None
    return f"an address at {domain}, neither the company's domain nor a mail service"


# ISO-3166 alpha-2 codes that phonenumbers knows (it ships the list, so we need not).
_COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS)
COUNTRY_NAMES = {
    name: code
    for code, names in {
        "US": ("united states", "usa", "united states of america", "us", "u.s.a.", "u.s.a", "u.s."),
        "GB": ("united kingdom", "uk", "great britain", "england", "scotland", "wales"),
        "DE": ("germany", "deutschland"),
        "FR": ("france",),
        "NL": ("netherlands", "the netherlands", "nederland", "holland"),
        "BE": ("belgium", "belgië", "belgique"),
        "CH": ("switzerland", "schweiz", "suisse", "svizzera"),
        "AT": ("austria", "österreich"),
        "ES": ("spain", "españa"),
        "IT": ("italy", "italia"),
        "PT": ("portugal",),
        "IE": ("ireland",),
        "SE": ("sweden", "sverige"),
        "NO": ("norway", "norge"),
        "DK": ("denmark", "danmark"),
        "FI": ("finland", "suomi"),
        "PL": ("poland", "polska"),
        "CZ": ("czech republic", "czechia", "česko", "česká republika"),
        "CA": ("canada",),
        "AU": ("australia",),
        "NZ": ("new zealand",),
        "JP": ("japan",),
        "CN": ("china",),
        "IN": ("india",),
        "SG": ("singapore",),
        "IL": ("israel",),
        "BR": ("brazil", "brasil"),
        "MX": ("mexico", "méxico"),
        "ZA": ("south africa",),
        "AE": ("united arab emirates", "uae"),
        "LU": ("luxembourg",),
        "EE": ("estonia",),
        "HK": ("hong kong",),
        "KR": ("south korea", "korea"),
        "TW": ("taiwan",),
        "AR": ("argentina",),
        "CL": ("chile",),
        "CO": ("colombia",),
        "PE": ("peru",),
        "RU": ("russia", "russian federation"),
        "TR": ("turkey", "türkiye"),
        "GR": ("greece",),
        "HU": ("hungary", "magyarország"),
        "RO": ("romania", "românia"),
        "UA": ("ukraine",),
        "SK": ("slovakia", "slovensko"),
        "SI": ("slovenia", "slovenija"),
        "HR": ("croatia", "hrvatska"),
        "RS": ("serbia",),
        "BG": ("bulgaria",),
        "LT": ("lithuania",),
        "LV": ("latvia",),
        "CY": ("cyprus",),
        "MT": ("malta",),
        "IS": ("iceland",),
        "SA": ("saudi arabia",),
        "QA": ("qatar",),
        "EG": ("egypt",),
        "NG": ("nigeria",),
        "KE": ("kenya",),
        "MY": ("malaysia",),
        "ID": ("indonesia",),
        "PH": ("philippines",),
        "TH": ("thailand",),
        "VN": ("vietnam", "viet nam"),
        "PK": ("pakistan",),
        "BD": ("bangladesh",),
        "LK": ("sri lanka",),
        "LB": ("lebanon",),
        "KZ": ("kazakhstan",),
        "LI": ("liechtenstein",),
    }.items()
    for name in names
}


@dataclass(frozen=True)
class Field:
    """One enrichable column: who it describes, its type and how a raw value becomes canonical."""

    name: str
    subject: Subject
    description: str
    normalise: Normaliser
    # What a normalised value must look like; the pandera model checks merged values with it.
    pattern: str | None = None
    max_length: int = 2000
    # The logical type users see in SQL models; values travel as normalised text.
    sql_type: str = "text"

    def clean(self, raw: object) -> str | None:
        if raw is None:
            return None
        return self.normalise(str(raw))


_C, _P = Subject.COMPANY, Subject.PERSON

EMAIL = r"^[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,63}$"
PHONE = r"^\+[1-9]\d{5,14}$"
URL = r"^https?://[a-z0-9.\-]+\.[a-z0-9\-]+(/\S*)?$"
COUNTRY = r"^[A-Z]{2}$"
YEAR = r"^(1[6-9]|20)\d\d$"
COUNT = r"^[1-9]\d{0,8}$"
LINKEDIN_COMPANY = r"^https://www\.linkedin\.com/(company|school|showcase)/[^/?#\s]+$"
LINKEDIN_PERSON = r"^https://www\.linkedin\.com/in/[^/?#\s]+$"
X_PROFILE = r"^https://x\.com/[^/?#\s]+$"

_linkedin_company = _profile(
    r"linkedin\.com", ("company/", "school/", "showcase/"), "https://www.linkedin.com/{prefix}{handle}"
)
_linkedin_person = _profile(r"linkedin\.com", ("in/",), "https://www.linkedin.com/{prefix}{handle}")
_x_profile = _profile(r"(?:twitter|x)\.com", ("",), "https://x.com/{handle}")
# Facebook paths that are not a page: dialogs, plugins, photos, posts and sets, searches.
_FACEBOOK_PAGES = frozenset(
    {
        *("dialog", "plugins", "tr", "watch", "groups", "events", "profile.php", "media", "photo.php", "photos"),
        *("permalink.php", "story.php", "hashtag", "login.php", "people", "help", "policies"),
    }
)
_facebook = _profile(
    r"facebook\.com",
    # Old page URLs (/pages/Name/123456) canonicalise to the page id.
    (r"pages/(?:[^/?#]+/)+", ""),
    "https://www.facebook.com/{handle}",
    _FACEBOOK_PAGES,
)
_instagram = _profile(
    r"instagram\.com", ("",), "https://www.instagram.com/{handle}", frozenset({"p", "reel", "explore", "stories"})
)
_youtube_profile = _profile(
    r"youtube\.com", ("channel/", "c/", "user/", "@"), "https://www.youtube.com/{prefix}{handle}"
)
# youtube.com/<name> is the legacy short form of a channel's custom URL, youtube.com/c/<name>.
_YOUTUBE_LEGACY = re.compile(r"^(?:https?://)?(?:www\.|m\.)?youtube\.com/([A-Za-z0-9][\w.\-]{1,99})/?(?:[?#].*)?$")
_YOUTUBE_PAGES = frozenset(
    {
        "watch", "results", "playlist", "embed", "feed", "channel", "c", "user", "redirect", "shorts", "live",
        "account", "premium", "about", "t", "attribution_link", "subscription_center", "signin", "logout",
        "upload", "gaming", "music", "kids", "trending", "howyoutubeworks", "creators", "ads", "yt", "tv",
    }
)  # fmt: skip


def _youtube(raw: str) -> str | None:
    """A channel in one of its profile forms; the legacy youtube.com/<name> becomes youtube.com/c/<name>."""
    if profile := _youtube_profile(raw):
        return profile
    match = _YOUTUBE_LEGACY.match(raw.strip())
    if match and match.group(1).lower() not in _YOUTUBE_PAGES:
        return f"https://www.youtube.com/c/{match.group(1)}"
    return None


_github = _profile(
    r"github\.com",
    ("",),
    "https://github.com/{handle}",
    frozenset({"orgs", "sponsors", "features", "about", "pricing", "topics", "apps", "marketplace"}),
)
FACEBOOK = r"^https://www\.facebook\.com/[^/?#\s]+$"
INSTAGRAM = r"^https://www\.instagram\.com/[^/?#\s]+$"
YOUTUBE = r"^https://www\.youtube\.com/(channel/|c/|user/|@)[^/?#\s]+$"
GITHUB = r"^https://github\.com/[^/?#\s]+$"
EMPLOYEE_RANGE = r"^\d+(-\d+|\+)$"

CATALOG: dict[str, Field] = {
    f.name: f
    for f in (
        Field("company_name", _C, "Company brand or legal name", _name(200), max_length=200),
        Field("company_description", _C, "Official one-paragraph description", _text(2000)),
        Field("company_website", _C, "Official website URL", normalise_url, URL),
        Field(
            "company_hq_location",
            _C,
            "Headquarters as written (city, region, country)",
            _text(300),
            None,
            300,
        ),
        Field("company_city", _C, "Headquarters city", _text(120), None, 120),
        Field("company_country", _C, "Headquarters country, ISO 3166-1 alpha-2", normalise_country, COUNTRY),
        Field("company_employee_count", _C, "Employees, as stated", normalise_count, COUNT, sql_type="integer"),
        Field("company_industry", _C, "Industry", _text(200), None, 200),
        Field("company_founded_year", _C, "Year founded", normalise_year, YEAR, sql_type="integer"),
        Field("company_revenue", _C, "Revenue or revenue band, as stated", _text(100), None, 100),
        Field("company_funding", _C, "Funding raised, as stated", _text(100), None, 100),
        Field("company_linkedin", _C, "LinkedIn company page", _linkedin_company, LINKEDIN_COMPANY),
        Field("company_twitter", _C, "X / Twitter profile", _x_profile, X_PROFILE),
        Field("company_email", _C, "Public contact email", normalise_email, EMAIL),
        Field("company_employee_range", _C, "Employee band, e.g. 51-200", normalise_employee_range, EMPLOYEE_RANGE),
        Field("company_specialities", _C, "Specialities, comma-separated as published", _text(1000), None, 1000),
        Field("company_logo_url", _C, "Logo image URL (signed CDN links keep their query)", normalise_image_url, URL),
        Field("company_facebook", _C, "Facebook page", _facebook, FACEBOOK),
        Field("company_instagram", _C, "Instagram profile", _instagram, INSTAGRAM),
        Field("company_youtube", _C, "YouTube channel", _youtube, YOUTUBE),
        Field("company_github", _C, "GitHub organisation", _github, GITHUB),
        Field("company_phone", _C, "Public phone number, E.164", normalise_phone, PHONE),
        Field("person_name", _P, "Full name", _name(200), None, 200),
        Field("person_email", _P, "Work email", normalise_email, EMAIL),
        Field("person_phone", _P, "Phone, E.164", normalise_phone, PHONE),
        Field("person_title", _P, "Current job title", _text(200), None, 200),
        Field("person_linkedin", _P, "LinkedIn profile", _linkedin_person, LINKEDIN_PERSON),
        Field("person_location", _P, "Location as written", _text(300), None, 300),
        Field("person_company", _P, "Current company", _name(200), None, 200),
    )
}

FIELD_NAMES: tuple[str, ...] = tuple(CATALOG)
# The company's social profiles: the website provider fills them from links, the extractor recognises them.
SOCIAL_FIELDS = (
    "company_linkedin",
    "company_twitter",
    "company_facebook",
    "company_instagram",
    "company_youtube",
    "company_github",
)


class UnknownFieldError(UserFacingError, ValueError):
    pass


def field_for_column(column: str) -> str | None:
    """The catalog field an input column names, if any ("Company_Name " → company_name): such columns are hints."""
    name = column.strip().lower()
    return name if name in CATALOG else None


ALL_FIELDS = "all"


def parse_wanted(spec: str | list[str] | None) -> list[str]:
    """Fields the user asked for, in catalog order.

    Not given (None) or "all" means every field; a list that names nothing (`""`, `",,,"`) is an error,
    not "all": a typo must not start the most expensive run there is.
    """
    if spec is None:
        return list(FIELD_NAMES)
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n]
    if not names:
        raise UnknownFieldError(
            "the field list is empty: name at least one field (e.g. company_name,company_email) or 'all'"
        )
    if ALL_FIELDS in names:
        if len(names) > 1:
            raise UnknownFieldError("'all' already means every field: give either 'all' or field names, not both")
        return list(FIELD_NAMES)
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        raise UnknownFieldError(f"unknown field(s): {', '.join(unknown)}. Known fields: {', '.join(FIELD_NAMES)}")
    return [n for n in FIELD_NAMES if n in names]


def fields_for(entity_type: str, wanted: list[str]) -> list[str]:
    """The wanted fields that make sense for this entity (a person has no founded year)."""
    subject = SUBJECT_OF_ENTITY[EntityType(entity_type)]
    return [n for n in wanted if CATALOG[n].subject == subject]
