"""Generate the bundled sample sales data set, so AgentLink runs offline out of the box.

The data is fictional (agencies and agents are invented) but shaped like a real market:
real suburbs and postcodes in every state and territory, plausible prices per suburb and
property type, a few agencies and agents that dominate each suburb, right-skewed days on
market. Generation is seeded and reads no clock, so running it twice gives byte-identical
files; ``tests/reports/test_sample_data.py`` checks that the shipped CSV matches the generator.

    python -m agentlink.reports.sample [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from agentlink.reports.sales import COLUMNS

END_DATE = date(2026, 10, 31)
DAYS = 730  # 24 months ending on END_DATE: 2024-11-01 .. 2026-10-31
SEED = 20261031
DEFAULT_OUT = Path(__file__).parent / "data" / "sample_sales.csv"
TYPES = ("house", "unit", "townhouse", "land")


@dataclass(frozen=True, slots=True)
class SuburbProfile:
    """What a suburb's market looks like: medians at END_DATE, volume, mix, pace."""

    name: str
    state: str
    postcode: str
    house_median: int
    unit_median: int
    sales_per_year: float  # 0.5 gives one sale in the two years: a thin suburb
    mix: tuple[float, float, float, float]  # house, unit, townhouse, land
    dom_base: int  # typical days on market above the 5-day floor


def _mix(text: str) -> tuple[float, float, float, float]:
    house, unit, townhouse, land = (float(share) for share in text.split())
    return house, unit, townhouse, land


