"""Finding 8: the pseudonymisation key is a Secret of its own, not ordinary configuration."""

from __future__ import annotations

from blocks.platform import PSEUDONYM_SECRET_BLOCK, RiskopsPlatform


def test_the_platform_block_holds_no_key_only_the_name_of_its_secret_block():
    fields = RiskopsPlatform.model_fields
    assert not {name for name in fields if "key" in name and "public" not in name}
    assert fields["pseudonym_secret_block"].default == PSEUDONYM_SECRET_BLOCK
    block = RiskopsPlatform(database_url="sqlite:///x.db", lake_root="/tmp/lake")
    dumped = block.model_dump_json()
    assert "pseudonym_key" not in dumped and PSEUDONYM_SECRET_BLOCK in dumped
