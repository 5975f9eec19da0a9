"""Names that look alike are one name to a policy: a request for "Champion", "ｃｈａｍｐｉｏｎ" or "CHAMPION"
meets the gates of the protected @champion; a name padded with whitespace or carrying an invisible
character is refused with a message, never quietly cleaned."""

import pytest

from governance.errors import InvalidInput
from governance.workflow import services as workflow
from governance.workflow.policies import canonical_name, is_production_like, target_alias_problem


@pytest.mark.parametrize("spelling", ["champion", "Champion", "CHAMPION", "ｃｈａｍｐｉｏｎ"])
def test_spellings_of_a_protected_alias_are_protected(settings, spelling):
    settings.PROTECTED_ALIASES = ["champion"]
    assert canonical_name(spelling) == "champion"
    assert is_production_like(target_alias=spelling)


def test_other_aliases_and_stages(settings):
    settings.PROTECTED_ALIASES = ["champion"]
    assert not is_production_like(target_alias="challenger")
    assert is_production_like(target_stage="Production")
    assert not is_production_like(target_stage="Staging")


@pytest.mark.parametrize("alias,says", [
    ("champion ", "contains whitespace"),
    (" champion", "contains whitespace"),
    ("champ ion", "contains whitespace"),
    ("champion\u200b", "invisible character (U+200B)"),
    ("\u2060champion", "invisible character (U+2060)"),
    ("latest", "not a valid alias"),
    ("LATEST", "not a valid alias"),
    ("v3", "not a valid alias"),
])
def test_confusable_or_reserved_aliases_are_refused_with_a_reason(alias, says):
    assert says in target_alias_problem(alias)


@pytest.mark.django_db
@pytest.mark.mlflow
def test_a_request_for_Champion_meets_the_champion_gates(settings, promo, scientist):
    settings.PROTECTED_ALIASES = ["champion"]
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="Champion", justification="j")
    gates = {g["gate"] for g in req.gate_results}
    assert "tag:validation_status" in gates  # the protected target's required tag applies


@pytest.mark.django_db
@pytest.mark.mlflow
@pytest.mark.parametrize("alias", ["champion ", "champion\u200b"])
def test_the_service_refuses_a_padded_or_invisible_alias(promo, scientist, alias):
    with pytest.raises(InvalidInput, match="whitespace|invisible"):
        workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2, target_alias=alias,
                                          justification="j")


@pytest.mark.django_db
@pytest.mark.mlflow
def test_two_spellings_of_one_alias_cannot_both_be_open(promo, scientist):
    from governance.errors import Conflict

    workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2, target_alias="challenger",
                                      justification="j")
    with pytest.raises(Conflict):
        workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=3,
                                          target_alias="Challenger", justification="j")
