"""Unit tests of deployment/model_promotion/promote.py, with a fake MLflow client."""

from types import SimpleNamespace

import pytest

from deployment.model_promotion.promote import (
    ALIAS,
    COPY,
    NOTHING,
    PROMOTED_FROM_TAG,
    plan,
    promote,
)

SOURCE = "staging.sch.m"
DEST = "prod.sch.m"


class FakeRegistry:
    """The MlflowClient methods promote() uses, over two in-memory registered models."""

    def __init__(self):
        self.models = {SOURCE: {}, DEST: {}}  # name -> {version: tags}
        self.aliases = {SOURCE: {}, DEST: {}}  # name -> {alias: version}
        self.calls = []

    def add(self, name, tags=None, alias=None):
        version = str(len(self.models[name]) + 1)
        self.models[name][version] = dict(tags or {})
        if alias:
            self.aliases[name][alias] = version
        return version

    def get_registered_model(self, name):
        return SimpleNamespace(name=name, aliases=dict(self.aliases[name]))

    def get_model_version(self, name, version):
        return SimpleNamespace(version=version, tags=dict(self.models[name][str(version)]))

    def search_model_versions(self, filter_string):
        name = filter_string.split("'")[1]
        return [SimpleNamespace(version=v, tags={}) for v in self.models[name]]

    def copy_model_version(self, src_model_uri, dst_name):
        self.calls.append(("copy", src_model_uri, dst_name))
        return SimpleNamespace(version=self.add(dst_name))

    def set_model_version_tag(self, name, version, key, value):
        self.models[name][str(version)][key] = value

    def set_registered_model_alias(self, name, alias, version):
        self.calls.append(("alias", name, alias, version))
        self.aliases[name][alias] = str(version)


def passed():
    return {"model_validation_status": "PASSED"}


def test_plan():
    assert plan(SOURCE, 3, "PASSED", {}, None).action == COPY
    assert plan(SOURCE, None, None, {}, None).action == NOTHING
    failed = plan(SOURCE, 3, "FAILED_DRY_RUN", {}, None)
    assert failed.action == NOTHING and "did not pass validation" in failed.reason
    assert not failed.ok
    assert plan(SOURCE, 3, None, {}, None).action == NOTHING
    copies = {1: f"{SOURCE}/2", 2: f"{SOURCE}/3", 3: None}
    assert plan(SOURCE, 3, "PASSED", copies, 2) == plan(SOURCE, 3, "PASSED", copies, 2)
    assert plan(SOURCE, 3, "PASSED", copies, 2).action == NOTHING
    again = plan(SOURCE, 2, "PASSED", copies, 2)  # staging went back to version 2
    assert (again.action, again.version) == (ALIAS, 1)


def test_first_promotion_copies_tags_and_aliases():
    registry = FakeRegistry()
    registry.add(SOURCE, passed())
    registry.add(SOURCE, passed(), alias="champion")
    result = promote(registry, SOURCE, DEST, "prod")
    assert result.action == COPY and result.version == 1
    assert registry.calls == [
        ("copy", f"models:/{SOURCE}/2", DEST),
        ("alias", DEST, "champion", "1"),
    ]
    assert registry.models[DEST]["1"] == {
        PROMOTED_FROM_TAG: f"{SOURCE}/2",
        "model_validation_status": "PASSED",
    }


def test_running_again_copies_nothing():
    registry = FakeRegistry()
    registry.add(SOURCE, passed(), alias="champion")
    promote(registry, SOURCE, DEST, "prod")
    registry.calls.clear()
    result = promote(registry, SOURCE, DEST, "prod")
    assert result.action == NOTHING and "already served" in result.reason and result.ok
    assert registry.calls == []


def test_a_new_staging_champion_is_copied_and_an_old_one_realiased():
    registry = FakeRegistry()
    registry.add(SOURCE, passed(), alias="champion")
    promote(registry, SOURCE, DEST, "prod")
    registry.add(SOURCE, passed(), alias="champion")
    assert promote(registry, SOURCE, DEST, "prod").version == 2
    registry.aliases[SOURCE]["champion"] = "1"  # staging rolled back by hand
    registry.calls.clear()
    result = promote(registry, SOURCE, DEST, "prod")
    assert (result.action, result.version) == (ALIAS, 1)
    assert registry.calls == [("alias", DEST, "champion", "1")]


def test_an_unvalidated_version_is_not_promoted():
    registry = FakeRegistry()
    registry.add(SOURCE, {"model_validation_status": "FAILED_DRY_RUN"}, alias="champion")
    result = promote(registry, SOURCE, DEST, "prod")
    assert result.action == NOTHING and registry.calls == []
    assert registry.models[DEST] == {}


def test_nothing_to_promote_before_staging_trained():
    result = promote(FakeRegistry(), SOURCE, DEST, "prod")
    assert result.action == NOTHING and "run the training job in staging" in result.reason
    assert not result.ok


@pytest.mark.parametrize("env", ["staging", "dev", "test"])
def test_only_promoted_environments(env):
    with pytest.raises(ValueError, match="trains its own model"):
        promote(FakeRegistry(), SOURCE, DEST, env)
    with pytest.raises(ValueError, match="unknown environment"):
        promote(FakeRegistry(), SOURCE, DEST, "qa")


def test_source_and_destination_must_differ():
    with pytest.raises(ValueError, match="nothing to promote"):
        promote(FakeRegistry(), DEST, DEST, "prod")
