"""The SPDX 2.3 document of a final image (core/sbom.py) made from its lock, and
``jetforge sbom IMAGE`` finding it by the image's id."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jetforge.core.inventory import parse_inventory
from jetforge.core.lockfile import lock_for
from jetforge.core.plan import Plan
from jetforge.core.sbom import spdx_document
from jetforge.host.stash import write_private
from jetforge.ops.executor import BuildOptions, Executor
from jetforge.ops.lockstep import read_sbom, sbom_path
from tests.test_lock import BASE_ID, BASE_OUTPUT, FINAL, OUTPUTS, golden_plan, make_engine

SPDX_ID = re.compile(r"SPDXRef-[A-Za-z0-9.-]+")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return golden_plan()


def sbom_of(plan: Plan) -> dict:  # type: ignore[type-arg]
    stages = [
        (f"sha256:{index}", parse_inventory(text))
        for index, text in enumerate(OUTPUTS.values(), start=1)
    ]
    lock = lock_for(plan, (BASE_ID, (), parse_inventory(BASE_OUTPUT)), stages)
    return spdx_document(lock, "2026-01-02T03:04:05Z")


@pytest.mark.process
def test_the_document_has_the_spdx_2_3_fields(plan: Plan) -> None:
    document = sbom_of(plan)
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["dataLicense"] == "CC0-1.0"
    assert document["SPDXID"] == "SPDXRef-DOCUMENT"
    assert document["name"] == FINAL
    assert document["documentNamespace"] == (
        "https://spdx.org/spdxdocs/jetforge/bundle-4"  # the final image's id: sha256:4
    )
    assert document["creationInfo"] == {
        "created": "2026-01-02T03:04:05Z",
        "creators": ["Tool: jetforge-0.1.0"],
    }
    packages = document["packages"]
    ids = [package["SPDXID"] for package in packages]
    assert len(set(ids)) == len(ids)
    for package in packages:
        assert SPDX_ID.fullmatch(package["SPDXID"]), package["SPDXID"]
        for key in ("name", "versionInfo", "downloadLocation"):
            assert isinstance(package[key], str)
            assert package[key]
        assert package["filesAnalyzed"] is False
    image = packages[0]
    assert (image["SPDXID"], image["name"], image["versionInfo"]) == (
        "SPDXRef-Image",
        FINAL,
        "sha256:4",
    )
    assert image["primaryPackagePurpose"] == "CONTAINER"
    relationships = document["relationships"]
    assert relationships[0] == {
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    }
    assert relationships[1:] == [
        {
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": identifier,
        }
        for identifier in ids[1:]
    ]


def test_it_lists_what_the_final_image_holds_with_package_urls(plan: Plan) -> None:
    packages = sbom_of(plan)["packages"][1:]
    found = {
        (p["name"], p["versionInfo"], p["externalRefs"][0]["referenceLocator"], p["comment"])
        for p in packages
    }
    assert found == {
        (
            "dpkg",
            "1.22.6",
            "pkg:deb/ubuntu/dpkg@1.22.6?arch=amd64",
            "installed by the base image ubuntu:24.04",
        ),
        (
            "libc6",
            "2.39-0ubuntu8",
            "pkg:deb/ubuntu/libc6@2.39-0ubuntu8?arch=amd64",
            "installed by the base image ubuntu:24.04",
        ),
        # curl: removed by the last stage; NumPy: the version the last stage upgraded to
        ("NumPy", "2.2.2", "pkg:pypi/numpy@2.2.2", "installed by stage bundle"),
        ("bundle-tools", "1.0", "pkg:pypi/bundle-tools@1.0", "installed by stage bundle"),
        ("python", "3.12.3", "pkg:generic/python@3.12.3", "installed by stage frame:2.0"),
    }
    for package in packages:
        assert package["externalRefs"][0]["referenceCategory"] == "PACKAGE-MANAGER"
        assert package["externalRefs"][0]["referenceType"] == "purl"


def test_the_same_lock_gives_the_same_document(plan: Plan) -> None:
    assert json.dumps(sbom_of(plan)) == json.dumps(sbom_of(plan))


def test_an_epoch_in_a_version_is_escaped_in_the_package_url(plan: Plan) -> None:
    base = BASE_OUTPUT.replace("1.22.6", "1:1.22.6")
    lock = lock_for(plan, (BASE_ID, (), parse_inventory(base)), [("", None)] * len(plan.stages))
    purls = [
        p["externalRefs"][0]["referenceLocator"] for p in spdx_document(lock, "")["packages"][1:]
    ]
    assert "pkg:deb/ubuntu/dpkg@1%3A1.22.6?arch=amd64" in purls


def fake_image(tmp_path: Path, image_id: str) -> Path:
    path = tmp_path / "image.json"
    path.write_text(json.dumps([{"Id": image_id, "RepoTags": ["demo:1"], "Config": {}}]))
    return path


@pytest.mark.process
def test_sbom_prints_the_document_kept_for_the_image(
    jetforge, fake_engine, cli_env, tmp_path: Path
) -> None:
    image_id = "sha256:" + "c" * 64
    kept = sbom_path(Path(cli_env["XDG_STATE_HOME"]) / "jetforge", image_id)
    write_private(kept, b'{"spdxVersion": "SPDX-2.3"}\n')
    env = {**fake_engine({}), "JETFORGE_FAKE_IMAGE": str(fake_image(tmp_path, image_id))}
    result = jetforge("sbom", "demo:1", env=env)
    assert result.code == 0, result.stderr
    assert result.stdout == '{"spdxVersion": "SPDX-2.3"}\n'


@pytest.mark.process
def test_sbom_of_an_image_without_one_is_one_line(jetforge, fake_engine, tmp_path: Path) -> None:
    image_id = "sha256:" + "d" * 64
    env = {**fake_engine({}), "JETFORGE_FAKE_IMAGE": str(fake_image(tmp_path, image_id))}
    result = jetforge("sbom", "demo:1", env=env)
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "jetforge: error: sbom: no SBOM for demo:1 (image sha256:dddddddddddd): jetforge keeps "
        "one for each final image it builds; build it with 'jetforge build'"
    ]


@pytest.mark.process
def test_sbom_of_a_missing_image_is_one_line(jetforge, fake_engine) -> None:
    result = jetforge("sbom", "nothing:here", env=fake_engine({}))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "jetforge: error: sbom: no image 'nothing:here' on this engine (name a local image)"
    ]


def test_a_build_keeps_the_sbom_that_sbom_finds(plan: Plan, tmp_path: Path) -> None:
    engine = make_engine()
    options = BuildOptions(
        logs_dir=tmp_path / "logs",
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        state_dir=tmp_path / "state",
        lock=True,
    )
    summary = Executor(plan, engine, options).execute()
    document = json.loads(read_sbom(engine, tmp_path / "state", FINAL))
    assert document["packages"][0]["versionInfo"] == summary.stages[-1].image_id
    assert document["creationInfo"]["created"] == "2026-01-02T03:04:05Z"  # the image's label
