"""Config scripts and the processes around them (the hardening issue's scripts part): what
a script reads is what its remembered answer depends on, a failure is remembered like any
other answer, the network is not there, nothing a scan starts outlives it, one script's
damage stays its own; and results never share stdout with diagnostics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from subprocess import PIPE

import pytest

import jetforge.discovery.scripts
import jetforge.host.stash
from tests.adversarial.conftest import one_line_error
from tests.conftest import CliResult

HEADER = "#---\n# name: {}\n#---\nARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"
NO_ENGINE = {"JETFORGE_SHIPPED_PACKAGES": "", "JETFORGE_DOCKER": "/nonexistent/docker"}


def jetforge_process(root: Path, *argv: str, shell: str = '"$@"') -> list[str]:
    """The argv of ``python -m jetforge ARGV --package-dirs ROOT`` as its own process,
    through ``sh -c SHELL`` (for redirections)."""
    command = [sys.executable, "-m", "jetforge", *argv, "--package-dirs", str(root)]
    return ["sh", "-c", f"exec {shell}", "sh", *command]


def test_warnings_never_reach_stdout_when_stderr_is_closed(tree, cli_env):
    root = tree(
        {
            "bad/Dockerfile": "#---\n# name: bad\n# depnds: x\n#---\nFROM x\n",
            "good/Dockerfile": HEADER.format("good"),
        }
    )
    env = {**cli_env, **NO_ENGINE}
    argv = jetforge_process(root, "list", shell='"$@" 2>&-')
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0
    assert done.stdout == "good\n"  # the warning about 'bad' went nowhere, not here


def _alias_bomb(indent: str) -> str:
    """Billion laughs: nine levels of nine aliases each, a few hundred bytes of YAML that
    expand to 9**9 strings wherever the value is copied or printed."""
    lines = [f'{indent}A: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for before, level in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{indent}{level.upper()}: &{level} [{', '.join([f'*{before}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _limited_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a regression fails, not the host


@pytest.mark.parametrize(
    ("files", "argv", "where"),
    [
        (
            {"bomb/package.yaml": "build_args:\n" + _alias_bomb("  ")},
            (),
            "bomb/package.yaml:7:",
        ),
        (
            {"bomb/Dockerfile": "#---\n# build_args:\n" + _alias_bomb("#   ") + "#---\nFROM x\n"},
            (),
            "bomb/Dockerfile:8:",
        ),
        (
            {"bomb/config.yaml": "build_args:\n" + _alias_bomb("  ")},
            ("--package-format", "jc"),
            "bomb/config.yaml:7:",
        ),
    ],
    ids=["package.yaml", "header", "jc-config.yaml"],
)
def test_a_yaml_alias_bomb_is_one_line_quickly_in_bounded_memory(tree, cli_env, files, argv, where):
    root = tree({"bomb/Dockerfile": HEADER.format("bomb"), **files})
    env = {**cli_env, **NO_ENGINE}
    command = jetforge_process(root, "build", "--simulate", "bomb", *argv)
    started = time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=_limited_memory,
    )
    assert time.monotonic() - started < 15
    result = CliResult(done.returncode, done.stdout, done.stderr)
    one_line_error(result, 2, where, "YAML aliases expand this to over 1000000 values")


# --- what a script reads is what its answer depends on (1, 6) ---------------------------

CONFIGURE = "def configure(package, platform):\n"


def script(body: str) -> str:
    """A jetforge ``configure()`` whose body is ``body``."""
    return CONFIGURE + "".join(f"    {line}\n" for line in body.splitlines())


@pytest.fixture
def settled(monkeypatch):  # type: ignore[no-untyped-def]
    """The index trusts files the moment they are written (the real rule waits a second)."""
    monkeypatch.setattr(jetforge.host.stash, "SETTLED_NS", 0)


def names(result) -> list[str]:  # type: ignore[no-untyped-def]
    assert result.code == 0, result.stderr
    return result.stdout.split()


def runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_a_file_or_directory_a_script_reads_outside_the_tree_is_an_input(
    tree, run, tmp_path, settled
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "versions.txt").write_text("1.0\n")
    (tmp_path / "beside.txt").write_text("a\n")
    (data / "extras").mkdir()
    counter = tmp_path / "runs"
    body = (
        f"open({str(counter)!r}, 'a').write('ran\\n')\n"
        f"version = open({str(data / 'versions.txt')!r}).read().strip()\n"
        "import os, pathlib\n"
        "beside = pathlib.Path(package.path).parents[1] / 'beside.txt'\n"  # next to the tree
        f"extras = sorted(os.listdir({str(data / 'extras')!r}))\n"
        "notes = beside.read_text().strip() + ' ' + ','.join(extras)\n"
        "return package.replace(name=f'widget:{version}', notes=notes)"
    )
    root = tree({"widget/Dockerfile": HEADER.format("widget"), "widget/config.py": script(body)})
    show = ("show", "--json")
    first = run(root, *show)
    assert [(v["name"], v["notes"]) for v in json.loads(first.stdout)] == [("widget:1.0", "a ")]
    assert runs(counter) == 1
    run(root, *show)
    assert runs(counter) == 1  # nothing changed: the index answers
    (data / "versions.txt").write_text("2.0\n")
    assert names(run(root, "list")) == ["widget:2.0"]
    (tmp_path / "beside.txt").write_text("b\n")
    (data / "extras" / "x").write_text("")
    assert [v["notes"] for v in json.loads(run(root, *show).stdout)] == ["b x"]
    assert runs(counter) == 3


def test_a_file_a_jc_script_reads_outside_the_tree_is_an_input(tree, run, tmp_path, settled):
    data = tmp_path / "versions.txt"
    data.write_text("12.6\n")
    root = tree(
        {
            "cudalike/Dockerfile": "#---\n# name: cudalike\n# buildkit_device: ''\n#---\nFROM x\n",
            "cudalike/config.py": (
                f"version = open({str(data)!r}).read().strip()\n"
                "package['name'] = 'cudalike:' + version\n"
            ),
        }
    )
    assert names(run(root, "list")) == ["cudalike:12.6"]
    data.write_text("13.0\n")
    assert names(run(root, "list")) == ["cudalike:13.0"]


def test_a_variable_read_as_bytes_is_an_input(tree, run, tmp_path, settled):
    counter = tmp_path / "runs"
    body = (
        f"open({str(counter)!r}, 'a').write('ran\\n')\n"
        "import os\n"
        "version = os.environb.get(b'WIDGET_VERSION', b'1.0').decode()\n"
        "return package.replace(name=f'widget:{version}')"
    )
    root = tree({"widget/Dockerfile": HEADER.format("widget"), "widget/config.py": script(body)})
    assert names(run(root, "list")) == ["widget:1.0"]
    assert names(run(root, "list", env={"WIDGET_VERSION": "2.0"})) == ["widget:2.0"]
    assert names(run(root, "list", env={"WIDGET_VERSION": "2.0"})) == ["widget:2.0"]
    assert runs(counter) == 2


def test_jc_scripts_run_other_programs(tree, run):
    # jc's own hw/canable and hw/pl2303 do: subprocess passes bytes keys to the environment
    root = tree(
        {
            "canlike/Dockerfile": "#---\n# name: canlike\n# buildkit_device: ''\n#---\nFROM x\n",
            "canlike/config.py": (
                "import subprocess, os\n"
                "done = subprocess.run(['sh', '-c', 'echo $HOME'], capture_output=True,\n"
                "                      text=True)\n"
                "subprocess.run('true', shell=True, check=True)\n"
                "package['notes'] = done.stdout.strip() + ' ' + os.environ['HOME']\n"
            ),
        }
    )
    result = run(root, "show", "--json", env={"HOME": "/home/someone"})
    assert result.code == 0, result.stderr
    assert "ended the process" not in result.stderr
    (shown,) = json.loads(result.stdout)
    assert shown["notes"] == "/home/someone /home/someone"


# --- a failure is remembered like any other answer (3) -----------------------------------


def test_a_script_that_timed_out_is_not_run_again_until_its_inputs_change(
    tree, run, tmp_path, settled
):
    counter = tmp_path / "runs"
    body = (
        f"open({str(counter)!r}, 'a').write('ran\\n')\n"
        "import os\n"
        "if os.environ.get('WIDGET_FIXED'):\n"
        "    return package\n"
        "while True:\n"
        "    pass"
    )
    root = tree(
        {
            "loops/Dockerfile": HEADER.format("loops"),
            "loops/config.py": script(body),
            "other/Dockerfile": HEADER.format("other"),
        }
    )
    timeout = {"JETFORGE_CONFIG_TIMEOUT": "1"}
    message = "loops/config.py: config script did not finish within 1 s"
    started = time.monotonic()
    first = run(root, "list", env=timeout)
    assert time.monotonic() - started >= 1
    assert names(first) == ["other"]
    assert message in first.stderr
    started = time.monotonic()
    again = run(root, "list", env=timeout)
    assert time.monotonic() - started < 1  # remembered, not waited for again
    assert names(again) == ["other"]
    assert message in again.stderr
    assert runs(counter) == 1
    assert "within 2 s" in run(root, "list", env={"JETFORGE_CONFIG_TIMEOUT": "2"}).stderr
    assert names(run(root, "list", env={**timeout, "WIDGET_FIXED": "1"})) == ["loops", "other"]
    assert runs(counter) == 3  # a longer limit and the variable it read: run again


@pytest.mark.parametrize("kind", ["jetforge", "jc"])
def test_a_script_that_raised_runs_again_when_what_it_read_changes(
    tree, run, tmp_path, settled, kind
):
    counter = tmp_path / "runs"
    check = (
        f"open({str(counter)!r}, 'a').write('ran\\n')\n"
        "import os\n"
        "if os.environ.get('WIDGET_BROKEN'):\n"
        "    raise ValueError('broken on purpose')\n"
    )
    if kind == "jetforge":
        files = {"widget/config.py": script(check + "return package")}
        header = HEADER.format("widget")
    else:
        files = {"widget/config.py": check + "package['notes'] = 'fine'\n"}
        header = "#---\n# name: widget\n# buildkit_device: ''\n#---\nFROM x\n"
    root = tree({"widget/Dockerfile": header, **files})
    broken = {"WIDGET_BROKEN": "1"}
    assert "broken on purpose" in run(root, "list", env=broken).stderr
    assert "broken on purpose" in run(root, "list", env=broken).stderr
    assert runs(counter) == 1
    assert names(run(root, "list")) == ["widget"]  # the variable changed: no stale error
    assert runs(counter) == 2


# --- no network (4) -----------------------------------------------------------------------


def _namespaces_available() -> bool:
    """Whether this host lets the script worker have a network namespace of its own
    (asked in a process of its own: this one keeps its namespaces)."""
    probe = "from jetforge.discovery.sandbox import isolate; print(isolate().network)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return done.stdout.strip() == "True"


def test_config_scripts_reach_no_listener_by_any_means(tree, run, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    connect = f"socket.create_connection(('127.0.0.1', {port}), timeout=3)"
    body = (
        "import socket, _socket, subprocess, sys, ctypes, struct\n"
        "results = []\n"
        "def attempt(name, act):\n"
        "    try:\n"
        "        act()\n"
        "        results.append(name + ':connected')\n"
        "    except BaseException as error:\n"
        "        results.append(name + ':' + type(error).__name__)\n"
        f"attempt('socket', lambda: {connect})\n"
        "def raw():\n"
        "    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n"
        "    s.settimeout(3)\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
        "attempt('_socket', raw)\n"
        "def native():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)\n"
        f"    address = struct.pack('=H', socket.AF_INET) + struct.pack('!H', {port})\n"
        "    address += bytes([127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])\n"
        "    if libc.connect(fd, address, len(address)) != 0:\n"
        "        raise OSError(ctypes.get_errno(), 'connect')\n"
        "attempt('ctypes', native)\n"
    )
    if _namespaces_available():  # another program is kept off the network by the kernel
        child = [sys.executable, "-c", f"import socket; {connect}"]
        body += (
            f"done = subprocess.run({child!r}, capture_output=True)\n"
            "results.append('program:' + ('connected' if done.returncode == 0 else 'failed'))\n"
        )
    body += "return package.replace(notes=' '.join(results))"
    root = tree({"nosy/Dockerfile": HEADER.format("nosy"), "nosy/config.py": script(body)})
    started = time.monotonic()
    result = run(root, "show", "--json")
    assert time.monotonic() - started < 15  # refused at once, not timed out
    assert result.code == 0, result.stderr
    (shown,) = json.loads(result.stdout)
    assert "connected" not in shown["notes"], shown["notes"]
    with pytest.raises(BlockingIOError):
        listener.accept()  # no connection ever arrived
    listener.close()


# --- nothing a scan starts outlives it (5) -----------------------------------------------


def _marked(mark: str) -> list[int]:
    """The processes (not zombies) whose environment holds ``JETFORGE_TEST_MARK=mark``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"JETFORGE_TEST_MARK={mark}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(("number", "code", "said"), [(1, 129, "hung up"), (15, 143, "terminated")])