# Medians in thousands of dollars as at END_DATE; mix is "house unit townhouse land".
SUBURBS = tuple(
    SuburbProfile(n, s, pc, h * 1000, u * 1000, v, _mix(mix), dom)
    for n, s, pc, h, u, v, mix, dom in [
        ("Manly", "NSW", "2095", 2750, 1300, 330, ".38 .55 .07 0", 24),
        ("Mosman", "NSW", "2088", 4100, 1250, 250, ".45 .50 .05 0", 28),
        ("Bondi", "NSW", "2026", 3300, 1200, 220, ".25 .70 .05 0", 22),
        ("Paddington", "NSW", "2021", 2750, 1050, 170, ".65 .30 .05 0", 24),
        ("Chatswood", "NSW", "2067", 2900, 1050, 250, ".20 .72 .08 0", 30),
        ("Parramatta", "NSW", "2150", 1500, 620, 320, ".15 .78 .07 0", 35),
        ("Penrith", "NSW", "2750", 900, 520, 300, ".60 .20 .10 .10", 32),
        ("Newcastle", "NSW", "2300", 1350, 850, 160, ".30 .62 .08 0", 35),
        ("Wollongong", "NSW", "2500", 1150, 700, 260, ".50 .40 .10 0", 33),
        ("Byron Bay", "NSW", "2481", 2300, 1150, 110, ".55 .35 .06 .04", 55),
        ("Orange", "NSW", "2800", 680, 420, 230, ".75 .12 .08 .05", 48),
        ("Dubbo", "NSW", "2830", 540, 330, 250, ".78 .10 .06 .06", 52),
        ("Wagga Wagga", "NSW", "2650", 580, 360, 240, ".77 .10 .07 .06", 50),
        ("Toorak", "VIC", "3142", 5200, 900, 170, ".35 .60 .05 0", 40),
        ("Brighton", "VIC", "3186", 3100, 1050, 220, ".55 .35 .10 0", 35),
        ("Fitzroy", "VIC", "3065", 1650, 650, 140, ".35 .55 .10 0", 30),
        ("Richmond", "VIC", "3121", 1500, 580, 270, ".35 .55 .10 0", 32),
        ("St Kilda", "VIC", "3182", 1850, 520, 280, ".15 .80 .05 0", 38),
        ("Werribee", "VIC", "3030", 640, 420, 320, ".62 .08 .15 .15", 40),
        ("Geelong", "VIC", "3220", 850, 560, 170, ".50 .30 .20 0", 36),
        ("Ballarat Central", "VIC", "3350", 560, 380, 130, ".70 .15 .15 0", 42),
        ("Bendigo", "VIC", "3550", 560, 360, 160, ".72 .13 .15 0", 44),
        ("New Farm", "QLD", "4005", 2300, 820, 210, ".22 .72 .06 0", 30),
        ("Paddington", "QLD", "4064", 1650, 720, 150, ".80 .15 .05 0", 24),
        ("Surfers Paradise", "QLD", "4217", 1650, 720, 340, ".10 .87 .03 0", 45),
        ("Noosa Heads", "QLD", "4567", 2900, 1300, 150, ".35 .60 .05 0", 55),
        ("Toowoomba City", "QLD", "4350", 560, 400, 100, ".70 .20 .10 0", 38),
        ("Townsville City", "QLD", "4810", 560, 390, 120, ".30 .65 .05 0", 45),
        ("Cairns City", "QLD", "4870", 600, 400, 130, ".20 .75 .05 0", 42),
        ("Mackay", "QLD", "4740", 480, 300, 120, ".80 .13 .07 0", 35),
        ("Ipswich", "QLD", "4305", 520, 360, 130, ".75 .08 .07 .10", 28),
        ("Norwood", "SA", "5067", 1550, 620, 160, ".45 .40 .15 0", 28),
        ("Glenelg", "SA", "5045", 1450, 650, 170, ".30 .60 .10 0", 30),
        ("Unley", "SA", "5061", 1750, 560, 130, ".70 .20 .10 0", 26),
        ("Mount Barker", "SA", "5251", 700, 420, 180, ".65 .05 .10 .20", 32),
        ("Mount Gambier", "SA", "5290", 440, 290, 170, ".82 .10 .05 .03", 45),
        ("Whyalla", "SA", "5600", 260, 170, 150, ".90 .07 .03 0", 60),
        ("Cottesloe", "WA", "6011", 3300, 1150, 110, ".55 .38 .07 0", 38),
        ("Subiaco", "WA", "6008", 1850, 700, 150, ".50 .40 .10 0", 32),
        ("Fremantle", "WA", "6160", 1350, 720, 130, ".50 .38 .12 0", 30),
        ("Joondalup", "WA", "6027", 820, 480, 130, ".50 .35 .15 0", 18),
        ("Bunbury", "WA", "6230", 560, 380, 130, ".70 .20 .10 0", 25),
        ("Kalgoorlie", "WA", "6430", 400, 250, 140, ".85 .10 .05 0", 40),
        ("Broome", "WA", "6725", 720, 420, 80, ".70 .20 .05 .05", 70),
        ("Sandy Bay", "TAS", "7005", 1150, 600, 170, ".55 .38 .07 0", 38),
        ("Battery Point", "TAS", "7004", 1350, 720, 60, ".55 .40 .05 0", 42),
        ("Launceston", "TAS", "7250", 520, 380, 110, ".50 .45 .05 0", 45),
        ("Devonport", "TAS", "7310", 460, 320, 150, ".80 .12 .05 .03", 48),
        ("Kingston", "TAS", "7050", 730, 480, 170, ".75 .10 .10 .05", 38),
        ("Braddon", "ACT", "2612", 1400, 520, 240, ".05 .90 .05 0", 40),
        ("Kingston", "ACT", "2604", 1300, 560, 210, ".05 .90 .05 0", 42),
        ("Forrest", "ACT", "2603", 2700, 800, 60, ".60 .30 .10 0", 45),
        ("Belconnen", "ACT", "2617", 900, 480, 240, ".20 .72 .08 0", 40),
        ("Gungahlin", "ACT", "2912", 900, 480, 220, ".20 .60 .15 .05", 35),
        ("Darwin City", "NT", "0800", 750, 380, 130, ".03 .95 .02 0", 75),
        ("Fannie Bay", "NT", "0820", 1050, 450, 60, ".45 .50 .05 0", 65),
        ("Palmerston City", "NT", "0830", 480, 320, 70, ".40 .50 .10 0", 60),
        ("Alice Springs", "NT", "0870", 520, 320, 130, ".70 .25 .05 0", 60),
        ("Katherine", "NT", "0850", 400, 230, 70, ".80 .15 .05 0", 75),
        # A hamlet with a single sale on record: reports must stay honest on thin data.
        ("Coral Bay", "WA", "6701", 900, 520, 0.5, ".60 .40 0 0", 60),
    ]
)

