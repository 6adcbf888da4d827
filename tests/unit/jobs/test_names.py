"""Every op id Nosana allows maps to a distinct name that Docker and the file system take."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from daemon.jobs.names import op_key

# Docker's own rule for container and volume names, and one path component of ext4.
DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")

# Op ids as Nosana allows them (no space), mixed with ids that look like keys already.
op_ids = st.text().filter(lambda t: " " not in t) | st.from_regex(
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,70}(_[0-9a-f]{16})?", fullmatch=True
)


def is_safe(key: str) -> bool:
    return (
        DOCKER_NAME.fullmatch(f"nosana-job-{key}") is not None
        and key not in ("", ".", "..")
        and "/" not in key
        and len(key.encode()) <= 64
    )


@given(op_ids)
@example("")
@example("..")
@example("gpt-oss:120b")
@example("\ud800")  # a lone surrogate: JSON can carry one
def test_every_key_is_safe_and_stable(op_id: str) -> None:
    key = op_key(op_id)
    assert is_safe(key), key
    assert op_key(op_id) == key


@given(st.lists(op_ids, unique=True, max_size=30))
def test_keys_are_injective(ids: list[str]) -> None:
    keys = [op_key(i) for i in ids]
    assert len(set(keys)) == len(keys)


@given(op_ids)
def test_a_key_never_collides_with_an_id_spelled_like_it(op_id: str) -> None:
    key = op_key(op_id)
    if key != op_id:
        assert op_key(key) != key


def test_safe_ids_are_their_own_keys_and_others_keep_a_readable_prefix() -> None:
    assert op_key("server") == "server"
    assert op_key("Qwen3-5-27b") == "Qwen3-5-27b"
    assert re.fullmatch(r"gpt-oss_120b_[0-9a-f]{16}", op_key("gpt-oss:120b"))
    assert re.fullmatch(r"org_model_[0-9a-f]{16}", op_key("org/model"))
    assert re.fullmatch(r"op_[0-9a-f]{16}", op_key(".."))
    assert re.fullmatch(r"op_[0-9a-f]{16}", op_key("模型"))
    assert op_key("模型") != op_key("模式")
    assert op_key("x" * 63) == "x" * 63
    assert op_key("x" * 64).startswith("x" * 40 + "_")
    assert op_key("A") != op_key("a")
