"""Virtual paths (licscan/vpath.py): the helpers every layer builds and splits ``OUTER!/member/path`` with."""

from __future__ import annotations

from licscan.vpath import basename, chain, container, is_member_of, is_within, join, member, outer


def test_levels_of_a_nested_member():
    path = join(join("dist/a.tar", "pkg.whl"), "lib/libx.so.12")
    assert path == "dist/a.tar!/pkg.whl!/lib/libx.so.12"
    assert outer(path) == "dist/a.tar"
    assert member(path) == "lib/libx.so.12"
    assert basename(path) == "libx.so.12"
    assert container(path) == "dist/a.tar!/pkg.whl"
    assert container("dist/a.tar!/pkg.whl") == "dist/a.tar"
    assert container("dist/a.tar") is None
    assert chain(path) == ["dist/a.tar", "dist/a.tar!/pkg.whl", path]


def test_member_of_an_archive_is_not_within_a_folder_of_the_same_name():
    assert is_member_of("a.whl!/x.dist-info/METADATA", "a.whl")
    assert is_member_of("a.tar!/b.whl!/c.so", "a.tar")
    assert not is_member_of("a.whl", "a.whl")  # the archive itself
    assert not is_member_of("a.whl/x", "a.whl")  # a folder named like the archive
    assert not is_member_of("a.whl2!/x", "a.whl")
    assert is_within("a.whl", "a.whl") and is_within("a.whl/x", "a.whl")  # is_within: the scope itself and folders