# fmt: off
MANLY_STREETS = (
    "The Corso", "Darley Road", "Pittwater Road", "Sydney Road", "Addison Road", "Bower Street",
    "Wentworth Street", "Ashburner Street", "Osborne Road", "Raglan Street", "Eustace Street",
    "Whistler Street", "Victoria Parade", "North Steyne", "South Steyne", "Fairy Bower Road",
)
STREETS = (
    "High Street", "Victoria Street", "King Street", "Queen Street", "Church Street",
    "George Street", "William Street", "Albert Street", "Railway Parade", "Station Street",
    "Park Road", "Beach Road", "Ocean Street", "Hill Street", "Grey Street", "Elizabeth Street",
    "Edward Street", "Bay Street", "Marine Parade", "The Esplanade", "Wattle Avenue",
    "Banksia Street", "Acacia Court", "Jacaranda Drive", "Waratah Street", "Bottlebrush Close",
    "Kookaburra Crescent", "Boronia Street", "Grevillea Way", "Mitchell Street", "Cook Street",
    "Flinders Street", "Hume Street", "Sturt Street", "Macquarie Street", "Lachlan Street",
    "Darling Street", "Murray Street", "Oxley Drive", "Bligh Street", "Phillip Street",
    "Hunter Street", "Wellington Street", "Nelson Street", "Short Street", "Union Street",
    "Market Street", "Kent Street", "Gordon Street", "Stirling Terrace",
)
FIRST_NAMES = (
    "Olivia", "Charlotte", "Amelia", "Isla", "Mia", "Ava", "Grace", "Chloe", "Sophie", "Ruby",
    "Zoe", "Lucy", "Harper", "Matilda", "Siobhan", "Priya", "Mei", "Aisha", "Sienna", "Hannah",
    "Georgia", "Jessica", "Emma", "Leah", "Noor", "Tahlia", "Freya", "Imogen", "Oliver", "Jack",
    "William", "Noah", "Thomas", "James", "Lucas", "Henry", "Liam", "Ethan", "Samuel", "Harrison",
    "Lachlan", "Cooper", "Mason", "Hamish", "Angus", "Declan", "Rohan", "Arjun", "Daniel",
    "Marco", "Nikos", "Tomasz", "Hiroshi", "Kieran", "Patrick", "Benjamin", "Callum", "Finn",
    "Rory", "Jasper",
)
SURNAMES = (
    "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin",
    "White", "Anderson", "Walker", "Harris", "Thompson", "Ryan", "Robinson", "Kelly", "King",
    "Campbell", "Clarke", "Mitchell", "Young", "Hughes", "Cooper", "O'Neill", "O'Brien",
    "O'Sullivan", "D'Souza", "McAllister", "Fraser", "Henderson", "Lawson", "Moretti",
    "Papadopoulos", "Kowalski", "Tanaka", "Chen", "Patel", "Singh", "Wright", "Fitzgerald",
    "Doyle", "Gallagher", "Quinn", "Sutherland", "Blackwood", "Ashby", "Holloway", "Pemberton",
    "Whitlock", "Carmody", "Trevallion", "Esposito", "Lindqvist", "Okafor", "Ramsay", "Delaney",
    "Hartley", "Beaumont", "Kingsford",
)
# Fictional brand stems; "{s}" is the suburb. Some carry "&" and "'" on purpose: reports
# must escape them.
AGENCY_STEMS = (
    "Harbourside", "Coastline", "Bluegum", "Ironbark", "Saltbush", "Tidewater", "Kestrel",
    "Northlight", "Sandstone", "Wattle Lane", "Lantern", "Brightwater", "Paperbark", "Kingfisher",
    "Redgum", "Corella", "Seabreeze", "Southerly", "Larkspur", "Silverleaf", "Heron", "Osprey",
    "Granite", "Juniper", "Tallowwood", "Hollis & Grant", "O'Rourke & Vance", "Fairweather Lowe",
    "Calder Brooks", "Ainsworth Kemp", "Thornbury & Finch", "Marlowe & Hart",
)
# fmt: on
AGENCY_PATTERNS = (
    "{stem} Property",
    "{stem} Realty {s}",
    "{stem} Real Estate",
    "{stem} Property Group",
    "{stem} Estate Agents {s}",
    "{s} {stem} Residential",
)
BEDROOMS = {
    "house": ((2, 3, 4, 5, 6), (8, 35, 38, 15, 4), (0.78, 0.92, 1.08, 1.3, 1.5)),
    "unit": ((1, 2, 3), (30, 55, 15), (0.72, 1.0, 1.4)),
    "townhouse": ((2, 3, 4), (25, 55, 20), (0.85, 1.0, 1.2)),
    "land": ((0,), (1,), (1.0,)),
}
MONTH_WEIGHT = (0.8, 0.9, 1.0, 0.95, 0.9, 0.85, 0.85, 0.95, 1.1, 1.2, 1.25, 1.1)  # Jan..Dec
ANNUAL_GROWTH = 0.06


@dataclass(slots=True)
class _Agency:
    name: str
    weight: float
    price_tilt: float  # boutique agencies sell fewer, dearer homes
    agents: list[str]
    agent_weights: list[float]


