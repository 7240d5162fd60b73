"""harness/json_files.read: the one reader of the suite's JSON input files, and its one-line errors."""

from __future__ import annotations

import os

import pytest

from harness import json_files
from harness.errors import UserError


def test_reads_the_value(tmp_path: str) -> None:
    path = os.path.join(tmp_path, "a.json")
    with open(path, "w") as f:
        f.write('{"learning_rate": {"min": 0.1, "max": 1.0}}\n')
    assert json_files.read(path, "x") == {"learning_rate": {"min": 0.1, "max": 1.0}}


@pytest.mark.parametrize("content, message", [
    (None, r"^cannot read --search_space=P: No such file or directory; fix it$"),
    (b'{"a": 1,}', r"^cannot parse --search_space=P: Expecting property name enclosed in double quotes "
                   r"at line 1 column 9; fix it$"),
    (b"\xff\xfe{}", r"^cannot read --search_space=P: 'utf-8' codec can't decode byte 0xff .*; fix it$"),
    ("directory", r"^cannot read --search_space=P: Is a directory; fix it$"),
])
def test_errors_are_one_line_and_name_the_file(tmp_path: str, content: bytes | str | None, message: str
                                               ) -> None:
    path = os.path.join(tmp_path, "s.json")
    if content == "directory":
        os.mkdir(path)
    elif content is not None:
        with open(path, "wb") as f:
            f.write(content)
    with pytest.raises(UserError, match=message.replace("=P", "=" + path.replace(".", r"\."))) as e:
        json_files.read(path, f"--search_space={path}", "fix it")
    assert "\n" not in str(e.value)