def test_sighup_or_sigterm_during_a_scan_leaves_no_process(
    tree, cli_env, tmp_path, number, code, said
):
    started = tmp_path / "started"
    body = (
        "import subprocess\n"
        "subprocess.Popen(['sleep', '1000'])\n"
        "subprocess.Popen(['sleep', '1001'], start_new_session=True)\n"  # out of the group
        f"open({str(started)!r}, 'w').close()\n"
        "while True:\n"
        "    pass"
    )
    root = tree({"loops/Dockerfile": HEADER.format("loops"), "loops/config.py": script(body)})
    mark = uuid.uuid4().hex
    env = {**cli_env, **NO_ENGINE, "JETFORGE_CONFIG_TIMEOUT": "300", "JETFORGE_TEST_MARK": mark}
    try:
        with subprocess.Popen(
            jetforge_process(root, "list"), env=env, stdout=PIPE, stderr=PIPE, text=True
        ) as process:
            deadline = time.monotonic() + 60
            while not started.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert started.exists(), "the script never ran"
            assert len(_marked(mark)) >= 4  # jetforge, the worker, the script, two sleeps
            process.send_signal(number)
            _, stderr = process.communicate(timeout=30)
        assert process.returncode == code
        assert f"jetforge: {said}; nothing that was built is lost" in stderr
        assert "Traceback" not in stderr
        deadline = time.monotonic() + 10
        while _marked(mark) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _marked(mark) == []  # no worker, script process or grandchild is left
    finally:
        for pid in _marked(mark):  # a failure here leaves the shared machine clean
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# --- each script is judged on its own (7) -------------------------------------------------


