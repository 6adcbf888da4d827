"""The daemon accepts what Nosana's validator accepts and refuses what it refuses (SPEC: Jobs),
on every document of the corpus; the only exceptions are the deliberate ones, listed by name
in differences.py, where the daemon refuses with an error at the listed place."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from daemon.errors import FieldError, InvalidInput
from daemon.jobs.spec import parse_job
from tests.oracle import VERSION, NosanaValidator, Verdict, install_dir

from .corpus import corpus
from .differences import DELIBERATE
from .documents import Case, templates

CORPUS = corpus()


@pytest.fixture(scope="session")
def nosana(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NosanaValidator]:
    with NosanaValidator(tmp_path_factory.mktemp("nosana") / "validator.log") as validator:
        yield validator


def daemon_verdict(document: Any) -> list[FieldError] | None:
    """None when the daemon accepts the document, else its errors."""
    try:
        parse_job(document)
    except InvalidInput as exc:
        return list(exc.errors)
    return None


def _say(case: Case, nosana: Verdict, errors: list[FieldError] | None) -> str:
    ours = "accepts" if errors is None else f"refuses: {[(e.loc, e.msg) for e in errors]}"
    theirs = "accepts" if nosana.valid else f"refuses: {nosana.threw or nosana.errors}"
    return f"{case.name}\n  Nosana {theirs}\n  daemon {ours}\n  document {case.document!r:.600}"


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_the_daemon_gives_nosanas_verdict(case: Case, nosana: NosanaValidator) -> None:
    theirs = nosana.check(case.document)
    errors = daemon_verdict(case.document)
    deliberate = DELIBERATE.get(case.name)
    if deliberate is None:
        assert (errors is None) == theirs.valid, _say(case, theirs, errors)
    else:
        assert theirs.valid, (
            f"listed as deliberate, but Nosana refuses it too\n{_say(case, theirs, errors)}"
        )
        assert errors is not None, (
            f"listed as deliberate, but the daemon accepts it\n{_say(case, theirs, errors)}"
        )
        assert deliberate.loc in {e.loc for e in errors}, _say(case, theirs, errors)
    if errors is not None and isinstance(case.document, dict):
        assert all(e.loc and e.msg for e in errors), f"an error without its place: {errors}"


def test_every_listed_difference_names_a_case() -> None:
    names = {case.name for case in CORPUS}
    assert set(DELIBERATE) <= names, sorted(set(DELIBERATE) - names)


def test_the_corpus_holds_every_template_and_nosana_takes_each(nosana: NosanaValidator) -> None:
    found = templates()
    assert len(found) == 58
    refused = [case.name for case in found if not nosana.check(case.document).valid]
    assert not refused, refused


def test_the_oracle_is_the_pinned_version(nosana: NosanaValidator) -> None:
    package = install_dir() / "node_modules" / "@nosana" / "types" / "package.json"
    assert json.loads(package.read_text())["version"] == VERSION == "2.1.6"
