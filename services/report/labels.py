"""Dutch wording of the mirror report, and how each indicator's figure reads.

The readers are quality officers of a youth-care provider and municipal policy
advisors; they know the basisset by its Dutch names and the CBS code lists by
their Dutch labels, so the documents use those. The code stays English.

Kept apart from the renderers so HTML, PDF and the charts say the same thing
in the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ttp.outcomes import INDICATORS
from ttp.periods import PERIOD_RE

ValueKind = Literal["share", "mean"]


@dataclass(frozen=True)
class IndicatorSpec:
    """How one indicator of the basisset is named, defined and formatted."""

    key: str
    number: str
    title: str
    definition: str
    value_label: str
    value_kind: ValueKind
    #: Axis range of the figure: shares run 0..1, means over the answer scale.
    scale: tuple[float, float]
    #: Answer categories in scale order, with their Dutch label.
    categories: tuple[tuple[str, str], ...] = ()
    #: Sub-figures (``Cell.variant``) in reading order; the first is the one split by care type.
    variants: tuple[tuple[str, str], ...] = ()
    responses_label: str = "trajecten met een meting"
    caveat: str = ""
    distribution_title: str = "Verdeling van de antwoorden"
    #: False when the categories are not answers worth a chart (3.2: new start yes/no).
    show_distribution: bool = True
    #: What the chart's category ticks stand for, when they are codes.
    chart_note: str = ""
    #: The population the indicator is defined for; its headline figure is this group's.
    population: dict[str, str] = field(default_factory=dict)
    #: What the distribution chart's shares are shares of.
    distribution_axis: str = "Aandeel van de metingen"
    #: False for figures registered for every trajectory (uitval, 3.2): no response rate.
    has_response: bool = True


SPECS: dict[str, IndicatorSpec] = {
    "uitval": IndicatorSpec(
        key="uitval",
        number="1",
        title="Uitval van cliënten",
        definition=(
            "Aandeel van de beëindigde trajecten dat voortijdig en eenzijdig door de cliënt is "
            "beëindigd (reden van beëindiging 03)."
        ),
        value_label="Aandeel uitval",
        value_kind="share",
        scale=(0.0, 1.0),
        categories=(
            ("01", "Volgens plan"),
            ("02", "Voortijdig, in overeenstemming"),
            ("03", "Voortijdig, eenzijdig door cliënt"),
            ("04", "Voortijdig, eenzijdig door aanbieder"),
            ("05", "Voortijdig, externe omstandigheden"),
        ),
        responses_label="trajecten met een reden van beëindiging",
        distribution_title="Reden van beëindiging",
        distribution_axis="Aandeel van de trajecten",
        has_response=False,
        chart_note=(
            "Redenen: 01 volgens plan, 02 voortijdig in overeenstemming, 03 voortijdig eenzijdig "
            "door de cliënt (uitval), 04 voortijdig eenzijdig door de aanbieder, 05 externe "
            "omstandigheden."
        ),
    ),
    "tevredenheid": IndicatorSpec(
        key="tevredenheid",
        number="2",
        title="Tevredenheid over nut en effect",
        definition=(
            "Gemiddeld rapportcijfer (1 tot 10) dat jeugdige of ouder geeft op de vraag hoe nuttig "
            "de hulp was; per type informant."
        ),
        value_label="Gemiddeld cijfer",
        value_kind="mean",
        scale=(1.0, 10.0),
        categories=tuple((str(i), str(i)) for i in range(1, 11)),
    ),
    "zonderHulpVerder": IndicatorSpec(
        key="zonderHulpVerder",
        number="3.1",
        title="Zonder hulp verder",
        definition=(
            "Aandeel dat het (helemaal) eens is met ‘Ik heb voldoende aan de hulp gehad om na de "
            "hulp zelf verder te gaan’ (antwoord 3 of 4); per type informant."
        ),
        value_label="Aandeel (helemaal) mee eens",
        value_kind="share",
        scale=(0.0, 1.0),
        categories=(
            ("1", "Helemaal niet mee eens"),
            ("2", "Niet mee eens"),
            ("3", "Mee eens"),
            ("4", "Helemaal mee eens"),
        ),
        chart_note=(
            "Antwoorden: 1 helemaal niet mee eens, 2 niet mee eens, 3 mee eens, 4 helemaal mee eens."
        ),
    ),
    "geenNieuweStart": IndicatorSpec(
        key="geenNieuweStart",
        number="3.2",
        title="Geen nieuwe start van jeugdhulp",
        definition=(
            "Aandeel van de beëindigde trajecten waarna geen nieuw jeugdhulptraject van dezelfde "
            "persoon startte, bij welke aanbieder ook. Een nieuw traject jeugdbescherming of "
            "jeugdreclassering is geen nieuwe start jeugdhulp en staat apart. Afgeleid door de "
            "TTP; pas te zien als de volgperiode en de aanlevertermijn van 3 weken voorbij zijn. "
            "Het cijfer is een bovengrens: trajecten die nog lopen, zijn nog niet aangeleverd."
        ),
        value_label="Aandeel zonder nieuwe start",
        value_kind="share",
        scale=(0.0, 1.0),
        variants=(
            ("volgendHalfjaar", "Tot eind volgend halfjaar (CBS-methode)"),
            ("6m", "Binnen 6 maanden"),
            ("12m", "Binnen 12 maanden"),
            ("volgensPlanVolgendHalfjaar", "Volgens plan beëindigd, tot eind volgend halfjaar"),
            ("volgensPlan6m", "Volgens plan beëindigd, binnen 6 maanden"),
            ("volgensPlan12m", "Volgens plan beëindigd, binnen 12 maanden"),
            ("jbJrVolgendHalfjaar", "Geen nieuwe jeugdbescherming/-reclassering, tot eind "
             "volgend halfjaar"),
            ("jbJr6m", "Geen nieuwe jeugdbescherming/-reclassering, binnen 6 maanden"),
            ("jbJr12m", "Geen nieuwe jeugdbescherming/-reclassering, binnen 12 maanden"),
        ),
        categories=(("geenNieuweStart", "Geen nieuwe start"), ("nieuweStart", "Nieuwe start")),
        responses_label="trajecten met afgelopen volgperiode",
        distribution_title="Cijfer per termijn",
        show_distribution=False,
        distribution_axis="Aandeel van de trajecten",
        has_response=False,
    ),
    "afnameProblematiek": IndicatorSpec(
        key="afnameProblematiek",
        number="3.3",
        title="Afname problematiek",
        definition=(
            "Verandering van problematiek, zelfredzaamheid of participatie tussen begin- en "
            "eindmeting, zoals de professional die met een meetinstrument beoordeelt; alleen bij "
            "niet-vrij-toegankelijke hulp (individuele voorziening), en n telt alleen die "
            "trajecten. Het kerncijfer is het aandeel met een sterke of matige verbetering."
        ),
        value_label="Aandeel verbeterd (sterk of matig)",
        value_kind="share",
        scale=(0.0, 1.0),
        categories=(
            ("sterke-verbetering", "Sterke verbetering"),
            ("matige-verbetering", "Matige verbetering"),
            ("stabilisatie", "Stabilisatie"),
            ("matige-verslechtering", "Matige verslechtering"),
            ("sterke-verslechtering", "Sterke verslechtering"),
        ),
        caveat="In de grafiek: + verbetering, − verslechtering.",
        population={"freelyAccessible": "false"},
    ),
    "doelrealisatie": IndicatorSpec(
        key="doelrealisatie",
        number="3.4",
        title="Doelrealisatie",
        definition=(
            "Mate waarin de overeengekomen doelen zijn gerealiseerd, overall en per doel: "
            "−1 ongunstiger dan bij de start, 0 gelijk, 1 deels behaald, 2 behaald; alleen bij "
            "niet-vrij-toegankelijke hulp, en n telt alleen die trajecten. Het kerncijfer is het "
            "aandeel met score 1 of 2: overall per traject, per doel over alle doelen samen "
            "(elk doel weegt even zwaar); per type informant."
        ),
        value_label="Aandeel doel (deels) behaald",
        value_kind="share",
        scale=(0.0, 1.0),
        categories=(
            ("-1", "−1 ongunstiger"),
            ("0", "0 gelijk"),
            ("1", "1 deels behaald"),
            ("2", "2 behaald"),
        ),
        variants=(("overall", "Overall"), ("perDoel", "Per doel")),
        population={"freelyAccessible": "false"},
    ),
}

assert tuple(SPECS) == INDICATORS, "every indicator of the basisset needs a spec, in order"

#: The care-type hierarchy of the breakdowns: access, then sector, then hulpvorm.
CARE_DIMENSIONS: tuple[str, ...] = ("freelyAccessible", "sector", "hulpvorm")
CARE_HEADING = "Soort hulp"
AGE_HEADING = "Leeftijd bij einde"

CODE_LABELS: dict[str, dict[str, str]] = {
    "sector": {
        "jeugdhulp": "Jeugdhulp",
        "jeugdbescherming": "Jeugdbescherming",
        "jeugdreclassering": "Jeugdreclassering",
    },
    "freelyAccessible": {
        "false": "Niet vrij toegankelijk",
        "true": "Vrij toegankelijk",
    },
    "hulpvorm": {
        "01": "Wijk-/buurtteam",
        "02": "Ambulant, locatie aanbieder",
        "03": "Daghulp, locatie aanbieder",
        "04": "In het netwerk van de jeugdige",
        "11": "Pleegzorg",
        "12": "Gezinsgericht verblijf",
        "13": "Gesloten plaatsing",
        "14": "Overig verblijf",
    },
    "informant": {"jeugdige": "Jeugdige", "ouder": "Ouder"},
}

INFORMANT_ORDER: tuple[str, ...] = ("jeugdige", "ouder")

#: Why a figure is absent. The shareable variant never says whether a hidden cell was small
#: itself or hidden to protect another: that would point at the small ones.
STATUS_LABELS: dict[str, str] = {
    "ok": "",
    "suppressed": "afgeschermd",
    "suppressed-primary": "afgeschermd",
    "suppressed-secondary": "afgeschermd",
    "not-yet-observable": "nog niet waarneembaar",
    "no-responses": "geen metingen",
    "too-few-responses": "te weinig metingen",
    "not-applicable": "n.v.t.",
}

#: The same, short enough for a table column; the reading guide explains them.
STATUS_SHORT: dict[str, str] = {**STATUS_LABELS, "not-yet-observable": "nog niet bekend"}

#: The four questions of the quality conversation (NJi / SEJN), as annotation fields.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("recognition", "Herkennen we het?"),
    ("explanation", "Hoe verklaren we het?"),
    ("appraisal", "Wat vinden we ervan?"),
    ("needs", "Wat is nodig?"),
)

VARIANT_LABELS: dict[str, str] = {
    "intern": "Intern: alle cijfers, ook kleine aantallen. Alleen voor eigen gebruik.",
    "deelbaar": "Deelbaar: kleine aantallen afgeschermd, geschikt om te delen.",
}

VARIANT_BADGES: dict[str, str] = {"intern": "INTERN – niet delen", "deelbaar": "DEELBAAR"}

#: Share of trajectories with a measurement below which the documents flag the figure.
LOW_RESPONSE = 0.5

#: A percentage over fewer answers than this is no headline, not even in the internal report:
#: shown greyed with its count, and not drawn as a trend point like the others.
MIN_HEADLINE_RESPONSES = 10

#: The report banner per period status (as CBS: voorlopige and definitieve cijfers).
PERIOD_STATUS_LABELS: dict[str, str] = {
    "voorlopig": "VOORLOPIG: dit halfjaar loopt nog of de aanlevertermijn van 3 weken is nog niet "
    "voorbij; de cijfers kunnen nog veranderen.",
    "definitief": "Definitief: de aanlevertermijn van dit halfjaar is voorbij.",
}


def period_label(period: str) -> str:
    """``2026-H1`` -> ``1e halfjaar 2026``."""
    m = PERIOD_RE.match(period)
    if m is None:
        return period
    return f"{m.group(2)}e halfjaar {m.group(1)}"


def period_short(period: str) -> str:
    """``2026-H1`` -> ``2026 H1`` (axis ticks)."""
    return period.replace("-", " ")


def code_label(dimension: str, code: str) -> str:
    """Dutch label of a breakdown value; age bands read as ``12-15 jaar``."""
    if dimension == "ageBand":
        return f"{code} jaar"
    return CODE_LABELS.get(dimension, {}).get(code, code)


def variant_label(indicator: str, variant: str | None) -> str:
    """Dutch label of a sub-figure; unknown ones are shown by their code, never dropped."""
    if variant is None:
        return ""
    return dict(SPECS[indicator].variants).get(variant, variant)


def category_label(indicator: str, category: str) -> str:
    return dict(SPECS[indicator].categories).get(category, category)


def number(value: float, decimals: int = 1) -> str:
    """Dutch number: decimal comma, thin grouping with a dot (``25.000``; ``7,4``)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u0000").replace(".", ",").replace("\u0000", ".")


