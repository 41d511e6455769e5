"""Plan service tokens: where they come from and which ones are refused."""

from __future__ import annotations

import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.service.auth import load_tokens

from service_helpers import READ_TOKEN, WRITE_TOKEN


def test_group_writable_tokens_file_is_refused(tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text(f'read = ["{READ_TOKEN}"]\nwrite = ["{WRITE_TOKEN}"]\n')
    for mode in (0o620, 0o602, 0o666):
        path.chmod(mode)
        with pytest.raises(InputError, match="writable by group or others.*chmod 600"):
            load_tokens(path)
    path.chmod(0o644)  # readable by others: used, with a warning
    assert load_tokens(path).allows(WRITE_TOKEN, "write")


@pytest.mark.parametrize("token", ["a" * 40, "ab" * 20, "passwordpassword", "0123456"])
def test_low_entropy_token_is_refused(tmp_path, token):
    for environ in (
        {"CTRAFFIC_WRITE_TOKEN": token},
        {"CTRAFFIC_WRITE_TOKEN": WRITE_TOKEN, "CTRAFFIC_READ_TOKEN": token},
    ):
        with pytest.raises(
            InputError, match=r"at least 16 printable characters, at least 8 of them different"
        ):
            load_tokens(environ=environ)
    path = tmp_path / "tokens.toml"
    path.write_text(f'write = ["{WRITE_TOKEN}", "{token}"]\n')
    with pytest.raises(
        InputError, match=r"'write': token #2 \(\d+ characters, \d+ different\) is refused"
    ):
        load_tokens(path)
    assert load_tokens(
        environ={"CTRAFFIC_WRITE_TOKEN": "9f86d081884c7d659a2feaa0c55ad015"}
    ).write  # openssl rand -hex 16


def test_tokens_come_from_a_toml_file_or_the_environment(tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text(
        f'read = ["{READ_TOKEN}", "another-read-token-0123"]\nwrite = "{WRITE_TOKEN}"\n'
    )
    tokens = load_tokens(path)
    assert tokens.allows("another-read-token-0123", "read") and not tokens.allows(
        "another-read-token-0123", "write"
    )
    assert tokens.allows(WRITE_TOKEN, "read") and tokens.allows(WRITE_TOKEN, "write")
    assert not tokens.allows(WRITE_TOKEN[:-1], "write")
    assert load_tokens(environ={"CTRAFFIC_WRITE_TOKEN": WRITE_TOKEN}).allows(WRITE_TOKEN, "write")
    path.write_text('write = ["short"]\n')
    with pytest.raises(InputError, match="at least 16"):
        load_tokens(path)
    with pytest.raises(InputError, match="no write token"):
        load_tokens(environ={})
    path.write_text("write = [\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_tokens(path)
