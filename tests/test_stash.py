"""The stash (jetforge.host.stash): plain data in private files, one settled rule, and the
discovery index's values as plain data and back (jetforge.discovery.records)."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import jetforge.host.stash as stash_module
from jetforge.core.catalog import Catalog, Variant
from jetforge.core.requirement import Predicate, Requirement, parse_jc_predicate
from jetforge.core.spec import PackageSpec
from jetforge.discovery.records import (
    Decoder,
    catalog_record,
    package_dir_record,
    spec_record,
)
from jetforge.discovery.walk import PackageDir
from jetforge.errors import DefinitionError
from jetforge.host.stash import (
    SETTLED_NS,
    dump,
    is_settled,
    key_text,
    read_private,
    read_stash,
    read_stash_parts,
    write_stash,
    write_stash_parts,
)

OTHER_UID = 65534  # nobody
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="making another user's file needs root")


def test_a_value_is_kept_as_json_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "stash" / "sub" / "memo.json"
    assert write_stash(path, {"answer": [1, "two", None, True]})
    assert json.loads(path.read_text()) == {"answer": [1, "two", None, True]}
    assert read_stash(path) == {"answer": [1, "two", None, True]}
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "stash").stat().st_mode & 0o777 == 0o700  # parents too


def test_parts_are_lines_decoded_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "parts.json"
    assert write_stash_parts(path, [dump({"a": "line\nbreak"}), dump([1, 2])])
    parts = read_stash_parts(path)
    assert parts is not None
    assert len(parts) == 2
    assert [json.loads(part) for part in parts] == [{"a": "line\nbreak"}, [1, 2]]
    assert read_stash(path) is None  # not a one-part file


def test_what_is_not_plain_data_is_not_kept(tmp_path: Path) -> None:
    assert not write_stash(tmp_path / "x.json", {"path": Path("/x")})
    assert not write_stash(tmp_path / "x.json", float("nan"))
    assert not (tmp_path / "x.json").exists()


def test_missing_damaged_or_odd_files_count_as_absent(tmp_path: Path) -> None:
    assert read_stash(None) is None
    assert read_stash(tmp_path / "missing.json") is None
    (tmp_path / "damaged.json").write_bytes(b'{"half": ')
    (tmp_path / "damaged.json").chmod(0o600)
    assert read_stash(tmp_path / "damaged.json") is None
    (tmp_path / "binary.json").write_bytes(b"\x80\x04\x95pickle")
    (tmp_path / "binary.json").chmod(0o600)
    assert read_stash(tmp_path / "binary.json") is None
    (tmp_path / "directory.json").mkdir()
    assert read_stash(tmp_path / "directory.json") is None


def test_a_fifo_is_not_read_and_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "memo.json"
    os.mkfifo(fifo, 0o600)
    found: list[object] = []
    reader = threading.Thread(target=lambda: found.append(read_stash(fifo)), daemon=True)
    reader.start()
    reader.join(5)
    assert found == [None]


def test_a_link_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    write_stash(target, {"kept": True})
    (tmp_path / "link.json").symlink_to(target)
    assert read_stash(tmp_path / "link.json") is None


def test_a_file_or_directory_others_may_write_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "memo.json"
    write_stash(path, {"kept": True})
    path.chmod(0o620)
    assert read_stash(path) is None
    path.chmod(0o602)
    assert read_stash(path) is None
    path.chmod(0o600)
    assert read_stash(path) == {"kept": True}
    path.parent.chmod(0o770)
    assert read_stash(path) is None
    path.parent.chmod(0o1777)  # a sticky directory anyone may write to, like /tmp
    assert read_stash(path) is None


def test_writing_makes_an_own_shared_directory_private(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o775)
    assert write_stash(directory / "memo.json", 1)
    assert directory.stat().st_mode & 0o777 == 0o755
    assert read_stash(directory / "memo.json") == 1


def test_a_file_bigger_than_the_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    write_stash(path, "x" * 100)
    assert read_private(path, limit=50) is None
    assert read_private(path, limit=200) is not None


@as_root
def test_another_users_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "memo.json"
    write_stash(path, {"kept": True})
    os.chown(path, OTHER_UID, OTHER_UID)
    assert read_stash(path) is None


@as_root
def test_another_users_directory_is_neither_read_nor_written(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    write_stash(theirs / "memo.json", {"theirs": True})
    for path in (theirs, theirs / "memo.json"):
        os.chown(path, OTHER_UID, OTHER_UID)
    assert read_stash(theirs / "memo.json") is None
    assert not write_stash(theirs / "memo.json", {"ours": True})
    assert not write_stash(theirs / "new" / "memo.json", {"ours": True})
    assert sorted(path.name for path in theirs.iterdir()) == ["memo.json"]
    assert (theirs / "memo.json").stat().st_uid == OTHER_UID


def test_settled_means_unchanged_for_a_second_before_the_work_began() -> None:
    since = 10 * SETTLED_NS
    old = (1, since - 2 * SETTLED_NS, since - 2 * SETTLED_NS, 7)
    assert is_settled(old, since)
    assert is_settled(None, since)  # a missing file stays missing
    assert not is_settled((1, since - 1, old[2], 7), since)  # modified just now
    assert not is_settled((1, old[1], since - 1, 7), since)  # changed just now (chmod, mv)
    assert not is_settled((1, since + SETTLED_NS, old[2], 7), since)  # a future mtime


@pytest.mark.process
def test_nothing_unsettled_is_kept_by_the_index_or_the_digests(jetforge, tmp_path, cli_env):
    root = tmp_path / "packages"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("#---\n# name: app\n#---\nFROM x\n")
    env = {"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"}
    argv = ("build", "--simulate", "--package-dirs", str(root), "app")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stash_module, "SETTLED_NS", 10**18)  # nothing has settled
        assert jetforge(*argv, env=env).code == 0
    cache = Path(cli_env["XDG_CACHE_HOME"]) / "jetforge"
    assert not (cache / "digests.json").exists()
    (index,) = (cache / "index").iterdir()  # the first part says nothing is kept
    head = json.loads(index.read_bytes().split(b"\n")[0])
    assert head["walk"] is None
    assert head["answer"] is None
    assert json.loads(index.read_bytes().split(b"\n")[-1]) == {}  # the entries


def test_a_key_text_tells_values_apart_and_ignores_tuple_or_list() -> None:
    same = key_text([["a", [1, 2]], {"a": 2, "b": 1}])
    assert key_text([("a", (1, 2)), {"b": 1, "a": 2}]) == same
    assert key_text([Version("1.0")]) != key_text([Version("1.1")])


# The discovery index's records


def full_spec() -> PackageSpec:
    """A spec with every field other than its default."""
    values: dict[str, object] = {}
    for item in dataclasses.fields(PackageSpec):
        default = item.default
        if item.name in ("path", "source"):
            values[item.name] = Path(f"/tree/pkg/{item.name}")
        elif item.name == "build_args":
            values[item.name] = (("A", "1"), ("B", "two words"))
        elif default == ():
            values[item.name] = (f"{item.name}-1", f"{item.name}-2")
        elif isinstance(default, bool):
            values[item.name] = not default
        elif item.name == "format":
            values[item.name] = "jc"
        elif item.name == "name":
            values[item.name] = "pkg:1.0"
        else:
            values[item.name] = f"{item.name} text"
    spec = PackageSpec(**values)  # type: ignore[arg-type]
    for item in dataclasses.fields(PackageSpec):
        assert getattr(spec, item.name) != item.default, item.name
    return spec


def round_trip(record: object) -> object:
    return json.loads(json.dumps(record))


def test_every_spec_field_comes_back() -> None:
    spec = full_spec()
    back = Decoder().spec(round_trip(spec_record(spec)))  # type: ignore[arg-type]
    assert back == spec
    assert {f.name: type(getattr(back, f.name)) for f in dataclasses.fields(back)} == {
        f.name: type(getattr(spec, f.name)) for f in dataclasses.fields(spec)
    }
    minimal = PackageSpec("app", Path("/t/app"), Path("/t/app/Dockerfile"))
    assert spec_record(minimal) == {"name": "app", "path": "/t/app", "source": "/t/app/Dockerfile"}
    assert Decoder().spec(spec_record(minimal)) == minimal


def test_a_record_with_an_unknown_or_missing_field_does_not_decode() -> None:
    with pytest.raises(ValueError, match="other fields"):
        Decoder().spec({"name": "a", "path": "/a", "source": "/a/D", "evil": "x"})
    with pytest.raises(ValueError, match="other fields"):
        Decoder().spec({"name": "a", "path": "/a"})


def test_a_catalog_comes_back_equal_with_its_lookups() -> None:
    spec = full_spec()
    other = PackageSpec("base", Path("/tree/base"), Path("/tree/base/package.yaml"))
    variants = (
        Variant(
            spec,
            (
                Requirement("base"),
                Requirement("torch", specifier=SpecifierSet(">=2.6,<3"), text="torch>=2.6,<3"),
                Requirement("cuda", tag="12.8", text="cuda:12.8"),
            ),
            (
                Predicate("arch", "!=x86_64", word="x86_64", negate=True),
                Predicate("cuda", ">=cu126", SpecifierSet(">=12.6")),
                parse_jc_predicate(">=36", Version("39.1")),
            ),
            "requires >=cu126 (platform: x86_64)",
            layered=True,
        ),
        Variant(other, (), ()),
    )
    catalog = Catalog(
        variants,
        (DefinitionError(Path("/tree/bad/Dockerfile"), "unknown key 'nmae'", 3),),
        ("a warning",),
    )
    back = Decoder().catalog(round_trip(catalog_record(catalog)))  # type: ignore[arg-type]
    assert back.variants == catalog.variants
    assert back.warnings == catalog.warnings
    assert [(p.path, p.problem, p.line) for p in back.problems] == [
        (Path("/tree/bad/Dockerfile"), "unknown key 'nmae'", 3)
    ]
    assert back.names() == catalog.names()
    assert back.lookup("base") == catalog.lookup("base")
    assert hash(back.variants[0].depends) == hash(catalog.variants[0].depends)


def test_decoded_classes_have_nothing_their_init_would_do() -> None:
    # The decoder fills instances without __init__ (as pickle does): only safe while the
    # classes compute nothing on construction.
    for cls in (PackageSpec, Requirement, Variant):
        assert not hasattr(cls, "__post_init__"), cls


def test_a_package_dir_comes_back() -> None:
    found = PackageDir(
        Path("/tree/app"),
        frozenset({"Dockerfile", "config.py"}),
        "auto",
        (("Dockerfile", (1, 2, 3, 4)), ("sub", None)),
        Path("/tree"),
    )
    record = round_trip(package_dir_record(found))
    assert Decoder().package_dir(record) == found  # type: ignore[arg-type]


def test_paths_are_made_once_and_equal_to_parsed_ones() -> None:
    decoder = Decoder()
    for text in ("/a/b/c", "/a/b", "relative/x", "x", "/", "/a/../b", "/a/b/.hidden"):
        assert decoder.path(text) == Path(text), text
        assert str(decoder.path(text)) == text
    assert decoder.path("/a/b/c") is decoder.path("/a/b/c")