def count(value: int | None) -> str:
    return "–" if value is None else number(value, 0)


def percent(share: float | None, decimals: int = 0) -> str:
    if share is None or math.isnan(share):
        return "–"
    return f"{number(share * 100, decimals)}%"


def figure(indicator: str, value: float | None, status: str = "ok") -> str:
    """The figure as a reader sees it, or why there is none (never a zero for a hidden value)."""
    if status != "ok" or value is None:
        return STATUS_LABELS.get(status) or "–"
    spec = SPECS[indicator]
    if spec.value_kind == "share":
        return percent(value, 1)
    return number(value, 1)


def response_short(n: int | None, responses: int | None, eligible: int | None = None) -> str:
    """``respons 80 (67%)``, for table cells where n stands on the line above.

    The rate is over ``eligible`` (the trajectories where this informant answers) when
    given; nothing for figures without a response (uitval, 3.2)."""
    base = n if eligible is None else eligible
    if base is None or responses is None:
        return ""
    if eligible == 0:
        return "respons n.v.t."
    if base == 0:
        return f"respons {count(responses)}"
    return f"respons {count(responses)} ({percent(responses / base)})"


def coverage(n: int | None, responses: int | None, eligible: int | None = None) -> str:
    """``respons 80 van 120 (67%)``: the data-quality fact printed beside every figure.

    Over ``eligible`` when given (a jeugdige answers from 12: under 12 "n.v.t."); empty for
    figures that are registered for every trajectory and have no response (uitval, 3.2)."""
    base = n if eligible is None else eligible
    if responses is None and n is not None:
        return ""
    if base is None or responses is None:
        return "respons –"
    if eligible == 0:
        return "respons n.v.t."
    if base == 0:
        return "respons 0 van 0"
    return f"respons {count(responses)} van {count(base)} ({percent(responses / base)})"


