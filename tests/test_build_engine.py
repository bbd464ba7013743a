"""Real-engine builds: labels, tests, reuse, resume, failures, logs (docs/builds.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine


def build_args(tree: Path, name: str, logs: Path, *extra: str) -> list[str]:
    return [
        "build",
        "--package-dirs",
        str(tree),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        name,
        "--logs",
        str(logs),
        *extra,
        "fd",
    ]


def summary(logs: Path) -> dict:
    return json.loads((logs / "summary.json").read_text())


def states(logs: Path) -> dict[str, str]:
    return {stage["package"]: stage["state"] for stage in summary(logs)["stages"]}


def inspect(image: str) -> dict:
    done = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)[0]


def test_chain_builds_with_labels_tests_and_logs(jetforge, chain_tree, image_name, tmp_path):
    logs = tmp_path / "logs"
    result = jetforge(*build_args(chain_tree, image_name, logs))
    assert result.code == 0, result.stderr
    final = result.stdout.strip()
    platform = json.loads(jetforge("platform", "--json", "--distro", "debian:12").stdout)
    assert final == f"{image_name}:{platform['tag_postfix']}"
    assert states(logs) == {
        "ca-trust": states(logs)["ca-trust"],  # shared by every test of this machine
        "fa": "built",
        "fb": "built",
        "fc": "built",
        "fd": "built",
    }
    labels = inspect(final)["Config"]["Labels"]
    assert labels["jetforge.package"] == "fd"
    assert labels["jetforge.chain"] == "fa,fb,fc,fd"
    assert labels["jetforge.stage-key"] == summary(logs)["stages"][-1]["key"]
    assert "debian-12" in labels["jetforge.platform"]
    for key in (
        "jetforge.version",
        "org.opencontainers.image.created",
        "org.opencontainers.image.title",
    ):
        assert labels[key]
    tests = summary(logs)["final_tests"]
    assert [(t["package"], t["state"]) for t in tests] == [
        ("fa", "passed"),
        ("fb", "passed"),
        ("fc", "passed"),
        ("fd", "cached"),
    ]
    for stage in ("00-ca-trust", "01-fa", "02-fb", "03-fc", "04-fd"):
        assert (logs / f"{stage}.build.sh").read_text().count("build") >= 1
        assert (logs / f"{stage}.build.log").stat().st_size > 0
    assert "fb ok" in (logs / "02-fb.test.log").read_text()
    assert "fc ok" in (logs / "03-fc.test.log").read_text()
    plan = json.loads((logs / "plan.json").read_text())
    assert [stage["package"] for stage in plan["stages"]] == ["ca-trust", "fa", "fb", "fc", "fd"]


def test_rebuild_reuses_every_stage_and_reruns_no_test(jetforge, chain_tree, image_name, tmp_path):
    assert jetforge(*build_args(chain_tree, image_name, tmp_path / "one")).code == 0
    again = tmp_path / "two"
    result = jetforge(*build_args(chain_tree, image_name, again))
    assert result.code == 0, result.stderr
    assert set(states(again).values()) == {"reused"}
    assert {t["state"] for t in summary(again)["final_tests"]} == {"cached"}
    assert not list(again.glob("*.test.log"))


def test_editing_stage_two_rebuilds_exactly_stages_two_to_four(
    jetforge, chain_tree, image_name, tmp_path
):
    assert jetforge(*build_args(chain_tree, image_name, tmp_path / "one")).code == 0
    (chain_tree / "fb" / "content.txt").write_text("b, edited\n")
    logs = tmp_path / "two"
    assert jetforge(*build_args(chain_tree, image_name, logs)).code == 0
    assert states(logs) == {
        "ca-trust": "reused",
        "fa": "reused",
        "fb": "built",
        "fc": "built",
        "fd": "built",
    }


def test_failed_stage_resumes_there_after_the_fix(jetforge, chain_tree, image_name, tmp_path):
    (chain_tree / "fb" / "content.txt").write_text("fail")
    logs = tmp_path / "one"
    failed = jetforge(*build_args(chain_tree, image_name, logs))
    assert failed.code == 1
    assert "fb failed in build" in failed.stderr
    assert "resume with: jetforge build" in failed.stderr
    assert str(logs / "02-fb.build.log") in failed.stderr
    assert states(logs)["fb"] == "failed"
    assert states(logs)["fc"] == "pending"
    final_tag = summary(logs)["final_image"]
    assert (
        subprocess.run(
            ["docker", "image", "inspect", final_tag], capture_output=True, check=False
        ).returncode
        != 0
    )
    (chain_tree / "fb" / "content.txt").write_text("fixed\n")
    logs = tmp_path / "two"
    assert jetforge(*build_args(chain_tree, image_name, logs)).code == 0
    assert states(logs) == {
        "ca-trust": "reused",
        "fa": "reused",
        "fb": "built",
        "fc": "built",
        "fd": "built",
    }


def test_failing_test_exits_1_with_its_log(jetforge, chain_tree, image_name, tmp_path):
    dockerfile = chain_tree / "fd" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("= c", "= nope"))
    logs = tmp_path / "logs"
    result = jetforge(*build_args(chain_tree, image_name, logs))
    assert result.code == 1
    assert "fd failed in test" in result.stderr
    assert str(logs / "04-fd.test.log") in result.stderr
    assert "docker run" in result.stderr
    assert (logs / "04-fd.test.log").exists()
    assert (
        subprocess.run(
            ["docker", "image", "inspect", summary(logs)["final_image"]],
            capture_output=True,
            check=False,
        ).returncode
        != 0
    )


def test_skip_tests_and_test_only(jetforge, chain_tree, image_name, tmp_path):
    logs = tmp_path / "logs"
    assert jetforge(*build_args(chain_tree, image_name, logs, "--skip-tests", "all")).code == 0
    assert summary(logs)["final_tests"] == []
    logs = tmp_path / "only"
    assert jetforge(*build_args(chain_tree, image_name, logs, "--test-only", "fb")).code == 0
    assert [t["package"] for t in summary(logs)["final_tests"]] == ["fb"]
