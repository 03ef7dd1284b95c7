"""The committed Chinese glyph subset (firmware/ykt/ui/glyphdata.py) covers exactly
the firmware's messages, and rebuilds byte-identically from GNU Unifont."""
import os

import pytest

import conftest
from ykt_tools.build import glyphs
from ykt_tools.cli.main import main


def test_committed_file_matches_message_set():
    want = glyphs.message_chars()
    have = glyphs.committed_chars()
    assert want == have, "run `ykt glyphs build`: missing %r extra %r" % (
        "".join(map(chr, set(want) - set(have))), "".join(map(chr, set(have) - set(want))))
    assert main(["glyphs", "check"]) == 0


def test_rebuild_from_unifont_is_identical():
    conftest.need(os.path.exists(glyphs.UNIFONT),
                  "GNU Unifont not installed (%s): apt-get install -y unifont" % glyphs.UNIFONT)
    data = glyphs.build()
    assert data == glyphs.committed()
    with open(glyphs.OUTPUT) as f:
        assert glyphs.module_text(data) == f.read()


def test_missing_glyph_is_an_error(tmp_path):
    font = tmp_path / "tiny.hex"
    font.write_text("4E00:" + "00" * 32 + "\n")
    with pytest.raises(ValueError, match="lacks"):
        glyphs.build(str(font))
