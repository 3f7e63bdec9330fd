from __future__ import annotations

from pathlib import Path

import pytest

from shared.definitions import (
    MAX_DEFINITION_BYTES,
    DefinitionError,
    DefinitionProblem,
    load_definition,
)
from shared.errors import MilepostError
from tests.shared.definitions.models import GrowthPath, Playbook

FILE = "paths/merchant.yaml"
VALID = """\
name: merchant onboarding
stages:
  - name: activate
    nodes:
      - kind: wait
        name: first-listing
        due: P3D
      - kind: goto
        name: nudge
        goto: first-listing
"""


def _problems(text: str, model: type[GrowthPath] | type[Playbook] = GrowthPath) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(FILE, model, text=text)
    return [str(problem) for problem in caught.value.problems]


def test_a_valid_definition_loads() -> None:
    path = load_definition(FILE, GrowthPath, text=VALID)
    assert path.stages[0].nodes[1].name == "nudge"


def test_it_reads_the_file_and_names_it(tmp_path: Path) -> None:
    file = tmp_path / "merchant.yaml"
    file.write_text(VALID.replace("P3D", "P3X"))
    with pytest.raises(DefinitionError) as caught:
        load_definition(file, GrowthPath)
    assert caught.value.problems == (
        DefinitionProblem(
            str(file),
            7,
            14,
            "stages[0].nodes[0].due",
            "Input should be a valid ISO 8601 duration (got 'P3X')",
        ),
    )


def test_a_file_that_cannot_be_read_is_a_definition_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(DefinitionError, match=r"absent\.yaml: cannot read the file"):
        load_definition(missing, GrowthPath)


def test_a_syntax_error_names_its_line_and_column() -> None:
    text = "name: x\nstages:\n  - name: a\n    nodes: [1, 2\n  - name: b\n"
    with pytest.raises(DefinitionError) as caught:
        load_definition(FILE, GrowthPath, text=text)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column, problem.field) == (5, 9, "")
    assert problem.message == (
        "expected ',' or ']', but got ':' (while parsing a flow sequence on line 4)"
    )


def test_a_wrong_type_deep_in_a_list_points_at_the_value() -> None:
    text = VALID + "  - name: convert\n    nodes:\n      - {kind: wait, name: w2, due: 7}\n"
    assert _problems(text) == [
        f"{FILE}:13:37: stages[1].nodes[0].due: Input should be a valid string (got 7)"
    ]


def test_a_missing_key_points_at_its_mapping() -> None:
    text = VALID.replace("        goto: first-listing\n", "")
    assert _problems(text) == [f"{FILE}:8:9: stages[0].nodes[1].goto: Field required"]


def test_an_unknown_node_kind_points_at_the_item() -> None:
    text = VALID.replace("      - kind: goto\n", "      - kind: jump\n")
    (line,) = _problems(text)
    assert line.startswith(f"{FILE}:8:9: stages[0].nodes[1]: Input tag 'jump' found using 'kind'")


def test_an_extra_key_points_at_the_key() -> None:
    text = VALID.replace("        due: P3D\n", "        due: P3D\n        delay: 2\n")
    assert _problems(text) == [
        f"{FILE}:8:9: stages[0].nodes[0].delay: Extra inputs are not permitted"
    ]


def test_a_field_validator_error_keeps_its_message_and_shows_the_input() -> None:
    assert _problems(VALID.replace("P3D", "P3X")) == [
        f"{FILE}:7:14: stages[0].nodes[0].due: Input should be a valid ISO 8601 duration (got 'P3X')"
    ]


def test_a_model_validator_error_points_at_that_model() -> None:
    text = VALID.replace("name: nudge", "name: first-listing")
    assert _problems(text) == [f"{FILE}:3:5: stages[0]: node names must be unique within a stage"]


def test_a_cross_reference_problem_points_at_its_location() -> None:
    text = VALID.replace("goto: first-listing", "goto: nowhere")
    assert _problems(text) == [
        f"{FILE}:10:15: stages[0].nodes[1].goto: node 'nowhere' referenced by goto does not exist"
    ]


def test_a_bad_value_does_not_hide_the_checks_around_it() -> None:
    text = VALID.replace("goto: first-listing", "goto: nowhere") + "labels: {a: many}\n"
    assert _problems(text) == [
        f"{FILE}:10:15: stages[0].nodes[1].goto: node 'nowhere' referenced by goto does not exist",
        f"{FILE}:11:13: labels.a: Input should be a valid integer, unable to parse string as an "
        "integer (got 'many')",
    ]


def test_an_unknown_key_does_not_hide_the_checks_around_it() -> None:
    text = VALID.replace("goto: first-listing", "goto: nowhere") + "notes:\n  - {a: 1}\n"
    assert _problems(text) == [
        f"{FILE}:10:15: stages[0].nodes[1].goto: node 'nowhere' referenced by goto does not exist",
        f"{FILE}:11:1: notes: Extra inputs are not permitted",
    ]


def test_what_only_dropping_a_bad_value_causes_is_not_reported() -> None:
    # without its bad `due` the node misses a required key, and its model cannot be checked
    text = VALID.replace("P3D", "P3X").replace("goto: first-listing", "goto: nowhere")
    assert _problems(text) == [
        f"{FILE}:7:14: stages[0].nodes[0].due: Input should be a valid ISO 8601 duration (got 'P3X')"
    ]


