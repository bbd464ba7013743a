"""The build farm's workers: ``[[workers]]`` in jetforge.toml, ``--workers``, which worker
fits which platform, and how an endpoint reaches its engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetforge.engine.docker import DockerEngine
from jetforge.engine.podman import PodmanEngine
from jetforge.errors import UsageError
from jetforge.farm.workers import Worker, choose_workers, parse_workers
from jetforge.platform import detect_platform
from jetforge.settings import load_settings

SOURCE = Path("/etc/jetforge.toml")
ENGINES = ("docker", "podman")


def test_workers_are_read_with_their_labels_and_jobs_from_memory(tmp_path: Path) -> None:
    (tmp_path / "jetforge.toml").write_text(
        "[[workers]]\n"
        'name = "orin"\n'
        'endpoint = "ssh://build@orin.local"\n'
        'labels = {abi = "tegra", arch = "aarch64", sm = "87", memory = "64GiB"}\n'
        "[[workers]]\n"
        'name = "box"\n'
        'engine = "podman"\n'
        'labels = {memory = "8G"}\n'
    )
    settings = load_settings(tmp_path, {})
    assert settings.workers == (
        Worker(
            "orin",
            "",
            "ssh://build@orin.local",
            (("abi", "tegra"), ("arch", "aarch64"), ("memory", "64GiB"), ("sm", "87")),
            4,
        ),
        Worker("box", "podman", "", (("memory", "8G"),), 1),
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"name": "a"}, "'workers' must be [[workers]] tables"),
        ([{"engine": "docker"}], "workers #1: 'name' must be lowercase"),
        ([{"name": "a", "engine": "nerdctl"}], "worker 'a': engine 'nerdctl' (valid: docker,"),
        ([{"name": "a", "labels": {"gpu": "x"}}], "worker 'a': unknown label 'gpu' (valid: abi,"),
        ([{"name": "a", "labels": {"abi": "arm"}}], "worker 'a': abi 'arm' (valid: tegra, sbsa"),
        ([{"name": "a", "labels": {"memory": "lots"}}], "memory 'lots' (write it as e.g."),
        ([{"name": "a", "jobs": 0}], "worker 'a': 'jobs' must be a whole number of at least 1"),
        ([{"name": "a", "host": "x"}], "workers #1: unknown key 'host' (valid: name, engine"),
        ([{"name": "a"}, {"name": "a"}], "worker name 'a' is used twice"),
        ([{"name": "local"}], "worker name 'local' is reserved for the local engine"),
    ],
)
def test_a_bad_worker_is_one_line_naming_the_file_and_what_is_valid(
    value: object, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_workers(value, SOURCE, ENGINES)
    assert str(caught.value).startswith(f"{SOURCE}: ")
    assert message in str(caught.value)


def test_workers_option_picks_workers_in_order_and_local_is_the_local_engine() -> None:
    configured = (Worker("a", "podman"), Worker("b"))
    assert choose_workers([], configured, "docker") == (Worker("local", "docker"),)
    chosen = choose_workers(["b", "local", "a", "b"], configured, "docker")
    assert chosen == (Worker("b", "docker"), Worker("local", "docker"), Worker("a", "podman"))
    with pytest.raises(UsageError, match=r"unknown worker 'c' \(valid: local, a, b\)"):
        choose_workers(["c"], configured, "docker")


def test_a_worker_fits_the_platforms_its_labels_allow() -> None:
    orin = detect_platform({}, target="jp6")
    server = detect_platform({}, target="x86_64-cu128")
    tegra = Worker("t", labels=(("abi", "tegra"), ("sm", "87")))
    assert tegra.fits(orin)
    assert not tegra.fits(server)
    assert Worker("any").fits(orin)
    assert Worker("any").fits(server)
    assert not Worker("x", labels=(("arch", "x86_64"),)).fits(orin)
    assert not Worker("old", labels=(("abi", "tegra"), ("sm", "72"))).fits(orin)


def test_an_endpoint_reaches_the_engine_through_its_own_variable() -> None:
    assert DockerEngine.endpoint_env("unix:///run/d2.sock") == {
        "DOCKER_HOST": "unix:///run/d2.sock"
    }
    assert DockerEngine.endpoint_env("") == {}
    assert PodmanEngine.endpoint_env("ssh://u@h/run/podman.sock") == {
        "CONTAINER_HOST": "ssh://u@h/run/podman.sock"
    }
    assert PodmanEngine.endpoint_env("thor") == {"CONTAINER_CONNECTION": "thor"}


def test_commands_shown_to_be_run_by_hand_carry_the_endpoint() -> None:
    engine = DockerEngine("docker", "buildkit", env={"DOCKER_HOST": "unix:///run/d2.sock"})
    shown = engine.run_command(("--rm",), "img", ("true",)).shell()
    assert shown == "DOCKER_HOST=unix:///run/d2.sock docker run --rm img true"


def test_doctor_checks_every_worker_at_its_endpoint(
    jetforge, docker_engine: None, tmp_path: Path
) -> None:
    config = tmp_path / "config" / "jetforge"
    config.mkdir(parents=True)
    (config / "jetforge.toml").write_text(
        "[[workers]]\n"
        'name = "here"\n'
        'endpoint = "unix:///var/run/docker.sock"\n'
        'labels = {abi = "x86_64", memory = "32GiB"}\n'
        "[[workers]]\n"
        'name = "gone"\n'
        f'endpoint = "unix://{tmp_path}/nothing.sock"\n'
    )
    result = jetforge("doctor")
    lines = [line for line in result.stdout.splitlines() if " worker " in f" {line} "]
    assert len(lines) == 2
    assert lines[0].startswith("ok       worker    here: docker ")
    assert lines[0].endswith("at unix:///var/run/docker.sock; abi=x86_64 memory=32GiB; 2 job(s)")
    assert lines[1].startswith(
        f"problem  worker    gone: docker at unix://{tmp_path}/nothing.sock: "
    )
    assert "; fix: " in lines[1]
    assert result.code == 1
