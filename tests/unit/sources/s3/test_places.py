"""Where an S3 resource points and who signs for it (no network)."""

from __future__ import annotations

import pytest

from daemon.errors import InvalidInput
from daemon.resources import S3Location, S3Resource, parse_resource
from daemon.settings import S3Settings, load_settings
from daemon.sources.s3.places import (
    ANONYMOUS,
    AWS_CHAIN,
    OPERATOR_KEYS,
    RESOURCE_IAM,
    Place,
    credentials,
    locate,
)

IAM = {"REGION": "eu-west-1", "ACCESS_KEY_ID": "AKIAJOB", "SECRET_ACCESS_KEY": "job-secret"}


def settings(**env: str) -> S3Settings:
    values = {"HOME": "/tmp", **{f"NOSANA_CACHE_S3__{k.upper()}": v for k, v in env.items()}}
    return load_settings(None, values).s3


def place(url: str, s3: S3Settings, bucket: str | None = None) -> Place:
    return locate(S3Location(url=url), bucket, s3)


def test_s3_urls_without_an_endpoint_go_to_aws_which_botocore_picks() -> None:
    found = place("s3://models/llm/7b/", settings(region="eu-west-1"))
    assert (found.endpoint, found.bucket, found.prefix) == (
        "https://s3.eu-west-1.amazonaws.com",
        "models",
        "llm/7b/",
    )
    assert found.aws
    assert found.trusted
    assert place("s3://models", settings()).endpoint == "https://s3.amazonaws.com"


def test_s3_urls_with_an_endpoint_are_trusted_and_not_aws() -> None:
    found = place("s3://models/x", settings(endpoint_url="http://minio.lan:9000"))
    assert (found.endpoint, found.aws, found.trusted) == ("http://minio.lan:9000", False, True)


def test_https_urls_are_path_style_untrusted_unless_the_operators_endpoint() -> None:
    s3 = settings(endpoint_url="http://minio.lan:9000")
    job = place("https://other.example/bkt/a%20b/c", s3)
    assert (job.endpoint, job.bucket, job.prefix, job.trusted) == (
        "https://other.example",
        "bkt",
        "a b/c/",
        False,
    )
    assert place("http://minio.lan:9000/bkt/x", s3).trusted
    assert job.describe() == "s3://bkt/a b/c/ at https://other.example"


def test_a_bucket_field_names_the_bucket_and_the_whole_path_is_the_prefix() -> None:
    found = place("https://cdn.example/llm/7b", settings(), bucket="weights")
    assert (found.endpoint, found.bucket, found.prefix) == (
        "https://cdn.example",
        "weights",
        "llm/7b/",
    )


@pytest.mark.parametrize("url", ["s3://", "s3:///x", "https://host.example/", "ftp://h/b/p"])
def test_urls_without_a_bucket_or_of_another_scheme_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"S3 URLs|no bucket"):
        place(url, settings())


def resource(**fields: object) -> S3Resource:
    parsed = parse_resource({"type": "S3", **fields})
    assert isinstance(parsed, S3Resource)
    return parsed


def test_who_signs_iam_first_then_the_operator_then_the_chain() -> None:
    operator = settings(access_key_id="AKIAOP", secret_access_key="op-secret", region="us-west-2")
    trusted = [place("s3://b/p", operator)]
    with_iam = credentials(resource(url="s3://b/p", IAM=IAM).IAM, trusted, operator)
    assert (with_iam.access_key_id, with_iam.region, with_iam.origin) == (
        "AKIAJOB",
        "eu-west-1",
        RESOURCE_IAM,
    )
    keys = credentials(None, trusted, operator)
    assert (keys.access_key_id, keys.region, keys.origin) == ("AKIAOP", "us-west-2", OPERATOR_KEYS)
    assert credentials(None, [place("s3://b/p", settings())], settings()).origin == AWS_CHAIN


def test_operator_keys_never_go_to_a_host_a_job_chose() -> None:
    operator = settings(access_key_id="AKIAOP", secret_access_key="op-secret")
    places = [place("s3://b/p", operator), place("https://evil.example/b/p", operator)]
    who = credentials(None, places, operator)
    assert (who.access_key_id, who.origin, who.signs) == (None, ANONYMOUS, False)


def test_credentials_never_show_their_secret() -> None:
    operator = settings(access_key_id="AKIAOP", secret_access_key="op-secret")
    who = credentials(None, [place("s3://b/p", operator)], operator)
    assert "op-secret" not in repr(who)
    assert who.describe() == "access key AKIAOP (s3.access_key_id)"
