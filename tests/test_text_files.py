"""Files as Windows editors save them: `project.toml` from Notepad (UTF-8 BOM, CRLF), captions with a BOM
and CRLF line ends. They mean what they say, and a file we cannot read says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import ProjectConfig, dumps_project, load_project
from studio.errors import ConfigError
from studio.textfile import NotUtf8Error, decode_caption, decode_text

BOM = b"\xef\xbb\xbf"


def _notepad(text: str) -> bytes:
    return BOM + text.replace("\n", "\r\n").encode("utf-8")


def _cfg() -> ProjectConfig:
    return (ProjectConfig().with_section("output", name="my-cat", trigger_phrase="sks cat")
            .with_section("network", rank=8).with_section("sampling", prompts=("a cat", "a dog")))


def test_a_project_saved_by_notepad_loads_the_same(tmp_path):
    project = tmp_path / "project.toml"
    project.write_bytes(_notepad(dumps_project(_cfg())))
    assert project.read_bytes().startswith(BOM) and b"\r\n" in project.read_bytes()
    assert load_project(project) == _cfg()


def test_crlf_inside_a_multi_line_string_is_a_plain_line_break(tmp_path):
    project = tmp_path / "project.toml"
    project.write_bytes(_notepad('[output]\ntrigger_phrase = """sks\ncat"""\n'))
    assert load_project(project).output.trigger_phrase == "sks\ncat"


def test_a_utf16_project_says_so_and_how_to_fix_it(tmp_path):
    project = tmp_path / "project.toml"
    project.write_bytes(dumps_project(_cfg()).encode("utf-16"))  # Notepad's "Unicode"
    with pytest.raises(ConfigError) as info:
        load_project(project)
    assert str(info.value) == (f"{project}: not a text file LoRA Studio can read: it is saved as UTF-16 "
                               "(\"Unicode\"); save it as UTF-8")
    assert "UTF-8" in info.value.hint


def test_bytes_that_are_not_utf8_are_placed():
    with pytest.raises(NotUtf8Error, match=r"not UTF-8 text \(byte 11 on line 2\)"):
        decode_text(b"[output]\nna\xe9me = 1\n")
    assert decode_text(BOM + b"a\r\nb\rc\n") == "a\nb\nc\n"


def test_settings_sent_to_the_worker_may_carry_a_bom():
    from studio.config import loads_project

    assert loads_project("\ufeff" + dumps_project(_cfg()).replace("\n", "\r\n"), "the settings") == _cfg()


def test_app_settings_edited_in_notepad_are_read(tmp_path):
    from ui.settings import load_settings

    path = tmp_path / "settings.toml"
    path.write_bytes(_notepad('theme = "dark"\nshow_welcome = false\n'))
    settings = load_settings(path)
    assert settings.theme == "dark" and settings.show_welcome is False


@pytest.mark.parametrize("raw, caption", [
    (BOM + b"bomtag, red", "bomtag, red"),
    (b"1girl, smile\r\nblue sky, outdoors\r\n", "1girl, smile, blue sky, outdoors"),
    (b"1girl,\r\nsmile,\r\n\r\n", "1girl, smile,"),
    (b"a photo of a cat\ron a sofa", "a photo of a cat, on a sofa"),
    (BOM + b"caf\xe9", "caf\xe9"),  # Latin-1 after a BOM: the BOM is not read as "ï»¿"
    (b"  one line, as always  \n", "one line, as always"),
])
def test_captions_lose_the_bom_and_line_breaks_separate_tags(raw, caption):
    assert decode_caption(raw) == caption


def test_every_caption_reader_agrees_on_a_windows_sidecar(tmp_path):
    from studio.dataset.captions import CaptionStore
    from studio.dataset.scan import read_caption, scan_folders
    from studio.dataset.tags import split_tags

    folder = tmp_path / "images"
    folder.mkdir()
    image = folder / "cat.png"
    image.write_bytes(b"png")
    image.with_suffix(".txt").write_bytes(BOM + b"bomtag, red hair\r\nblue sky\r\n")
    expected = "bomtag, red hair, blue sky"
    assert read_caption(image) == expected
    assert [r.caption for r in scan_folders([folder]).images] == [expected]
    store = CaptionStore()
    assert store.read(image) == expected
    assert split_tags(expected) == ["bomtag", "red hair", "blue sky"]
    # a caption the scan read is not mistaken for one changed on disk (both readers decode alike)
    assert CaptionStore().changed_on_disk(image, expected) == (False, expected)
