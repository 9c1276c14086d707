"""A run folder's own files are read strictly: a damaged one is one clear error."""

import pytest

from boresnet.study.run_folder import RunFolder, RunFolderError


@pytest.fixture
def folder(tmp_path):
    """A run folder with a valid config and an empty journal."""
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_config_data({"search": {"budget": 2}})
    run.journal.write_text("")
    return run


def test_a_valid_config_reads_back(folder):
    assert folder.read_config_data() == {"search": {"budget": 2}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("search: [budget: 2\n", "is not valid YAML"),
        ("- search\n- model\n", "not a mapping"),
        ("", "not a mapping"),
        ("!!python/object/apply:os.system ['true']\n", "is not valid YAML"),
    ],
)
def test_a_damaged_config_is_one_error_naming_the_file(folder, text, message):
    folder.config.write_text(text)
    with pytest.raises(RunFolderError, match=message) as err:
        folder.read_config_data()
    assert "config.yaml" in str(err.value)


def test_a_damaged_summary_is_one_error_and_a_missing_one_none(folder):
    assert folder.read_summary() is None
    folder.write_summary({"best": {"lr": 0.5}})
    assert folder.read_summary() == {"best": {"lr": 0.5}}
    for text, message in (("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object")):
        folder.summary.write_text(text)
        with pytest.raises(RunFolderError, match=message):
            folder.read_summary()


def test_an_unreadable_origin_is_no_origin(folder):
    assert folder.read_origin() is None
    folder.write_origin({"config_sha": "abc"})
    assert folder.read_origin() == {"config_sha": "abc"}
    folder.write_origin({"config_sha": "changed"})  # written once: the first stays
    assert folder.read_origin() == {"config_sha": "abc"}
    for text in ("key: [unclosed\n", "- a list\n", "\xff\xfe"):
        folder.origin.write_bytes(text.encode("latin-1"))
        assert folder.read_origin() is None
