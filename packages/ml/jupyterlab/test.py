"""JupyterLab starts a server that answers its REST API, then executes a notebook cell."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import jupyterlab

print("jupyterlab", jupyterlab.__version__)
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
root = tempfile.mkdtemp()
server = subprocess.Popen(
    [
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ip",
        "127.0.0.1",
        f"--port={port}",
        "--ServerApp.token=jetforge",
        f"--ServerApp.root_dir={root}",
    ],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    env={**os.environ, "JUPYTER_RUNTIME_DIR": root},
    start_new_session=True,
)
try:
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"{base}/api/status?token=jetforge", timeout=2) as reply:
                status = json.load(reply)
            break
        except OSError:
            if server.poll() is not None:
                sys.exit(f"jupyter lab exited: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    else:
        sys.exit("jupyter lab did not answer within 60 seconds")
    print("server status:", status)
    with urllib.request.urlopen(f"{base}/lab?token=jetforge", timeout=10) as reply:
        assert reply.status == 200
finally:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)

import nbformat  # noqa: E402 - installed with jupyterlab
from nbclient import NotebookClient  # noqa: E402

notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
assert notebook.cells[0].outputs[0]["text"].strip() == "42", notebook.cells[0].outputs
print("jupyterlab ok")