def test_a_script_that_damages_its_process_is_blamed_alone(tree, run, monkeypatch):
    monkeypatch.setattr(jetforge.discovery.scripts, "LANES", 1)  # one process, in this order
    innocent = "import json, os\nreturn package.replace(notes=json.dumps(os.path.join('a', 'b')))"
    guilty = {
        "a1": "import sys\nsys.modules.clear()\nreturn package",
        "a3": "import sys\nsys.modules['json'] = None\nreturn package",
        "a5": "import os\nos.path.join = None\nreturn package",  # found by its victim
        "a7": "import sys\ndel sys.modules['os']\nreturn package",
    }
    files: dict[str, str | bytes] = {}
    for name in ("a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"):
        files[f"{name}/Dockerfile"] = HEADER.format(name)
        files[f"{name}/config.py"] = script(guilty.get(name, innocent))
    jc = "#---\n# name: {}\n# buildkit_device: ''\n#---\nFROM x\n"
    jc_scripts = {
        "b1": "import jetson_containers\njetson_containers.L4T_VERSION = 'rewritten'\n",
        "b2": "from jetson_containers import L4T_VERSION\npackage['notes'] = str(L4T_VERSION)\n",
        "b3": "import os\nos.environ['LEAKED'] = 'yes'\npackage['notes'] = 'leaks'\n",
        "b4": "import os\npackage['notes'] = os.environ.get('LEAKED', 'no')\n",
    }
    for name, text in jc_scripts.items():
        files[f"{name}/Dockerfile"] = jc.format(name)
        files[f"{name}/config.py"] = text
    root = tree(files)
    result = run(root, "show", "--json", "a*", "b*")
    assert result.code == 0, result.stderr
    notes = {shown["name"]: shown["notes"] for shown in json.loads(result.stdout)}
    for name in ("a2", "a4", "a6", "a8"):
        assert notes.get(name) == '"a/b"', (name, result.stderr)
        assert f"{name}/config.py" not in result.stderr
    assert notes["b2"] not in ("rewritten", "")
    assert notes["b4"] == "no"


