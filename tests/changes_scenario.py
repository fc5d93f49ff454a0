"""A before/after pair of runs covering every change kind, for the change-report tests.

Built with `tests.archive_factory`, with fixed run ids and real content hashes (the
factory's stand-in hash only looks at the summary), so reports of it are deterministic:

* en asthma, updated: 2024-01-10 -> 2024-03-01; summary, also called, links (added,
  moved to another section, edited), trials, institute, related topics, last reviewed;
* en copd, same_date_edit: title changed, links reordered and removed, a trial removed;
* en diabetes, date_only: 2024-01-10 -> 2024-02-20, same content, other journal articles;
* en flu, added (2024-03-04); en measles, removed (gone: 404 in the after run);
* en hives: other journal articles only, no change; en anemia: the same version;
* es diabetes, same_date_edit: the summary's markup only (its text is the same).

The before run is on 2024-01-10, the after run on 2024-03-05.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from crawler.parsing.content_hash import content_hash
from crawler.parsing.items import ClinicalTrial, HealthTopicPage, Institute, RelatedTopic, TopicLink
from tests import archive_factory
from tests.archive_factory import ORIGIN, at, make_page

BEFORE_DAY = date(2024, 1, 10)
AFTER_DAY = date(2024, 3, 5)
BEFORE_RUN = "20240110T000000Z-0000"
AFTER_RUN = "20240305T000000Z-0000"


def _fixed_run_id(when: datetime) -> str:
    return f"{when:%Y%m%dT%H%M%SZ}-0000"


def page(slug: str, **fields: Any) -> HealthTopicPage:
    """`make_page` with the parser's real content hash."""
    built = make_page(slug, **fields)
    return dataclasses.replace(built, content_hash=content_hash(built))


def _link(section: str, position: int, title: str, url: str, *orgs: str) -> TopicLink:
    return TopicLink(
        section=section,
        section_id=None,
        position=position,
        title=title,
        url=url,
        organizations=list(orgs),
    )


ASTHMA_TEXT = "Asthma is a chronic disease that affects your airways."
ASTHMA_TEXT_NEW = (
    "Asthma is a long-term disease that inflames and narrows your airways. "
    "Call 911 if your lips turn <blue> & you cannot breathe."
)


def before_pages() -> list[HealthTopicPage]:
    base = make_page()
    return [
        page("asthma", last_updated=BEFORE_DAY, text=ASTHMA_TEXT),
        page(
            "copd",
            title="COPD",
            last_updated=BEFORE_DAY,
            text="COPD is a group of lung diseases.",
            links=[
                _link("Start Here", 0, "COPD basics", "https://example.org/copd/basics", "ALA"),
                _link("Start Here", 1, "Living with COPD", "https://example.org/copd/living"),
                _link("Start Here", 2, "COPD and exercise", "https://example.org/copd/exercise"),
                _link("Patient Handouts", 0, "Oxygen therapy", "https://example.org/oxygen", "NLM"),
            ],
            clinical_trials=[
                *base.clinical_trials,
                ClinicalTrial(
                    position=1,
                    title="ClinicalTrials.gov: COPD",
                    url="https://clinicaltrials.gov/search?cond=copd",
                    organizations=["National Institutes of Health"],
                    nih=True,
                ),
            ],
        ),
        page("diabetes", last_updated=BEFORE_DAY, text="Diabetes is a disease of blood sugar."),
        page("measles", last_updated=date(2023, 11, 2), text="Measles is an infectious disease."),
        page("hives", last_updated=date(2024, 1, 5), text="Hives are itchy welts."),
        page("anemia", last_updated=date(2024, 1, 2), text="Anemia is a lack of red cells."),
        page(
            "diabetes",
            language="es",
            last_updated=BEFORE_DAY,
            text="La diabetes es una enfermedad.",
        ),
    ]


def after_pages() -> list[HealthTopicPage]:
    before = {(p.language, p.slug): p for p in before_pages()}
    asthma = before[("en", "asthma")]
    start_here, what_is, inhalers = asthma.links
    copd = before[("en", "copd")]
    es_diabetes = before[("es", "diabetes")]
    return [
        page(
            "asthma",
            last_updated=date(2024, 3, 1),
            text=ASTHMA_TEXT_NEW,
            also_called=["Bronchial asthma", "Asthma attack"],
            last_reviewed=date(2024, 2, 28),
            primary_institute=Institute(
                name="National Institute of Allergy and Infectious Diseases",
                url="https://www.niaid.nih.gov/",
            ),
            related_topics=[
                RelatedTopic(title="Allergy", url=f"{ORIGIN}/allergy.html"),
                RelatedTopic(title="Asthma in Children", url=f"{ORIGIN}/asthmainchildren.html"),
            ],
            links=[
                dataclasses.replace(
                    what_is,
                    position=0,
                    title="What Is Asthma? (Video)",
                    organizations=["National Heart, Lung, and Blood Institute"],
                ),
                _link(
                    "Start Here",
                    1,
                    "Asthma Action Plan <PDF>",
                    "https://example.org/asthma-action-plan.pdf",
                    "American Lung Association",
                    "CDC",
                ),
                dataclasses.replace(inhalers, position=0),
                dataclasses.replace(start_here, section="Treatments and Therapies", position=1),
            ],
            clinical_trials=[
                *asthma.clinical_trials,
                ClinicalTrial(
                    position=1,
                    title="ClinicalTrials.gov: Asthma in Children",
                    url="https://clinicaltrials.gov/search?cond=asthma+children",
                    organizations=["National Institutes of Health"],
                    nih=True,
                ),
            ],
        ),
        page(
            "copd",
            title="COPD (Chronic Obstructive Pulmonary Disease)",
            last_updated=BEFORE_DAY,
            text="COPD is a group of lung diseases.",
            links=[
                dataclasses.replace(copd.links[2], position=0),
                dataclasses.replace(copd.links[0], position=1),
                dataclasses.replace(copd.links[1], position=2),
            ],
            clinical_trials=copd.clinical_trials[:1],
        ),
        page(
            "diabetes",
            last_updated=date(2024, 2, 20),
            text="Diabetes is a disease of blood sugar.",
            pmids=("39000001", "39000002"),
        ),
        page("flu", last_updated=date(2024, 3, 4), text="Flu is a contagious illness."),
        page(
            "hives",
            last_updated=date(2024, 1, 5),
            text="Hives are itchy welts.",
            pmids=("39000003",),
        ),
        page("anemia", last_updated=date(2024, 1, 2), text="Anemia is a lack of red cells."),
        dataclasses.replace(
            es_diabetes,
            summary_html="<p>La diabetes es una <strong>enfermedad</strong>.</p>"
            "<ul><li>Cough</li></ul>",
            content_hash=content_hash(
                dataclasses.replace(
                    es_diabetes,
                    summary_html="<p>La diabetes es una <strong>enfermedad</strong>.</p>"
                    "<ul><li>Cough</li></ul>",
                )
            ),
        ),
    ]


def build(root: Path) -> tuple[str, str]:
    """Commit the before and after runs to the archive at `root`; returns their ids."""
    with mock.patch.object(archive_factory, "new_run_id", _fixed_run_id):
        before = archive_factory.commit_run(root, at(BEFORE_DAY), before_pages())
        after = archive_factory.commit_run(
            root, at(AFTER_DAY), after_pages(), gone=[("en", "measles")]
        )
    assert (before, after) == (BEFORE_RUN, AFTER_RUN)
    return before, after
