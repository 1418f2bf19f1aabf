"""Unit tests of deployment/model_deployment/deploy.py, with a fake MLflow client."""

from types import SimpleNamespace

import pytest

from deployment.model_deployment.deploy import decide, deploy, deployed_version


class FakeClient:
    """The MlflowClient methods deploy() uses, over an in-memory registry."""

    def __init__(self, tags=None, aliases=None, stages=None):
        self.tags = tags or {}  # version -> {tag: value}
        self.aliases = aliases or {}  # alias -> version
        self.stages = stages or {}  # version -> stage
        self.calls = []

    def get_model_version(self, name, version):
        own = [alias for alias, v in self.aliases.items() if v == version]
        return SimpleNamespace(version=version, tags=self.tags.get(version, {}), aliases=own)

    def get_registered_model(self, name):
        return SimpleNamespace(name=name, aliases=dict(self.aliases))

    def get_latest_versions(self, name, stages):
        return [SimpleNamespace(version=v) for v, s in self.stages.items() if s in stages]

    def set_registered_model_alias(self, name, alias, version):
        self.calls.append(("set_alias", alias, version))
        self.aliases[alias] = version

    def delete_registered_model_alias(self, name, alias):
        self.calls.append(("delete_alias", alias))
        del self.aliases[alias]

    def transition_model_version_stage(self, name, version, stage, archive_existing_versions):
        self.calls.append(("stage", version, stage, archive_existing_versions))
        if archive_existing_versions:
            for other, current in self.stages.items():
                if current == stage:
                    self.stages[other] = "Archived"
        self.stages[version] = stage


def test_decide():
    assert decide(1, None, None).promote
    assert decide(3, "PASSED", 2).promote
    assert decide(3, "FAILED_DRY_RUN", 2).promote
    assert not decide(3, "FAILED", None).promote
    assert not decide(2, "PASSED", 2).promote
    older = decide(1, "PASSED", 2)
    assert not older.promote and "older than the deployed version 2" in older.reason


def test_unity_catalog_moves_the_champion_alias():
    client = FakeClient(aliases={"champion": "1", "challenger": "2"})
    decision = deploy(client, "cat.sch.m", "2", "prod", uc=True)
    assert decision.promote
    assert client.aliases == {"champion": "2"}
    assert client.calls == [("set_alias", "champion", "2"), ("delete_alias", "challenger")]


def test_unity_catalog_first_deployment():
    client = FakeClient()
    assert deployed_version(client, "cat.sch.m", "dev", uc=True) is None
    assert deploy(client, "cat.sch.m", 1, "dev", uc=True).promote
    assert deployed_version(client, "cat.sch.m", "dev", uc=True) == 1


def test_failed_validation_is_not_deployed():
    tags = {"2": {"model_validation_status": "FAILED"}}
    client = FakeClient(tags=tags, aliases={"champion": "1"})
    decision = deploy(client, "m", "2", "staging", uc=True)
    assert not decision.promote and "failed validation" in decision.reason
    assert client.calls == [] and client.aliases == {"champion": "1"}


@pytest.mark.parametrize(("env", "stage"), [("prod", "Production"), ("staging", "Staging")])
def test_workspace_registry_moves_the_stage(env, stage):
    client = FakeClient(stages={"1": stage})
    assert deployed_version(client, "m", env, uc=False) == 1
    assert deploy(client, "m", "2", env, uc=False).promote
    assert client.calls == [("stage", "2", stage, True)]
    assert client.stages == {"1": "Archived", "2": stage}
    assert deployed_version(client, "m", env, uc=False) == 2


def test_redeploying_is_a_no_op():
    client = FakeClient(stages={"4": "Production"})
    decision = deploy(client, "m", "4", "prod", uc=False)
    assert not decision.promote and "already deployed" in decision.reason
    assert client.calls == []


def test_unknown_environment_is_refused():
    with pytest.raises(ValueError, match="unknown environment"):
        deploy(FakeClient(), "m", "1", "production", uc=False)
