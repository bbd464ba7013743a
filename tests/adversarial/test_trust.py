"""CA trust: extra authorities are added to public roots, never replace them; a host that
trusts only its distro's roots gets no trust stage; a bundle that is not PEM is an error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import certifi
import pytest

from jetforge.errors import UsageError
from jetforge.host.trust import (
    DISTRO_ROOTS,
    Bundle,
    extra_certificates,
    prepare_trust_context,
    trust_context,
)
from tests.adversarial.conftest import one_line_error
from tests.conftest import FIXTURES

TEST_CA = FIXTURES / "certs" / "test-ca.crt"
HEADER = "#---\n# name: a\n#---\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
CLEAN = {"SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": "", "PIP_CERT": ""}


def stages(result) -> list[str]:  # type: ignore[no-untyped-def]
    assert result.code == 0, result.stderr
    return [stage["package"] for stage in json.loads(result.stdout)["stages"]]


def test_a_ca_bundle_that_is_not_pem_is_one_line(tree, run, tmp_path):
    root = tree({"a/Dockerfile": HEADER})
    junk = tmp_path / "junk.crt"
    junk.write_bytes(b"\x30\x82\x01\x0a not a PEM file")
    result = run(root, "build", "--simulate", "--ca-bundle", str(junk), "a", env=CLEAN)
    one_line_error(result, 2, f"--ca-bundle: {junk} ")


def test_a_broken_host_bundle_is_named_by_its_variable(tree, run, tmp_path):
    root = tree({"a/Dockerfile": HEADER})
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n")
    result = run(root, "build", "--simulate", "a", env={**CLEAN, "SSL_CERT_FILE": str(broken)})
    one_line_error(result, 2, f"SSL_CERT_FILE: {broken} is not a bundle of PEM certificates")


@pytest.mark.skipif(not DISTRO_ROOTS.is_dir(), reason="the distro has no ca-certificates tree")
def test_a_host_bundle_of_distro_roots_only_adds_no_trust_stage(tree, run, tmp_path):
    roots = sorted(DISTRO_ROOTS.rglob("*.crt"))[:20]
    bundle = tmp_path / "distro-only.crt"
    bundle.write_text("".join(path.read_text() for path in roots))
    root = tree({"a/Dockerfile": HEADER})
    result = run(root, "build", "--simulate", "--json", "a", env={**CLEAN, "PIP_CERT": str(bundle)})
    assert stages(result) == ["a"]
    with_extra = run(
        root, "build", "--simulate", "--json", "--ca-bundle", str(TEST_CA), "a", env=CLEAN
    )
    assert stages(with_extra) == ["ca-trust", "a"]


def test_the_trust_bundle_is_public_roots_plus_the_extras(tmp_path):
    extras = extra_certificates([Bundle(TEST_CA, "--ca-bundle")])
    assert len(extras) == 1
    context = prepare_trust_context(extras, tmp_path)
    text = (context / "ca-bundle.crt").read_text()
    public = Path(certifi.where()).read_text().count("BEGIN CERTIFICATE")
    assert text.count("BEGIN CERTIFICATE") == public + 1
    assert extras[0] in text


@pytest.mark.engine
def test_the_image_trusts_the_extra_ca_and_the_public_roots(
    jetforge, chain_tree, image_name, tmp_path
):
    result = jetforge(
        "build", "--package-dirs", str(chain_tree), "--base", "debian:12", "--distro",
        "debian:12", "--name", image_name, "--ca-bundle", str(TEST_CA), "--logs",
        str(tmp_path / "logs"), "fa",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    shown = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--user",
            "65534",  # nobody: the bundle is for every user of the image (mode 0644)
            result.stdout.strip(),
            "cat",
            "/usr/local/share/ca-certificates/jetforge-ca-bundle.crt",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert TEST_CA.read_text().strip() in shown
    assert shown.count("BEGIN CERTIFICATE") > Path(certifi.where()).read_text().count("BEGIN")


def test_the_trust_answer_is_remembered_until_a_bundle_changes(tmp_path, monkeypatch):
    roots = tmp_path / "roots"
    (roots / "mozilla").mkdir(parents=True)
    bundle = tmp_path / "host.crt"
    bundle.write_text(TEST_CA.read_text())
    monkeypatch.setattr("jetforge.host.stash.SETTLED_NS", 0)  # the files count as settled
    env = {"SSL_CERT_FILE": str(bundle)}
    first = trust_context(None, env, tmp_path / "cache", roots)
    assert first is not None
    assert TEST_CA.read_text().strip() in (first / "ca-bundle.crt").read_text()

    def unread(*_args: object) -> list[str]:
        raise AssertionError("the bundles were read again")

    with monkeypatch.context() as patched:
        patched.setattr("jetforge.host.trust.extra_certificates", unread)
        assert trust_context(None, env, tmp_path / "cache", roots) == first

    (roots / "mozilla" / "test-ca.crt").write_text(TEST_CA.read_text())  # now a distro root
    assert trust_context(None, env, tmp_path / "cache", roots) is None
    (roots / "mozilla" / "test-ca.crt").unlink()
    bundle.write_text("not a bundle\n")
    with pytest.raises(UsageError, match="SSL_CERT_FILE"):
        trust_context(None, env, tmp_path / "cache", roots)