TITLE = "Spiegelrapportage outcome-indicatoren jeugd"

INTRO = (
    "Deze spiegelrapportage toont de uitkomsten van de jeugdhulp over de trajecten die in deze "
    "periode zijn beëindigd, met de ontwikkeling over de laatste halfjaren en het landelijke cijfer "
    "als referentie. De cijfers zijn bedoeld voor het kwaliteitsgesprek, intern en met gemeenten. "
    "Er zijn geen normen, en aanbieders worden niet met elkaar vergeleken of gerangschikt. Cijfers "
    "spreken niet voor zich: bij elke indicator staat het verhaal van de aanbieder erachter."
)

RESPONSE_NOTE = (
    "Bij elk cijfer staan n (beëindigde trajecten) en de respons (trajecten met een meting, als "
    "percentage van de trajecten waarin die informant invult: een jeugdige vanaf 12 jaar; onder "
    "de 12 staat er ‘n.v.t.’). Uitval en geen nieuwe start worden voor elk traject vastgelegd en "
    "hebben geen respons. Een percentage over minder dan "
    f"{MIN_HEADLINE_RESPONSES} metingen staat grijs met het aantal erbij en telt niet als punt in "
    "de ontwikkeling. Lage "
    "respons is het belangrijkste kwaliteitsprobleem van deze cijfers: een cijfer op weinig "
    "metingen kan ver afliggen van wat alle cliënten vinden. Cijfers met een respons onder de "
    f"{int(LOW_RESPONSE * 100)}% zijn gemarkeerd."
)

