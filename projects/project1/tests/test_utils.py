"""Unit tests of utils.py: environments, stages, widget parsing, git tags."""

import pytest

import utils


def test_stage_per_environment():
    assert utils.model_stage_for_env("prod") == "Production"
    for env in ("dev", "staging", "test"):
        assert utils.model_stage_for_env(env) == "Staging"


def test_unknown_environment_is_refused():
    with pytest.raises(ValueError, match="unknown environment 'production'"):
        utils.model_stage_for_env("production")
    with pytest.raises(ValueError, match="unknown environment"):
        utils.default_model_name("qa")


def test_default_names_follow_databricks_yml():
    dev = "dev-project1-model"
    prod = "prod-project1-model"
    assert utils.default_model_name("dev") == dev
    assert utils.default_model_name("prod") == prod
    experiment = "/Users/ann@example.com/staging-project1-experiment"
    assert utils.default_experiment_name("ann@example.com", "staging") == experiment


def test_project_constants():
    assert utils.PROJECT_NAME == "project1"
    assert utils.USES_UNITY_CATALOG is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), (" yes ", True), ("1", True), ("false", False), ("no", False)],
)
def test_parse_bool(text, expected):
    assert utils.parse_bool(text) is expected


def test_parse_bool_refuses_other_text():
    with pytest.raises(ValueError, match="expected true or false"):
        utils.parse_bool("maybe")


def test_git_source_info_becomes_tags():
    text = "url:https://github.com/acme/ml.git;branch:main;commit:0123abc"
    assert utils.parse_git_source_info(text) == {
        "git_url": "https://github.com/acme/ml.git",
        "git_branch": "main",
        "git_commit": "0123abc",
    }


def test_git_source_info_drops_empty_parts():
    assert utils.parse_git_source_info("url:; branch:main; commit:") == {"git_branch": "main"}
    assert utils.parse_git_source_info("") == {}


class Version:
    def __init__(self, version):
        self.version = version


def test_latest_version():
    assert utils.latest_version([Version("2"), Version("10"), Version("9")]) == 10
    with pytest.raises(ValueError, match="no versions"):
        utils.latest_version([])
