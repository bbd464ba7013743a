"""The discovery index: a run reads only what changed, and never answers from a stale entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jetforge.discovery.index
import jetforge.discovery.reading
import jetforge.host.stash
from jetforge.host import stash as jetforge_stash

HEADER = (
    "#---\n# name: {name}\n# depends: [{depends}]\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"
)
SCRIPT = """\
import os
from pathlib import Path

def configure(package, platform):
    with Path({counter!r}).open("a") as out:
        out.write("ran\\n")
    version = os.environ.get("WIDGET_VERSION", "1.0")
    return package.replace(name=f"widget:{{version}}", build_args={{"V": version}})
"""


@pytest.fixture
def settled(monkeypatch):  # type: ignore[no-untyped-def]
    """Trust files the moment they are written (the real rule waits a second)."""
    monkeypatch.setattr(jetforge.host.stash, "SETTLED_NS", 0)


@pytest.fixture
def tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A tree of two plain packages and one whose variant a config script makes; the
    script notes each run in ``counter``."""
    root = tmp_path / "packages"
    counter = tmp_path / "script-runs"
    for name, depends in (("base", ""), ("app", "base")):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(HEADER.format(name=name, depends=depends))
    (root / "widget").mkdir()
    (root / "widget" / "Dockerfile").write_text(HEADER.format(name="widget", depends="base"))
    (root / "widget" / "config.py").write_text(SCRIPT.format(counter=str(counter)))
    return root, counter


@pytest.fixture
def parses(monkeypatch):  # type: ignore[no-untyped-def]
    """The package directories parsed (not answered by the index), in order."""
    seen: list[str] = []
    original = jetforge.discovery.reading.parse_package_dir

    def parse(directory: Path, files: frozenset[str], texts=None):  # type: ignore[no-untyped-def]
        seen.append(directory.name)
        return original(directory, files, texts)

    monkeypatch.setattr(jetforge.discovery.reading, "parse_package_dir", parse)
    return seen


def add_script(directory: Path, preamble: str, counter: Path, name: str) -> None:
    """A package directory whose config script runs ``preamble`` when loaded, notes each
    run in ``counter`` and names its one variant ``name`` (a Python expression)."""
    directory.mkdir()
    (directory / "Dockerfile").write_text(HEADER.format(name=directory.name, depends="base"))
    (directory / "config.py").write_text(
        f"{preamble}\n"
        "def configure(package, platform):\n"
        f"    with open({str(counter)!r}, 'a') as out:\n"
        "        out.write('ran\\n')\n"
        f"    return package.replace(name={name})\n"
    )


def runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def listed(jetforge, root: Path, *argv: str, env: dict[str, str] | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    base = {"JETFORGE_SHIPPED_PACKAGES": ""}
    result = jetforge(
        "list", "--all", *argv, "--package-dirs", str(root), env={**base, **(env or {})}
    )
    assert result.code == 0, result.stderr
    return result.stdout.splitlines()


def test_a_second_run_reads_and_runs_nothing(jetforge, tree, parses, settled):
    root, counter = tree
    first = listed(jetforge, root)
    assert first == ["app", "base", "widget:1.0"]
    assert sorted(parses) == ["app", "base"]  # widget's goes to the script worker
    assert runs(counter) == 1
    parses.clear()
    assert listed(jetforge, root) == first
    assert parses == []
    assert runs(counter) == 1


def test_an_edit_is_seen_and_only_that_directory_is_read(jetforge, tree, parses, settled):
    root, counter = tree
    listed(jetforge, root)
    parses.clear()
    (root / "app" / "Dockerfile").write_text(HEADER.format(name="app2", depends="base"))
    assert listed(jetforge, root) == ["app2", "base", "widget:1.0"]
    assert parses == ["app"]
    assert runs(counter) == 1


def test_an_edit_that_keeps_the_size_is_seen(jetforge, tree, settled):
    root, _ = tree
    listed(jetforge, root)
    dockerfile = root / "app" / "Dockerfile"
    before = dockerfile.stat()
    dockerfile.write_text(HEADER.format(name="apq", depends="base"))
    os.utime(dockerfile, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    assert listed(jetforge, root) == ["apq", "base", "widget:1.0"]


def test_a_touch_reads_the_directory_again(jetforge, tree, parses, settled):
    root, _ = tree
    listed(jetforge, root)
    parses.clear()
    (root / "base" / "Dockerfile").touch()
    assert listed(jetforge, root) == ["app", "base", "widget:1.0"]
    assert parses == ["base"]


def test_added_renamed_and_deleted_directories_are_seen(jetforge, tree, settled):
    root, _ = tree
    listed(jetforge, root)
    (root / "extra").mkdir()
    (root / "extra" / "Dockerfile").write_text(HEADER.format(name="extra", depends="base"))
    assert listed(jetforge, root) == ["app", "base", "extra", "widget:1.0"]
    (root / "extra").rename(root / "moved")
    (root / "moved" / "Dockerfile").write_text(HEADER.format(name="moved", depends="base"))
    assert listed(jetforge, root) == ["app", "base", "moved", "widget:1.0"]
    (root / "moved" / "Dockerfile").unlink()
    assert listed(jetforge, root) == ["app", "base", "widget:1.0"]


def test_a_file_renamed_inside_a_directory_is_seen(jetforge, tree, settled):
    root, _ = tree
    listed(jetforge, root)
    (root / "app" / "Dockerfile").rename(root / "app" / "Dockerfile.old")
    result = jetforge("list", "--package-dirs", str(root), env={"JETFORGE_SHIPPED_PACKAGES": ""})
    assert result.stdout.splitlines() == ["base", "widget:1.0"]


def test_a_variable_a_script_reads_runs_the_scripts_again(jetforge, tree, settled):
    root, counter = tree
    listed(jetforge, root)
    assert listed(jetforge, root, env={"WIDGET_VERSION": "2.0"}) == ["app", "base", "widget:2.0"]
    assert runs(counter) == 2
    assert listed(jetforge, root, env={"WIDGET_VERSION": "2.0"})[-1] == "widget:2.0"
    assert runs(counter) == 2
    # A variable no script looked at changes nothing.
    assert listed(jetforge, root, env={"WIDGET_VERSION": "2.0", "UNRELATED": "x"})[-1] == (
        "widget:2.0"
    )
    assert runs(counter) == 2


def test_another_platform_runs_the_scripts_again(jetforge, tree, settled):
    root, counter = tree
    listed(jetforge, root)
    listed(jetforge, root, "--target", "jp6")
    assert runs(counter) == 2
    listed(jetforge, root, "--target", "jp6")
    listed(jetforge, root)
    assert runs(counter) == 3  # one index per tree: back on this platform, scripts run


def test_a_python_file_of_the_tree_runs_only_the_scripts_that_import_it_again(
    jetforge, tree, tmp_path, settled
):
    root, counter = tree
    helper = root / "helpers.py"
    helper.write_text("VERSION = '1'\n")
    importer_runs = tmp_path / "importer-runs"
    add_script(
        root / "importer",
        "from packages.helpers import VERSION\n",
        importer_runs,
        "f'importer:{VERSION}'",
    )
    assert listed(jetforge, root)[-2:] == ["importer:1", "widget:1.0"]
    helper.write_text("VERSION = '22'\n")
    assert listed(jetforge, root)[-2:] == ["importer:22", "widget:1.0"]
    assert (runs(importer_runs), runs(counter)) == (2, 1)  # widget does not import it


def test_a_helper_a_script_looked_for_runs_it_again_when_it_appears(
    jetforge, tree, tmp_path, settled
):
    root, counter = tree
    looker_runs = tmp_path / "looker-runs"
    add_script(
        root / "looker",
        "try:\n    from packages.extra.helper import VERSION\n"
        "except ImportError:\n    VERSION = 'none'\n",
        looker_runs,
        "f'looker:{VERSION}'",
    )
    assert "looker:none" in listed(jetforge, root)
    (root / "extra").mkdir()
    (root / "extra" / "helper.py").write_text("VERSION = '3'\n")
    assert "looker:3" in listed(jetforge, root)
    assert (runs(looker_runs), runs(counter)) == (2, 1)


def test_a_script_runs_again_only_when_its_own_inputs_change(jetforge, tree, tmp_path, settled):
    """Per-script invalidation: a variable, a directory or a file read by one script
    reruns that script alone."""
    root, counter = tree
    other_runs = tmp_path / "other-runs"
    data = tmp_path / "versions.txt"
    data.write_text("5\n")
    add_script(
        root / "other",
        f"import os\nVERSION = open({str(data)!r}).read().strip()\n"
        "VERSION += os.environ.get('OTHER_SUFFIX', '')\n",
        other_runs,
        "f'other:{VERSION}'",
    )
    assert "other:5" in listed(jetforge, root)
    data.write_text("6\n")  # read by other only
    assert "other:6" in listed(jetforge, root)
    assert "other:6b" in listed(jetforge, root, env={"OTHER_SUFFIX": "b"})
    (root / "other" / "notes.txt").write_text("other's own directory\n")
    assert "other:6b" in listed(jetforge, root, env={"OTHER_SUFFIX": "b"})
    assert (runs(other_runs), runs(counter)) == (4, 1)
    both = {"OTHER_SUFFIX": "b", "WIDGET_VERSION": "2"}
    assert listed(jetforge, root, env=both)[-1] == "widget:2"
    assert (runs(other_runs), runs(counter)) == (4, 2)


def test_a_script_that_looks_up_the_platform_table_is_not_run_every_time(
    jetforge, tree, tmp_path, settled
):
    """The platform table is jetforge's own data (kept in its cache directory, which every
    run changes): a script that looks it up, as the shipped python package's does, is
    answered by the index on the next run, not run again."""
    root, counter = tree
    looks = tmp_path / "table-runs"
    add_script(
        root / "table",
        "from jetforge.host.platform_data import load_tables\n"
        "PYTHONS = len(load_tables().python)\n",
        looks,
        "f'table:{PYTHONS}'",
    )
    for _ in range(3):
        assert any(line.startswith("table:") for line in listed(jetforge, root))
    assert (runs(looks), runs(counter)) == (1, 1)


def test_a_script_that_writes_its_directory_elsewhere_reruns_alone(
    jetforge, tree, tmp_path, settled
):
    """jc's own runs rewrite a file in a package directory (ollama's nv_tegra_release):
    that directory's script runs again, no other."""
    root, counter = tree
    writer = tmp_path / "writer-runs"
    add_script(root / "writer", "", writer, "'writer'")
    listed(jetforge, root)
    (root / "writer" / "nv_tegra_release").write_text("# R36 (release)\n")  # another program
    listed(jetforge, root)
    (root / "writer" / "nv_tegra_release").write_text("# R36 (release), again\n")
    listed(jetforge, root)
    assert (runs(writer), runs(counter)) == (3, 1)


def test_jc_scripts_that_share_a_helper_each_run_again_when_it_changes(jetforge, tmp_path, settled):
    """Each script imports the helper itself (a runner whose script imported a module is
    not used for the next script), so each is seen to read it."""
    root = tmp_path / "packages"
    (root / "common").mkdir(parents=True)
    (root / "common" / "version.py").write_text("V = '1'\n")
    counters = {}
    for name, imports in (("first", True), ("second", True), ("third", False)):
        counters[name] = tmp_path / f"{name}-runs"
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text(f"#---\n# name: {name}\n#---\nFROM x\n")
        version = "V" if imports else "'0'"
        (root / name / "config.py").write_text(
            ("from packages.common.version import V\n" if imports else "")
            + f"with open({str(counters[name])!r}, 'a') as out:\n"
            "    out.write('ran\\n')\n"
            f"package['name'] = '{name}:' + {version}\n"
        )
    assert listed(jetforge, root, "--package-format", "jc") == ["first:1", "second:1", "third:0"]
    (root / "common" / "version.py").write_text("V = '22'\n")
    assert listed(jetforge, root, "--package-format", "jc") == ["first:22", "second:22", "third:0"]
    assert [runs(counters[name]) for name in ("first", "second", "third")] == [2, 2, 1]


def test_no_index_reads_everything_and_keeps_nothing(jetforge, tree, cli_env, settled):
    root, counter = tree
    listed(jetforge, root, "--no-index")
    listed(jetforge, root, env={"JETFORGE_NO_INDEX": "1"})
    assert runs(counter) == 2
    assert not (Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "index").exists()


def test_a_damaged_index_counts_as_empty(jetforge, tree, cli_env, settled):
    root, counter = tree
    listed(jetforge, root)
    (index,) = (Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "index").iterdir()
    assert index.stat().st_mode & 0o077 == 0
    index.write_bytes(b"\x80\x05not an index")
    assert listed(jetforge, root) == ["app", "base", "widget:1.0"]
    assert runs(counter) == 2


def test_a_damaged_variant_of_the_answer_is_read_from_the_tree(jetforge, tree, cli_env, settled):
    """The answer's variants are decoded when a lookup asks for them: one that does not
    decode gives way to the tree, read again."""
    root, _ = tree
    listed(jetforge, root)
    (index,) = (Path(cli_env["XDG_CACHE_HOME"]) / "jetforge" / "index").iterdir()
    lines = index.read_bytes().split(b"\n")
    lines[-1] = b'{"damaged": '  # the last variant's part
    index.write_bytes(b"\n".join(lines))
    env = {"JETFORGE_SHIPPED_PACKAGES": ""}
    graph = jetforge("graph", "--package-dirs", str(root), "app", env=env)
    assert (graph.code, graph.stdout.split()) == (0, ["base", "app", "<-", "base"]), graph.stderr
    shown = jetforge("show", "--json", "--package-dirs", str(root), "*", env=env)
    assert shown.code == 0, shown.stderr
    assert [item["name"] for item in json.loads(shown.stdout)] == ["app", "base", "widget:1.0"]


def test_files_changed_just_before_a_run_are_read_again(jetforge, tree, parses, monkeypatch):
    root, counter = tree
    # Written "just now" for as long as no file counts as settled (on a loaded machine the
    # real second may pass between two runs).
    monkeypatch.setattr(jetforge_stash, "SETTLED_NS", 10**18)
    listed(jetforge, root)
    listed(jetforge, root)
    assert sorted(parses) == ["app", "app", "base", "base"]
    assert runs(counter) == 2
    monkeypatch.setattr(jetforge_stash, "SETTLED_NS", 0)  # now they have settled
    listed(jetforge, root)
    parses.clear()
    listed(jetforge, root)
    assert parses == []
    assert runs(counter) == 3


def test_a_script_that_writes_into_its_directory_is_not_run_every_time(jetforge, tmp_path, settled):
    root = tmp_path / "packages"
    counter = tmp_path / "runs"
    (root / "writer").mkdir(parents=True)
    (root / "writer" / "Dockerfile").write_text("#---\n# name: writer\n#---\nFROM x\n")
    (root / "writer" / "config.py").write_text(
        "from pathlib import Path\n"
        f"with open({str(counter)!r}, 'a') as out:\n"
        "    out.write('ran\\n')\n"
        "Path(package['path'], 'release.txt').write_text('36.4')\n"
    )
    for _ in range(3):
        assert listed(jetforge, root, "--package-format", "jc") == ["writer"]
    assert runs(counter) == 1


def test_concurrent_runs_agree(tree, tmp_path):
    root, _ = tree
    time.sleep(1.1)  # the tree settles: the runs keep and replace entries
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "shared-cache"),
        "JETFORGE_SHIPPED_PACKAGES": "",
    }
    argv = [sys.executable, "-m", "jetforge", "list", "--json", "--package-dirs", str(root)]
    for round_ in range(3):
        (root / "base" / "Dockerfile").write_text(
            HEADER.format(name="base", depends="") + f"# round {round_}\n"
        )
        processes = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=120) for process in processes]
        for process, (out, err) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, err
            assert [item["name"] for item in json.loads(out)] == ["app", "base", "widget:1.0"]