FORGED_PICKLE = (
    "import base64, pickle\n"
    "class Payload:\n"
    "    def __reduce__(self):\n"
    "        return (open, ({marker!r}, 'w'))\n"
    "specs = base64.b64encode(pickle.dumps(Payload())).decode()\n"
)


@pytest.mark.parametrize(
    "forged",
    [
        "specs",  # a pickle that would make a file in jetforge's process
        "{}",
        "{'specs': '!!!'}",
        "{'error': 5}",
        "{'specs': [{'name': 5, 'path': '/', 'source': '/'}]}",
        "{'specs': [{'name': 'x', 'path': '/', 'source': '/', 'run': 'rm -rf /'}]}",
        "[1, 2]",
    ],
)
def test_an_answer_a_script_forges_is_its_own_error_never_code(tree, run, tmp_path, forged):
    """The worker's pipe is open to the scripts it runs: a line a script writes there is
    taken as plain data, checked, and is that package's error (the others are listed);
    nothing in it is ever unpickled or run."""
    marker = tmp_path / "ran-in-jetforge"
    body = (
        "import json, os\n"
        + FORGED_PICKLE.format(marker=str(marker))
        + f"forged = {forged}\n"
        + "answer = {'specs': forged} if isinstance(forged, str) else forged\n"
        + "line = (json.dumps(['answer', answer, True]) + '\\n').encode()\n"
        + "for fd in range(3, 256):\n"
        + "    try:\n"
        + "        os.write(fd, line)\n"
        + "    except OSError:\n"
        + "        pass\n"
        + "return package\n"
    )
    root = tree(
        {
            "esc/Dockerfile": HEADER.format("esc"),
            "esc/config.py": script(body),
            "good/Dockerfile": HEADER.format("good"),
        }
    )
    result = run(root, "list")
    assert not marker.exists()
    assert result.code == 0, result.stderr
    assert "internal error" not in result.stderr
    listed = result.stdout.split()
    assert listed in (["good"], ["esc", "good"])  # (a line the worker ignores: its answer)
    assert listed == ["esc", "good"] or "esc/config.py" in result.stderr


def test_variants_that_share_one_large_value_count_at_their_full_size(tree, run):
    """The answer's limit is on what it holds, not on a compact encoding of it: 40
    variants sharing one 1 MB note are 40 MB of answer, over the limit."""
    body = (
        "note = 'y' * 1_000_000\n"
        "return [package.replace(name=f'bomb:v{n}', notes=note) for n in range(40)]\n"
    )
    root = tree(
        {
            "bomb/Dockerfile": HEADER.format("bomb"),
            "bomb/config.py": script(body),
            "good/Dockerfile": HEADER.format("good"),
        }
    )
    result = run(root, "list")
    assert result.code == 0, result.stderr
    assert result.stdout.split() == ["good"]
    assert "bomb/config.py: config script's answer (its variants) is larger than" in result.stderr
