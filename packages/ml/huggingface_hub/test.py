"""huggingface_hub imports, builds hub URLs, and reads a snapshot from a local cache.

No network access: the cache is laid out by hand and read in offline mode.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import huggingface_hub
from huggingface_hub import hf_hub_url

print("huggingface_hub", huggingface_hub.__version__)
url = hf_hub_url("openai-community/gpt2", "config.json", revision="main")
assert url == "https://huggingface.co/openai-community/gpt2/resolve/main/config.json", url

with tempfile.TemporaryDirectory() as cache:
    commit = "0" * 40
    repo = Path(cache) / "models--jetforge--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"hidden_size": 4}')
    found = huggingface_hub.hf_hub_download(
        "jetforge/tiny", "config.json", cache_dir=cache, local_files_only=True
    )
    assert Path(found).read_text() == '{"hidden_size": 4}', found
    info = huggingface_hub.scan_cache_dir(cache)
    assert [r.repo_id for r in info.repos] == ["jetforge/tiny"], info.repos

cli = shutil.which("hf") or shutil.which("huggingface-cli")
assert cli, "no hf / huggingface-cli command"
subprocess.run([cli, "--help"], check=True, capture_output=True)
print("huggingface_hub ok")
