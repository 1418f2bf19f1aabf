from __future__ import annotations

from pathlib import Path

import pytest

from monostack.config import load_config, normalize_host, parse_config
from monostack.errors import UserError
from tests.conftest import REPO_ROOT

VALID = {
    "cloud": "aws",
    "cicd_platform": "azure_devops",
    "workspaces": {"staging": "https://s.example.com", "prod": "https://p.example.com"},
}


def test_shipped_config_loads():
    config = load_config(REPO_ROOT)
    assert config.cloud in ("azure", "aws", "gcp")
    assert config.workspaces.test == config.workspaces.staging
    assert config.as_context()["workspaces"]["test"] == config.workspaces.staging


def test_defaults_fill_optional_keys():
    config = parse_config(VALID)
    assert (config.default_branch, config.release_branch) == ("main", "release")
    assert config.catalogs.prod == "prod"
    assert config.unity_catalog_read_user_group == "account users"
    assert config.workspaces.dev is None


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "https://adb-1.11.azuredatabricks.net/?o=123#job/1",
            "https://adb-1.11.azuredatabricks.net",
        ),
        ("https://x.cloud.databricks.com/", "https://x.cloud.databricks.com"),
        ("  https://x.gcp.databricks.com:8443/path?q=1 ", "https://x.gcp.databricks.com:8443"),
    ],
)
def test_hosts_are_normalised(url, expected):
    assert normalize_host(url, "where") == expected
    data = {**VALID, "workspaces": {"staging": url, "prod": url}}
    assert parse_config(data).workspaces.prod == expected


@pytest.mark.parametrize(
    "change, needles",
    [
        ({"colour": "blue"}, ["unknown key 'colour'", "allowed keys"]),
        ({"cloud": "mars"}, ["cloud", "'mars'", "azure, aws, gcp"]),
        ({"cicd_platform": "gitlab_ci"}, ["cicd_platform", "'gitlab_ci'", "gitlab"]),
        (
            {"workspaces": {"staging": "http://s.example.com", "prod": "https://p"}},
            ["workspaces.staging", "https://"],
        ),
        ({"workspaces": {"staging": "https://s.example.com"}}, ["workspaces.prod", "missing"]),
        (
            {"workspaces": {"staging": "https://s", "prod": "https://p", "qa": "https://q"}},
            ["workspaces", "unknown key 'qa'"],
        ),
        ({"workspaces": ["https://s"]}, ["workspaces", "mapping"]),
        ({"default_branch": 3}, ["default_branch", "string"]),
        ({"catalogs": {"dev": "x"}}, ["catalogs", "unknown key 'dev'"]),
        ({"read_user_group": ""}, ["read_user_group"]),
        # urllib raises ValueError on these; they must still be one clear line
        ({"workspaces": {"staging": "https://h:abc", "prod": "https://p"}}, ["'https://h:abc'"]),
        ({"workspaces": {"staging": "https://h:99999", "prod": "https://p"}}, ["99999"]),
        ({"workspaces": {"staging": "https://[::1", "prod": "https://p"}}, ["https://"]),
    ],
)
def test_bad_values_name_file_key_and_choices(change, needles):
    with pytest.raises(UserError) as info:
        parse_config({**VALID, **change}, "monorepo.yml")
    message = str(info.value)
    assert message.startswith("monorepo.yml")
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_missing_required_key():
    with pytest.raises(UserError, match="missing required key 'cloud'"):
        parse_config({k: v for k, v in VALID.items() if k != "cloud"})


def test_not_a_mapping():
    with pytest.raises(UserError, match="expected a mapping"):
        parse_config(["cloud"])


def test_invalid_yaml_names_line(tmp_path: Path):
    (tmp_path / "monorepo.yml").write_text("cloud: aws\nworkspaces: [\n")
    with pytest.raises(UserError, match=r"monorepo\.yml:\d+: invalid YAML"):
        load_config(tmp_path)


def test_duplicate_key_is_an_error(tmp_path: Path):
    (tmp_path / "monorepo.yml").write_text("cloud: aws\ncloud: gcp\n")
    with pytest.raises(UserError, match="monorepo.yml:2: invalid YAML: duplicate key 'cloud'"):
        load_config(tmp_path)


def test_missing_file_says_where_to_run(tmp_path: Path):
    with pytest.raises(UserError, match="run monostack from the monorepo root"):
        load_config(tmp_path)


def test_ipv6_host_keeps_its_brackets():
    assert normalize_host("https://[::1]:8443/x", "w") == "https://[::1]:8443"


def test_non_utf8_file_is_one_line(tmp_path: Path):
    (tmp_path / "monorepo.yml").write_bytes(b"cloud: \xff\xfe\n")
    with pytest.raises(UserError, match=r"monorepo\.yml: not UTF-8 text .*save it as UTF-8"):
        load_config(tmp_path)
