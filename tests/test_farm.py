"""The build farm's workers: ``[[workers]]`` in jetforge.toml, ``--workers``, which worker
fits which platform, and how an endpoint reaches its engine."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import pytest

from jetforge.cli.progress import LiveReporter
from jetforge.core.inventory import HEADER
from jetforge.core.labels import STAGE_KEY
from jetforge.core.lockfile import LOCK_FILE
from jetforge.core.plan import Plan, PlanOptions, plan_build
from jetforge.core.resolve import resolve
from jetforge.discovery.discover import discover
from jetforge.engine.docker import DockerEngine
from jetforge.engine.fake import FakeEngine
from jetforge.engine.podman import PodmanEngine
from jetforge.engine.table import engine_names
from jetforge.errors import UsageError
from jetforge.host.context import read_context
from jetforge.host.platform import detect_platform
from jetforge.host.settings import load_settings
from jetforge.host.workers import Worker, choose_workers, parse_workers
from jetforge.ops.executor import BuildOptions
from jetforge.ops.farm.graph import Site
from jetforge.ops.farm.progress import Serialized
from jetforge.ops.farm.schedule import Farm
from jetforge.reporter import NullReporter
from support.chains import write_chains

GOLDEN_TREE = Path(__file__).parent / "fixtures" / "trees" / "golden"
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
    settings = load_settings(tmp_path, {}, engine_names)
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
    assert shown == "DOCKER_HOST=unix:///run/d2.sock docker run --rm -- img true"


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


# --- scheduling, on in-memory engines ---------------------------------------------------


def plans_of(tree: Path, lasts: list[str]) -> list[Plan]:
    platform = detect_platform({}, target="x86_64-cu128")
    catalog = discover([tree], platform)
    options = PlanOptions(created="2026-01-02T03:04:05Z")
    return [
        plan_build(resolve(catalog, [last], {}), platform, options, read_context) for last in lasts
    ]


def farm_of(
    plans: list[Plan],
    engines: dict[str, FakeEngine],
    tmp_path: Path,
    *,
    no_base: tuple[str, ...] = (),
    push: str = "",
    rebuild: bool = False,
    lock: bool = False,
    **labels: str,
) -> Farm:
    """A farm of ``engines`` sharing one registry; those in ``no_base`` lack the base
    image (they build no first stage)."""
    registry: dict[str, dict[str, str]] = {}
    ids: dict[str, str] = {}
    sites = []
    for name, engine in engines.items():
        engine.registry, engine.registry_ids = registry, ids
        worker = Worker(name, "fake", labels=tuple(labels.items()) if name != "local" else ())
        sites.append(Site(worker, engine, has_base=name not in no_base))
    options = [
        BuildOptions(
            logs_dir=tmp_path / "logs" / plan.final_image.name,
            data_dir=tmp_path / "data",
            results_dir=tmp_path / "results",
            state_dir=tmp_path / "state",
            push=push,
            rebuild=rebuild,
            lock=lock,
        )
        for plan in plans
    ]
    return Farm(
        plans, sites, options, lambda stage: f"registry.test/ns/{stage.image}", NullReporter()
    )


def fakes(*names: str, seconds: float = 0.0) -> dict[str, FakeEngine]:
    return {name: FakeEngine(build_seconds=seconds) for name in names}


def test_independent_chains_spread_over_the_workers_and_end_on_the_first(
    tmp_path: Path,
) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 4, 3))
    engines = fakes("local", "w2", "w3", seconds=0.05)
    ended = list(farm_of(plans, engines, tmp_path).run())
    assert [e.failure for e in ended] == [None] * 4
    assert sorted(str(e.plan.final_image) for e in ended) == sorted(
        str(p.final_image) for p in plans
    )
    builds = [call for engine in engines.values() for call in engine.calls_of("build")]
    assert len(builds) == 12  # every key once
    assert all(len(engine.calls_of("build")) > 0 for engine in engines.values())
    for plan in plans:
        assert engines["local"].inspect(str(plan.final_image)) is not None
    spans = sorted((span for e in engines.values() for span in e.spans), key=lambda s: s[1])
    overlapping = sum(1 for a, b in itertools.pairwise(spans) if b[1] < a[2])
    assert overlapping > 0
    summary = next(e.summary for e in ended if e.summary)
    assert {stage.worker for stage in summary.stages} <= set(engines)


def test_every_stage_a_worker_builds_goes_to_the_registry(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 3, 2))
    engines = fakes("local", "w2", "w3", seconds=0.02)
    ended = list(farm_of(plans, engines, tmp_path).run())
    assert [e.failure for e in ended] == [None] * 3
    registry = engines["local"].registry
    for plan in plans:
        for stage in plan.stages:
            assert registry[f"registry.test/ns/{stage.image}"][STAGE_KEY] == stage.key


def test_a_prefix_shared_by_two_chains_is_built_once(tmp_path: Path) -> None:
    plans = plans_of(GOLDEN_TREE, ["bundle", "accel"])
    engines = fakes("local", "w2")
    ended = list(farm_of(plans, engines, tmp_path).run())
    assert [e.failure for e in ended] == [None, None]
    built = sorted(
        call[1].rsplit("-", 1)[-1] for e in engines.values() for call in e.calls_of("build")
    )
    # bundle is core, frame, accel, bundle; accel is core, accel (another accel: its parent
    # differs): core, the shared prefix, is built once.
    assert built == ["accel", "accel", "bundle", "core", "frame_2.0"]


def test_a_second_run_on_the_farm_builds_nothing(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 3))
    engines = fakes("local", "w2")
    list(farm_of(plans, engines, tmp_path).run())
    for engine in engines.values():
        engine.calls.clear()
    ended = list(farm_of(plans, engines, tmp_path).run())
    assert [e.failure for e in ended] == [None, None]
    assert [call for e in engines.values() for call in e.calls_of("build")] == []
    assert [call for e in engines.values() for call in e.calls_of("run")] == []


def test_a_worker_that_stops_answering_has_its_stage_built_elsewhere(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 3))
    engines = fakes("local", "w2")
    engines["w2"].down = True
    ended = list(farm_of(plans, engines, tmp_path).run())
    assert [e.failure for e in ended] == [None, None]
    assert engines["w2"].calls_of("build")  # it was tried
    assert len(engines["local"].calls_of("build")) == 6
    for plan in plans:
        assert engines["local"].inspect(str(plan.final_image)) is not None


def test_a_stage_only_a_lost_worker_held_is_built_again_for_its_child(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 2))
    engines = fakes("local", "w2")
    engines["w2"].down_after = "*-c1s1"  # gone once it built and tested c1s1
    ended = list(farm_of(plans, engines, tmp_path).run())
    assert [e.failure for e in ended] == [None, None]
    built_here = [call[1].rsplit("-", 1)[-1] for call in engines["local"].calls_of("build")]
    assert sorted(built_here) == ["c0s1", "c0s2", "c1s1", "c1s2"]
    assert [c[1].rsplit("-", 1)[-1] for c in engines["w2"].calls_of("build")][:1] == ["c1s1"]


def test_a_build_error_fails_its_chain_only_and_is_not_retried(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 3))
    engines = fakes("local", "w2")
    for engine in engines.values():
        engine.fail_builds = {"*-c0s2"}
    ended = {str(e.plan.final_image): e for e in farm_of(plans, engines, tmp_path).run()}
    failed = ended[str(plans[0].final_image)].failure
    assert failed is not None
    assert (failed.stage, failed.step) == ("c0s2", "build")
    assert ended[str(plans[1].final_image)].summary is not None
    attempts = [c for e in engines.values() for c in e.calls_of("build") if c[1].endswith("c0s2")]
    assert len(attempts) == 1


def test_stages_go_only_to_workers_whose_labels_fit(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 2))
    engines = fakes("local", "orin")
    ended = list(farm_of(plans, engines, tmp_path, abi="tegra").run())
    assert [e.failure for e in ended] == [None, None]
    assert engines["orin"].calls_of("build") == []


def test_ctrl_c_on_the_farm_stops_it_and_leaves_no_container(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 3))
    engines = fakes("local", "w2")
    for engine in engines.values():
        engine.interrupt_tests = {"*-c1s2"}
    with pytest.raises(KeyboardInterrupt):
        list(farm_of(plans, engines, tmp_path).run())
    assert all(engine.containers == set() for engine in engines.values())


def test_a_farm_without_a_registry_is_one_line_naming_the_setting(
    jetforge, chain_tree: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config" / "jetforge"
    config.mkdir(parents=True)
    (config / "jetforge.toml").write_text('[[workers]]\nname = "d2"\nendpoint = "unix:///x.sock"\n')
    result = jetforge(
        "build", "--workers", "local,d2", "--package-dirs", str(chain_tree),
        "--distro", "debian:12", "--base", "debian:12", "--logs", str(tmp_path / "logs"), "fd",
    )  # fmt: skip
    assert result.code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "jetforge: error: --workers: several workers pass stage images through a registry; "
        "set 'registries' in jetforge.toml or JETFORGE_REGISTRIES"
    )
    unknown = jetforge("build", "--workers", "nope", "--package-dirs", str(chain_tree), "fd")
    # refused before the engine is asked anything (no base image is looked for)
    assert unknown.code == 2
    assert unknown.stderr.splitlines() == [
        "jetforge: error: --workers: unknown worker 'nope' (valid: local, d2)"
    ]


def test_the_live_display_has_a_line_per_stage_naming_its_worker(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 3, 2))
    engines = fakes("local", "w2", "w3", seconds=0.02)
    farm = farm_of(plans, engines, tmp_path)
    stream = io.StringIO()
    with LiveReporter(stream, color=False) as live:
        farm.reporter = Serialized(live)
        ended = list(farm.run())
    assert [e.failure for e in ended] == [None] * 3
    rows = {row.split()[0]: row.split() for row in stream.getvalue().splitlines() if "@" in row}
    workers = {
        stage.package: stage.worker for e in ended if e.summary for stage in e.summary.stages
    }
    for package, worker in workers.items():
        if package == "ca-trust":
            continue
        slug = next(s.slug for p in plans for s in p.stages if s.package == package)
        assert rows[slug][1:4] == ["@", worker, "passed"], rows


def test_a_chain_ending_on_a_shared_stage_built_away_is_tested_there(tmp_path: Path) -> None:
    # c0s2 ends the second chain and is c0s3's parent: built once, under the first chain's
    # names, on w2 (local lacks the base), while both chains end on local
    write_chains(tmp_path / "tree", 1, 3)
    plans = plans_of(tmp_path / "tree", ["c0s3", "c0s2"])
    engines = fakes("local", "w2")
    ended = list(farm_of(plans, engines, tmp_path, no_base=("local",)).run())
    assert [e.failure for e in ended] == [None, None]
    assert engines["local"].calls_of("build") == []
    for plan in plans:
        assert engines["local"].inspect(str(plan.final_image)) is not None


def test_push_on_the_farm_sends_every_stage_built_away_from_home(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 1, 3))
    engines = fakes("local", "w2")
    ended = list(farm_of(plans, engines, tmp_path, no_base=("local",), push="out.test/r").run())
    assert [e.failure for e in ended] == [None]
    pushed = set(engines["local"].registry)
    for stage in plans[0].stages:
        assert f"out.test/r/{stage.image.name}:{stage.image.tag}" in pushed


def test_rebuild_on_the_farm_tags_the_new_images(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 2))
    engines = fakes("local", "w2")
    list(farm_of(plans, engines, tmp_path, no_base=("local",)).run())
    again = list(farm_of(plans, engines, tmp_path, no_base=("local",), rebuild=True).run())
    assert [e.failure for e in again] == [None, None]
    for end in again:
        assert end.summary is not None
        final = engines["local"].inspect(str(end.plan.final_image))
        assert final is not None
        assert final.id == end.summary.stages[-1].image_id
        assert all(stage.state == "built" for stage in end.summary.stages[1:])


def test_registry_names_do_not_stay_on_the_workers(tmp_path: Path) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 2))
    engines = fakes("local", "w2")
    list(farm_of(plans, engines, tmp_path, no_base=("local",)).run())
    for engine in engines.values():
        names = [tag for image in engine.images.values() for tag in image.tags]
        assert not [name for name in names if name.startswith("registry.test/")], names


def test_a_last_stage_only_a_lost_worker_held_is_built_again_before_the_end(
    tmp_path: Path,
) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 2))
    engines = fakes("local", "w2")
    engines["w2"].down_after = "*-c1s2"  # gone once it built and tested c1s2, unpushed
    ended = list(farm_of(plans, engines, tmp_path).run())
    assert [e.failure for e in ended] == [None, None]
    built_here = [call[1].rsplit("-", 1)[-1] for call in engines["local"].calls_of("build")]
    assert "c1s2" in built_here
    assert [c[1].rsplit("-", 1)[-1] for c in engines["w2"].calls_of("build")][-1:] == ["c1s2"]
    for plan in plans:
        assert engines["local"].inspect(str(plan.final_image)) is not None


def test_each_stage_is_listed_where_it_ran_and_the_home_writes_the_lockfile(
    tmp_path: Path,
) -> None:
    plans = plans_of(tmp_path / "tree", write_chains(tmp_path / "tree", 2, 3))
    engines = fakes("local", "w2", seconds=0.02)
    listing = "\n".join(
        (HEADER, "os\tubuntu\t24.04", "deb\tinstall ok installed\tdpkg\t1.22.6\tamd64")
    )
    for engine in engines.values():
        engine.run_output = {"*": listing + "\n"}
    ended = list(farm_of(plans, engines, tmp_path, lock=True).run())
    assert [e.failure for e in ended] == [None] * 2
    for end in ended:
        assert end.summary is not None
        lock = json.loads((tmp_path / "logs" / end.plan.final_image.name / LOCK_FILE).read_text())
        ids = [stage.image_id for stage in end.summary.stages]
        assert [stage["image_id"] for stage in lock["stages"]] == ids
        assert all(stage["inventoried"] for stage in lock["stages"])
    collected = {
        name: {call[1] for call in engine.calls_of("run") if call[2:3] == ("-c",)}
        for name, engine in engines.items()
    }
    workers = {stage.worker for end in ended if end.summary for stage in end.summary.stages}
    assert workers == {"local", "w2"}
    for end in ended:
        assert end.summary is not None
        for stage in end.summary.stages:  # listed by the worker that built it
            assert stage.image_id in collected[stage.worker], (stage.worker, collected)