VARIANT_STATEMENTS: dict[str, str] = {
    "intern": (
        "Deze versie bevat alle cijfers, ook over kleine groepen cliënten. Deel haar niet buiten "
        "uw organisatie; gebruik daarvoor de deelbare versie."
    ),
    "deelbaar": (
        "In deze versie zijn cijfers over minder dan {threshold} trajecten afgeschermd, en waar "
        "nodig aanvullende cijfers, zodat geen cliënt herkenbaar is. U kunt haar delen met "
        "gemeenten."
    ),
}

CONVERSATION_INTRO = (
    "Vier vragen helpen om de cijfers betekenis te geven (NJi en SEJN). De antwoorden van de "
    "aanbieder staan bij elke indicator."
)

READING_GUIDE: tuple[tuple[str, str], ...] = (
    ("n", "Aantal beëindigde trajecten in de groep."),
    ("Respons", "Aantal trajecten met een meting voor deze indicator, ook als percentage van de "
     "trajecten waarin die informant invult (jeugdige vanaf 12 jaar, ouder altijd)."),
    ("N.v.t.", "De informant vult in deze groep niet in: onder de 12 jaar vullen alleen de ouders "
     "in."),
    ("Voorlopig", "Het halfjaar loopt nog of de aanlevertermijn van 3 weken is nog niet voorbij; "
     "de cijfers kunnen nog veranderen. Daarna zijn ze definitief."),
    ("Lage respons", f"Minder dan {int(LOW_RESPONSE * 100)}% van de trajecten heeft een meting. "
     "Lees zo'n cijfer met voorzichtigheid; het zegt niets over de kwaliteit van de hulp zelf."),
    ("Landelijk", "Hetzelfde cijfer over alle aanbieders samen: een referentie, geen norm."),
    ("Niet getoond", "Het landelijke cijfer is weggelaten omdat er te weinig trajecten van andere "
     "aanbieders in zitten: het verschil met het eigen cijfer zou iets over die cliënten "
     "prijsgeven."),
    ("Afgeschermd", "Deelbare versie: een groep met minder dan {threshold} trajecten, of een groep "
     "die is afgeschermd zodat zo'n klein aantal niet uit totalen of andere cijfers is terug te "
     "rekenen. Welke van de twee het is, staat er bewust niet bij."),
    ("Te weinig metingen", "Deelbare versie: de groep is groot genoeg, maar het cijfer zou op "
     "minder dan {threshold} metingen rusten en staat er daarom niet."),
    ("Nog niet bekend", "Geen nieuwe start (3.2) is pas bekend als de volgperiode voorbij is."),
    ("Geen metingen", "Er is in deze groep geen enkele meting aangeleverd."),
    ("Zonder BSN", "Trajecten zonder (bekend) BSN of van een ongeboren kind (codes 000000000 en "
     "999999999) zijn gekoppeld op geslacht, geboortedatum en postcode. Dat koppelt minder goed; "
     "vooral 3.2 kan daardoor te gunstig uitvallen."),
    ("Soort hulp", "Toegang (vrij of niet vrij toegankelijk), daarbinnen sector en daarbinnen "
     "hulpvorm, volgens de codes van de Beleidsinformatie Jeugd. Groepen zonder trajecten en "
     "afgeschermde groepen zonder getoonde onderverdeling staan niet in de tabellen."),
    ("Uitsplitsingen", "Alle cijfers, ook per gemeente, staan in de CSV- en JSON-versie van deze "
     "rapportage."),
    ("Volgorde", "Groepen staan in de volgorde van de CBS-codelijsten, nooit op uitkomst."),
)

NO_ANNOTATION = "De aanbieder heeft bij deze indicator (nog) geen toelichting gegeven."

SPLITS_PENDING = (
    "De uitsplitsing naar soort hulp en leeftijd heeft in dit halfjaar nog geen cijfers "
    "({status}); zie de ontwikkeling over eerdere halfjaren hierboven."
)

HIDDEN_GROUPS = (
    "Groepen zonder trajecten en afgeschermde groepen zonder getoonde onderverdeling staan niet "
    "in de tabel."
)

HULPVORM_DROPPED = "De uitsplitsing naar hulpvorm is te groot voor deze pagina en staat in de CSV."


def readable_note(note: str) -> str:
    """A note from aggregate with its quoted status codes in the documents' Dutch words."""
    for code, label in STATUS_SHORT.items():
        if label:
            note = note.replace(f"'{code}'", f"‘{label}’")
    return note
