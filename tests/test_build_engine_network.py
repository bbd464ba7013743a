"""Network settings of builds: CA trust for PyPI, proxies that never reach the image."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import FIXTURES

pytestmark = pytest.mark.engine


def test_pip_install_from_pypi_trusts_host_cas_and_leaks_no_settings(
    jetforge, image_name, tmp_path
):
    logs = tmp_path / "logs"
    secret = "s3cr3t-proxy-password"
    result = jetforge(
        "build",
        "--package-dirs",
        str(FIXTURES / "engine" / "pip"),
        "--distro",
        "debian:12",
        "--base",
        "debian:12",
        "--name",
        image_name,
        "--logs",
        str(logs),
        "--use-proxy",
        "pipstage",
        env={"FTP_PROXY": f"http://jetforge:{secret}@127.0.0.1:9"},
    )
    assert result.code == 0, result.stderr
    plan = json.loads((logs / "plan.json").read_text())
    assert plan["stages"][0]["package"] == "ca-trust"
    assert plan["stages"][-1]["build_args"]["FTP_PROXY"].endswith("@127.0.0.1:9")
    final = result.stdout.strip()
    inspected = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", final], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", final],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    environment = "\n".join(inspected["Config"]["Env"])
    for text in (environment, history):
        assert secret not in text
        assert "FTP_PROXY" not in text
        assert "index-url" not in text.lower()
        assert "PIP_INDEX_URL" not in text
    assert "six 1.16.0" in (logs / "03-pipstage.test.log").read_text()