def test_a_field_validator_can_report_an_item_using_the_context() -> None:
    text = "content:\n  - welcome\n  - nudge\n"
    with pytest.raises(DefinitionError) as caught:
        load_definition(FILE, Playbook, text=text, context={"content": {"welcome"}})
    assert str(caught.value) == f"{FILE}:3:5: content[1]: content 'nudge' is not in the library"
    assert load_definition(FILE, Playbook, text=text, context={"content": {"welcome", "nudge"}})


def test_a_bad_mapping_value_points_at_the_value_and_a_bad_key_at_the_key() -> None:
    text = VALID + "labels:\n  region: two\n  7: 1\n"
    assert _problems(text) == [
        f"{FILE}:12:11: labels.region: Input should be a valid integer, unable to parse string as an integer (got 'two')",
        f"{FILE}:13:3: labels[7]: Input should be a valid string (got 7)",
    ]


def test_a_union_tag_equal_to_a_key_is_not_mistaken_for_it() -> None:
    # The discriminator tag "goto" appears in pydantic's loc; the node also has a "goto" key.
    text = VALID.replace("        name: nudge\n", "        name: nudge\n        label: x\n")
    assert _problems(text) == [
        f"{FILE}:10:9: stages[0].nodes[1].label: Extra inputs are not permitted"
    ]
    missing_name = VALID.replace("        name: nudge\n", "")
    assert _problems(missing_name) == [f"{FILE}:8:9: stages[0].nodes[1].name: Field required"]


def test_an_empty_document_is_rejected_without_a_line() -> None:
    assert _problems("# nothing yet\n") == [
        f"{FILE}: Input should be a valid dictionary or instance of GrowthPath (got None)"
    ]


def test_problems_are_sorted_by_line_and_rendered_one_per_line() -> None:
    text = """\
stages:
  - name: activate
    nodes:
      - {kind: wait, name: a, due: P1X}
      - {kind: wait, name: b}
name: 3
"""
    with pytest.raises(DefinitionError) as caught:
        load_definition(FILE, GrowthPath, text=text)
    assert isinstance(caught.value, MilepostError)
    assert str(caught.value) == "\n".join(
        [
            f"{FILE}:4:36: stages[0].nodes[0].due: Input should be a valid ISO 8601 duration (got 'P1X')",
            f"{FILE}:5:9: stages[0].nodes[1].due: Field required",
            f"{FILE}:6:7: name: Input should be a valid string (got 3)",
        ]
    )


def test_duplicate_keys_are_each_reported_with_their_lines() -> None:
    text = (
        VALID.replace("        due: P3D\n", "        due: P3D\n        name: again\n") + "name: x\n"
    )
    assert _problems(text) == [
        f"{FILE}:8:9: stages[0].nodes[0].name: duplicate key 'name' (first on line 6)",
        f"{FILE}:12:1: name: duplicate key 'name' (first on line 1)",
    ]


def test_merge_keys_and_anchors_are_supported() -> None:
    text = """\
name: x
stages:
  - name: a
    nodes:
      - &wait {kind: wait, name: w, due: P1D}
      - <<: *wait
        name: w2
"""
    path = load_definition(FILE, GrowthPath, text=text)
    assert [node.name for node in path.stages[0].nodes] == ["w", "w2"]


def test_only_safe_tags_are_accepted() -> None:
    assert _problems("name: !!python/object/apply:os.system [echo]\nstages: []\n") == [
        f"{FILE}:1:7: the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
    ]
    assert _problems("name: !!python/name:os.system ''\nstages: []\n")[0].startswith(
        f"{FILE}:1:7: could not determine a constructor"
    )


def test_recursive_aliases_are_rejected() -> None:
    assert _problems("name: &a [*a]\nstages: []\n") == [
        f"{FILE}:1:7: an alias refers to a value that contains it"
    ]


def test_a_second_document_is_rejected() -> None:
    assert _problems(VALID + "---\nname: y\n") == [
        f"{FILE}:11:1: expected a single document in the stream but found another document"
    ]


def test_documents_over_the_size_limit_are_rejected(tmp_path: Path) -> None:
    text = VALID + "#" * (MAX_DEFINITION_BYTES - len(VALID)) + "\n"
    limit = f"the document is larger than the limit of {MAX_DEFINITION_BYTES} bytes (1 MiB)"
    assert _problems(text) == [f"{FILE}: {limit}"]
    file = tmp_path / "big.yaml"
    file.write_text(text)
    with pytest.raises(DefinitionError, match=r"big\.yaml: the document is larger than the limit"):
        load_definition(file, GrowthPath)
    assert load_definition(FILE, GrowthPath, text=text[: MAX_DEFINITION_BYTES - 1] + "\n")


def test_non_utf8_files_name_the_line(tmp_path: Path) -> None:
    file = tmp_path / "latin.yaml"
    file.write_bytes(b"name: x\nstages: []\n# caf\xe9\n")
    with pytest.raises(DefinitionError) as caught:
        load_definition(file, GrowthPath)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (3, 6)
    assert problem.message.startswith("not UTF-8 text")


def test_alias_expansion_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.definitions.document.MAX_DEFINITION_VALUES", 100)
    # the 101st value is an alias copy; it is reported where its anchor defines it
    laughs = "a: &a [x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n"
    assert _problems(laughs) == [f"{FILE}:1:20: more than 100 values after expanding aliases"]
