"""``jetforge run``: word splitting, probing fixture host roots, and golden engine argv.

The CLI tests drive a stand-in engine program (``fake_engine``) so every probe combination
can be shown on any machine; tests/test_run_engine.py runs real containers.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from jetforge.engine.base import EngineInfo
from jetforge.engine.docker import parse_docker_info
from jetforge.engine.podman import parse_podman_info
from jetforge.engine.table import ENGINES
from jetforge.host.devices import HostProbe, choose_gpu, iter_host_devices, probe_host
from jetforge.ops.launch import NO_GPU_WARNING, RunRequest, iter_options, plan_run, split_run_words

ROOTS = Path(__file__).parent / "fixtures" / "hostroots"
OWN = {"--dry-run": False, "--engine": True, "--host-root": True}
PLAIN_DOCKER = {"ServerVersion": "28.2.2", "Runtimes": {"runc": {}}, "DockerRootDir": "/d"}
NVIDIA_DOCKER = {**PLAIN_DOCKER, "Runtimes": {"nvidia": {}, "runc": {}}}
CDI_DOCKER = {**PLAIN_DOCKER, "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"]}
NO_DISPLAY = {"DISPLAY": "", "XAUTHORITY": ""}


# --- words -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "own", "options", "image", "command"),
    [
        (["img"], (), (), "img", ()),
        (["img", "-v", "x"], (), (), "img", ("-v", "x")),
        (
            ["--dry-run", "-v", "/a:/b", "-it", "--name", "n", "img", "ls", "-l"],
            (("--dry-run", None),),
            ("-v", "/a:/b", "-it", "--name", "n"),
            "img",
            ("ls", "-l"),
        ),
        (["--engine=podman", "--rm", "img"], (("--engine", "podman"),), ("--rm",), "img", ()),
        (["--engine", "podman", "img"], (("--engine", "podman"),), (), "img", ()),
        (["-eA=1", "--network=host", "img"], (), ("-eA=1", "--network=host"), "img", ()),
        (["-ite", "X", "img"], (), ("-ite", "X"), "img", ()),
        (["--init", "--cpus", "2", "img"], (), ("--init", "--cpus", "2"), "img", ()),
        (["--privileged", "--", "img", "--", "x"], (), ("--privileged",), "img", ("--", "x")),
        (["-d"], (), ("-d",), "", ()),
        ([], (), (), "", ()),
    ],
)
def test_split_run_words(words, own, options, image, command):
    split = split_run_words(words, OWN)
    assert (split.own, split.options, split.image, split.command) == (
        own,
        options,
        image,
        command,
    )


def test_iter_options_normalises_short_and_aliased_names():
    options = ["-it", "-eA=1", "-e", "B", "-v/x:/y", "--net", "bridge", "--rm=false", "-u=1"]
    assert list(iter_options(options)) == [
        ("--interactive", None),
        ("--tty", None),
        ("--env", "A=1"),
        ("--env", "B"),
        ("--volume", "/x:/y"),
        ("--network", "bridge"),
        ("--rm", "false"),
        ("--user", "1"),
    ]


# --- engine info and probing -------------------------------------------------------------


def test_parse_docker_info():
    text = json.dumps(
        {
            "ServerVersion": "28.2.2",
            "Runtimes": {"runc": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"}},
            "DefaultRuntime": "runc",
            "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"],
            "DockerRootDir": "/var/lib/docker",
        }
    )
    assert parse_docker_info(text) == EngineInfo(
        "28.2.2", ("nvidia", "runc"), "runc", ("/etc/cdi", "/var/run/cdi"), "/var/lib/docker"
    )
    # Docker before 25 says nothing about CDI: no CDI devices.
    assert parse_docker_info('{"ServerVersion": "20.10.24"}').cdi_spec_dirs == ()
    assert parse_docker_info("not json") == EngineInfo()


def test_parse_podman_info():
    text = json.dumps(
        {
            "host": {"ociRuntime": {"name": "crun"}},
            "store": {"graphRoot": "/var/lib/containers/storage"},
            "version": {"Version": "4.3.1"},
        }
    )
    assert parse_podman_info(text) == EngineInfo(
        "4.3.1", ("crun",), "crun", ("/etc/cdi", "/var/run/cdi"), "/var/lib/containers/storage"
    )


def test_devices_present_on_the_host_in_natural_order():
    assert list(iter_host_devices(ROOTS / "devices")) == [
        "/dev/video0",
        "/dev/video1",
        "/dev/video2",
        "/dev/video10",
        "/dev/i2c-0",
        "/dev/i2c-7",
        "/dev/snd",
        "/dev/bus/usb",
        "/dev/ttyACM0",
        "/dev/ttyUSB0",
        "/dev/ttyUSB1",
    ]
    assert list(iter_host_devices(ROOTS / "bare")) == []


def probe_with(root: Path, env: dict[str, str], engine: str, info: EngineInfo) -> HostProbe:
    """``probe_host`` for what the engine ``engine`` (a name of the table) says in ``info``."""
    gpus_flag = ENGINES[engine].gpus_flag
    return probe_host(
        root, env, runtimes=info.runtimes, cdi_spec_dirs=info.cdi_spec_dirs, gpus_flag=gpus_flag
    )


@pytest.mark.parametrize(
    ("root", "engine", "info", "kind"),
    [
        ("bare", "docker", EngineInfo(runtimes=("nvidia", "runc")), "runtime"),
        ("cdi", "docker", EngineInfo(cdi_spec_dirs=("/etc/cdi", "/var/run/cdi")), "cdi"),
        ("cdi", "podman", parse_podman_info("{}"), "cdi"),
        # CDI specs, but a daemon that does not read them (docker < 25, or CDI disabled).
        ("cdi", "docker", EngineInfo(), "none"),
        ("cdi-other", "docker", EngineInfo(cdi_spec_dirs=("/etc/cdi",)), "none"),
        ("gpus-hook", "docker", EngineInfo(), "gpus"),
        ("gpus-hook", "podman", EngineInfo(), "none"),
        ("bare", "docker", EngineInfo(runtimes=("runc",)), "none"),
    ],
)
def test_gpu_access_is_probed_in_order(root, engine, info, kind):
    probe = probe_with(ROOTS / root, {}, engine, info)
    assert choose_gpu(probe).kind == kind


def test_probe_reads_display_settings_only_with_a_display():
    root = ROOTS / "devices"
    env = {"DISPLAY": ":0", "HOME": "/home/user"}
    probe = probe_with(root, env, "docker", EngineInfo())
    assert (probe.display, probe.x11_sockets, probe.xauthority) == (
        ":0",
        True,
        "/home/user/.Xauthority",
    )
    assert probe.jtop_socket
    assert probe.localtime
    missing = probe_with(root, {**env, "XAUTHORITY": "/nowhere"}, "docker", EngineInfo())
    assert missing.xauthority == ""
    without = probe_with(root, {"HOME": "/home/user"}, "docker", EngineInfo())
    assert (without.display, without.x11_sockets, without.xauthority) == ("", False, "")


# --- planning (pure) ---------------------------------------------------------------------


def test_plan_on_a_terminal_adds_it_unless_the_user_chose():
    request = RunRequest("img", terminal=True)
    assert plan_run(HostProbe(), request).options[:2] == ("--rm", "-it")
    detached = RunRequest("img", user_options=("-d",), terminal=True)
    assert "-it" not in plan_run(HostProbe(), detached).options
    plain = RunRequest("img", terminal=False)
    assert "-it" not in plan_run(HostProbe(), plain).options


def test_plan_warns_once_without_gpu_and_never_adds_privileged():
    plan = plan_run(HostProbe(), RunRequest("img", ("true",)))
    assert plan.warnings == (NO_GPU_WARNING,)
    assert plan.gpu == "none"
    assert plan.words == ("--rm", "--network", "host", "img", "true")
    given = plan_run(HostProbe(), RunRequest("img", user_options=("--privileged",)))
    assert given.words.count("--privileged") == 1


def test_user_gpu_option_replaces_the_probe_and_its_warning():
    probe = HostProbe(runtimes=("nvidia",))
    plan = plan_run(probe, RunRequest("img", user_options=("--gpus", "device=1")))
    assert (plan.gpu, plan.warnings) == ("user", ())
    assert "nvidia" not in plan.options
    cdi = RunRequest("img", user_options=("--device=nvidia.com/gpu=0",))
    assert plan_run(HostProbe(), cdi).warnings == ()


@pytest.mark.parametrize(
    ("user", "dropped"),
    [
        (("--net=bridge",), ("--network", "host")),
        (("--mount", "type=bind,source=/srv,target=/data/"), ("--volume", "/d:/data")),
        (("-v/srv:/data:ro",), ("--volume", "/d:/data")),
        (("--tmpfs", "/etc/localtime"), ("--volume", "/etc/localtime:/etc/localtime:ro")),
        (("--device=/dev/video0:/dev/video0:rw",), ("--device", "/dev/video0")),
        (("--rm=false",), ("--rm",)),
        (("-eXAUTHORITY=/x",), ("--env", "XAUTHORITY=/tmp/.Xauthority")),
    ],
)
def test_each_user_option_replaces_its_default(user, dropped):
    probe = HostProbe(
        localtime=True,
        display=":0",
        xauthority="/home/u/.Xauthority",
        devices=("/dev/video0",),
    )
    default = plan_run(probe, RunRequest("img", data_dir="/d")).options
    chosen = plan_run(probe, RunRequest("img", user_options=user, data_dir="/d"))
    pairs = list(pairwise(default))
    assert dropped in pairs or dropped == ("--rm",)
    mine = chosen.options[: len(chosen.options) - len(user)]
    assert chosen.options[len(mine) :] == user
    if len(dropped) == 2:
        assert dropped not in list(pairwise(mine))
    else:
        assert dropped[0] not in mine


# --- the command line, golden argv --------------------------------------------------------


def dry_run(jetforge, env, root, *words):
    result = jetforge("run", "--dry-run", "--host-root", str(ROOTS / root), *words, env=env)
    assert result.code == 0, result.stderr
    return result.stdout.strip(), result.stderr


def data_mount(tmp_path):
    return f"{tmp_path}/data/jetforge/data:/data"


@pytest.mark.process
def test_golden_nvidia_runtime_with_every_device(jetforge, fake_engine, tmp_path):
    env = {**fake_engine(NVIDIA_DOCKER), **NO_DISPLAY}
    line, stderr = dry_run(jetforge, env, "devices", "img:1", "python3", "-c", "print(1)")
    program = env["JETFORGE_DOCKER"]
    assert line == (
        f"{program} run --rm --network host --runtime nvidia "
        f"--volume {data_mount(tmp_path)} --volume /etc/localtime:/etc/localtime:ro "
        "--device /dev/video0 --device /dev/video1 --device /dev/video2 --device /dev/video10 "
        "--device /dev/i2c-0 --device /dev/i2c-7 --device /dev/snd --device /dev/bus/usb "
        "--device /dev/ttyACM0 --device /dev/ttyUSB0 --device /dev/ttyUSB1 "
        "--volume /run/jtop.sock:/run/jtop.sock "
        "-- img:1 python3 -c 'print(1)'"
    )
    assert stderr == ""


@pytest.mark.process
def test_golden_cdi_only(jetforge, fake_engine, tmp_path):
    env = {**fake_engine(CDI_DOCKER), **NO_DISPLAY}
    line, stderr = dry_run(jetforge, env, "cdi", "img")
    assert line.split(" ", 1)[1] == (
        f"run --rm --network host --device nvidia.com/gpu=all --volume {data_mount(tmp_path)} "
        "-- img"
    )
    assert stderr == ""


@pytest.mark.process
def test_golden_cdi_on_podman(jetforge, fake_engine, tmp_path):
    info = {"host": {"ociRuntime": {"name": "crun"}}, "version": {"Version": "4.3.1"}}
    env = {**fake_engine(info, engine="podman"), **NO_DISPLAY}
    line, _ = dry_run(jetforge, env, "cdi", "img")
    assert line == (
        f"{env['JETFORGE_PODMAN']} run --rm --network host --device nvidia.com/gpu=all "
        f"--volume {data_mount(tmp_path)} -- img"
    )


@pytest.mark.process
def test_golden_gpus_only(jetforge, fake_engine, tmp_path):
    env = {**fake_engine(PLAIN_DOCKER), **NO_DISPLAY}
    line, stderr = dry_run(jetforge, env, "gpus-hook", "img")
    assert line.split(" ", 1)[1] == (
        f"run --rm --network host --gpus all --volume {data_mount(tmp_path)} -- img"
    )
    assert stderr == ""


@pytest.mark.process
def test_golden_no_gpu_is_one_warning_line(jetforge, fake_engine, tmp_path):
    env = {**fake_engine(PLAIN_DOCKER), **NO_DISPLAY}
    line, stderr = dry_run(jetforge, env, "bare", "img", "sh", "-c", "echo $HOME")
    assert line.split(" ", 1)[1] == (
        f"run --rm --network host --volume {data_mount(tmp_path)} "
        "--volume /etc/localtime:/etc/localtime:ro -- img sh -c 'echo $HOME'"
    )
    assert stderr.splitlines() == [f"jetforge: warning: {NO_GPU_WARNING}"]


@pytest.mark.process
def test_golden_display_mounts_x11_and_xauthority(jetforge, fake_engine, tmp_path):
    env = {**fake_engine(NVIDIA_DOCKER), "DISPLAY": ":1", "XAUTHORITY": "", "HOME": "/home/user"}
    line, _ = dry_run(jetforge, env, "devices", "img")
    words = line.split(" ")
    start = words.index("--env")
    assert words[start : start + 10] == [
        "--env",
        "DISPLAY",
        "--volume",
        "/tmp/.X11-unix:/tmp/.X11-unix",
        "--volume",
        "/home/user/.Xauthority:/tmp/.Xauthority:ro",
        "--env",
        "XAUTHORITY=/tmp/.Xauthority",
        "--device",
        "/dev/video0",
    ]
    unset, _ = dry_run(jetforge, {**env, "DISPLAY": ""}, "devices", "img")
    assert "DISPLAY" not in unset
    assert "X11" not in unset


@pytest.mark.process
def test_user_options_are_passed_through_and_win(jetforge, fake_engine, tmp_path):
    env = {**fake_engine(NVIDIA_DOCKER), "DISPLAY": ":1", "XAUTHORITY": "", "HOME": "/home/user"}
    line, stderr = dry_run(
        jetforge,
        env,
        "devices",
        "--network",
        "bridge",
        "-v",
        "/srv/d:/data",
        "--runtime=runc",
        "--device",
        "/dev/video0",
        "-e",
        "DISPLAY=:7",
        "--name",
        "mine",
        "--privileged",
        "img",
        "true",
    )
    words = line.split(" ")
    assert words[1:3] == ["run", "--rm"]
    assert words[-15:] == [
        "--network",
        "bridge",
        "-v",
        "/srv/d:/data",
        "--runtime=runc",
        "--device",
        "/dev/video0",
        "-e",
        "DISPLAY=:7",
        "--name",
        "mine",
        "--privileged",
        "--",
        "img",
        "true",
    ]
    defaults = words[: words.index("bridge") - 1]
    assert "host" not in defaults
    assert "nvidia" not in defaults
    assert data_mount(tmp_path) not in defaults
    assert "/dev/video0" not in defaults
    assert "DISPLAY" not in defaults
    assert "/dev/video1" in defaults
    assert stderr == ""


@pytest.mark.process
def test_never_privileged_and_no_tty_when_not_a_terminal(jetforge, fake_engine):
    for root in ("bare", "cdi", "devices", "gpus-hook"):
        line, _ = dry_run(jetforge, {**fake_engine(CDI_DOCKER), "DISPLAY": ":0"}, root, "img")
        assert "--privileged" not in line
        assert "-it" not in line.split(" ")


@pytest.mark.process
def test_host_root_from_the_environment(jetforge, fake_engine):
    env = {**fake_engine(PLAIN_DOCKER), "JETFORGE_HOST_ROOT": str(ROOTS / "gpus-hook")}
    result = jetforge("run", "--dry-run", "img", env=env)
    assert "--gpus all" in result.stdout


@pytest.mark.process
def test_run_returns_the_container_exit_code(jetforge, fake_engine, capfd, tmp_path):
    env = {**fake_engine(NVIDIA_DOCKER), **NO_DISPLAY, "JETFORGE_FAKE_EXIT": "7"}
    result = jetforge("run", "--host-root", str(ROOTS / "bare"), "img", "true", env=env)
    assert result.code == 7
    # The engine runs on jetforge's own stdout, not through it.
    assert capfd.readouterr().out.startswith("run --rm --network host --runtime nvidia")
    assert (tmp_path / "data" / "jetforge" / "data").is_dir()


def test_missing_image_is_a_usage_error(jetforge, fake_engine):
    result = jetforge("run", "--dry-run", "-v", "/a:/b", env=fake_engine(PLAIN_DOCKER))
    assert result.code == 2
    assert "name an IMAGE or PACKAGE" in result.stderr


def test_help_lists_own_options(jetforge):
    result = jetforge("run", "--help")
    assert result.code == 0
    assert "--dry-run" in result.stdout
    assert "IMAGE|PACKAGE" in result.stdout