def _agencies(rng: random.Random, suburb: SuburbProfile, used: set[str]) -> list[_Agency]:
    count = max(3, min(8, round(2.5 + suburb.sales_per_year / 90 + rng.random() * 2)))
    agencies = []
    for rank, stem in enumerate(rng.sample(AGENCY_STEMS, count)):
        name = rng.choice(AGENCY_PATTERNS).format(stem=stem, s=suburb.name)
        agents = []
        for _ in range(rng.randint(2, 6)):
            person = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
            while person in used:
                person = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
            used.add(person)
            agents.append(person)
        # Zipf-like weights make a few agencies and agents dominate, as in real markets.
        weight = rng.uniform(0.7, 1.3) / (rank + 1) ** 0.9
        agent_weights = [rng.uniform(0.6, 1.4) / (i + 1) ** 1.1 for i in range(len(agents))]
        agencies.append(_Agency(name, weight, rng.uniform(0.9, 1.15), agents, agent_weights))
    return agencies


def _round_price(value: float) -> int:
    step = 5000 if value >= 1_000_000 else 1000
    return max(step, round(value / step) * step)


def _suburb_rows(rng: random.Random, suburb: SuburbProfile, used: set[str]) -> list[list[str]]:
    agencies = _agencies(rng, suburb, used)
    streets = MANLY_STREETS if suburb.name == "Manly" else rng.sample(STREETS, 16)
    days = [END_DATE - timedelta(days=i) for i in range(DAYS)]
    # Spring is the busy season and Saturday is auction day.
    day_cum = list(
        itertools.accumulate(
            MONTH_WEIGHT[d.month - 1] * (3.0 if d.weekday() == 5 else 1.0) for d in days
        )
    )
    medians = {
        "house": suburb.house_median,
        "unit": suburb.unit_median,
        "townhouse": (suburb.house_median + suburb.unit_median) * 0.5,
        "land": suburb.house_median * 0.55,
    }
    rows = []
    for _ in range(round(suburb.sales_per_year * DAYS / 365)):
        sold = rng.choices(days, cum_weights=day_cum)[0]
        kind = rng.choices(TYPES, suburb.mix)[0]
        beds, bed_weights, bed_factor = BEDROOMS[kind]
        i = rng.choices(range(len(beds)), bed_weights)[0]
        agency = rng.choices(agencies, [a.weight for a in agencies])[0]
        agent = rng.choices(agency.agents, agency.agent_weights)[0]
        years_before_end = (END_DATE - sold).days / 365
        price = (
            medians[kind]
            * bed_factor[i]
            * agency.price_tilt
            * rng.lognormvariate(0, 0.18)
            / (1 + ANNUAL_GROWTH) ** years_before_end
        )
        dom = 5 + rng.gammavariate(1.6, suburb.dom_base / 1.6)
        while dom > 120:  # truncate the long tail rather than pile sales up at the cap
            dom = 5 + rng.gammavariate(1.6, suburb.dom_base / 1.6)
        street = rng.choice(streets)
        number = rng.randint(1, 180)
        if kind == "land":
            address = f"Lot {rng.randint(1, 400)} {street}"
        elif kind in ("unit", "townhouse"):
            address = f"{rng.randint(1, 40 if kind == 'unit' else 12)}/{number} {street}"
        else:
            address = f"{number} {street}"
        rows.append(
            [
                sold.isoformat(),
                address,
                suburb.name,
                suburb.state,
                suburb.postcode,
                str(_round_price(price)),
                kind,
                str(beds[i]),
                str(round(dom)),
                agent,
                agency.name,
            ]
        )
    return rows


def generate_rows(seed: int = SEED) -> list[list[str]]:
    """Every sample sale as CSV fields (no header), ordered by date, state, suburb, address."""
    rng = random.Random(seed)
    used: set[str] = set()
    rows = [row for suburb in SUBURBS for row in _suburb_rows(rng, suburb, used)]
    rows.sort(key=lambda r: (r[0], r[3], r[2], r[1], r[9]))
    return rows


def write_csv(path: Path, seed: int = SEED) -> int:
    """Write the sample data set to ``path``; returns the number of sales written."""
    rows = generate_rows(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m agentlink.reports.sample [--out PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV file to write")
    args = parser.parse_args(argv)
    count = write_csv(args.out)
    print(f"wrote {count} sales to {args.out}")  # noqa: T201 - a command reports to its user


if __name__ == "__main__":
    main()
