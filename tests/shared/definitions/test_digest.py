from __future__ import annotations

import pytest

from shared.definitions import DefinitionError, definition_digest

TEXT = """\
# merchant onboarding
name: merchant onboarding
stages:
  - name: activate
    nodes: [{kind: wait, name: w, due: P3D}]
"""


def test_layout_comments_quoting_and_key_order_do_not_change_the_digest() -> None:
    same = """\
stages:
- nodes:
  - due: "P3D"
    kind: 'wait'
    name: w     # the first check
  name: activate
name:   "merchant onboarding"
"""
    assert definition_digest(TEXT) == definition_digest(same)


def test_any_value_change_changes_the_digest() -> None:
    digest = definition_digest(TEXT)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert definition_digest(TEXT.replace("P3D", "P4D")) != digest
    assert definition_digest(TEXT.replace("due: P3D", "due: 3")) != digest
    assert definition_digest(TEXT + "extra: null\n") != digest


def test_the_digest_is_pinned() -> None:
    # sha256 of {"a":[1,"2",true,null,"2026-01-01"],"b":{"1":"x"}}
    text = "b: {1: x}\na: [1, '2', true, ~, 2026-01-01]\n"
    assert definition_digest(text) == (
        "92da1301de7f39743bd2aab42e7c9ca48a230c455e666ab1c38e3bca6aa8146d"
    )


def test_text_that_does_not_parse_has_no_digest() -> None:
    with pytest.raises(DefinitionError, match=r"^v2\.yaml:2:1: a: duplicate key 'a'"):
        definition_digest("a: 1\na: 2\n", source="v2.yaml")
