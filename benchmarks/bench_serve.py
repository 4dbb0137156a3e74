"""Milliseconds a prediction takes through `mnistnet serve`, as the page sees it.

    python benchmarks/bench_serve.py                          # trains a small model first
    python benchmarks/bench_serve.py --model runs/multiclass/model.npz --json

Not a test. Starts ``python -m mnistnet serve MODEL --port 0`` as its own
process, then posts a canvas-sized drawing (a bundled test digit enlarged to
280x280 and saved as PNG, as the page's canvas sends it) to
``/api/predict`` over one kept-alive connection, as a browser does, and
times each round trip: request sent, PNG decoded, preprocessed, classified,
JSON answer received. Reports the median and the 90th percentile of
``--requests`` round trips after a few warm-up ones. Goal: a median under
50 ms on 2 cores.
"""

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_predict import train_model
from PIL import Image

from mnistnet.datasets import load_split

GOAL_MS = 50.0
WARM_UP = 5


def canvas_png():
    """A bundled test digit as the page's 280x280 canvas would send it (PNG, RGBA)."""
    digit = load_split("mnist-sample", "test").images[0]
    image = Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR).convert("RGBA")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def start_server(model):
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistnet", "serve", model, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # its "Terminated." when we stop it
        text=True,
    )
    line = process.stdout.readline()  # "Serving the page at http://127.0.0.1:PORT/ (...)"
    if not line:
        sys.exit(f"mnistnet serve did not start: {process.communicate()[1].strip()}")
    address = line.split("http://", 1)[1].split("/", 1)[0]
    host, port = address.rsplit(":", 1)
    return process, host, int(port)


def round_trips(host, port, body, n):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "image/png"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        times.append(1000 * (time.perf_counter() - start))
        assert response.status == 200, answer
    conn.close()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: train a small one)")
    parser.add_argument("--requests", type=int, default=100, help="round trips to time")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    body = canvas_png()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or train_model(tmp)
        process, host, port = start_server(model)
        try:
            round_trips(host, port, body, WARM_UP)
            times = round_trips(host, port, body, args.requests)
        finally:
            process.terminate()
            process.communicate()
    median = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1]
    result = {
        "requests": len(times),
        "body_bytes": len(body),
        "median_ms": median,
        "p90_ms": p90,
        "min_ms": min(times),
        "max_ms": max(times),
        "goal_ms": GOAL_MS,
        "met": median < GOAL_MS,
        "cpus": os.cpu_count(),
    }
    verdict = "met" if result["met"] else "NOT met"
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"mnistnet serve, POST /api/predict with a 280x280 canvas PNG ({len(body):,} bytes), "
            f"{len(times)} round trips: median {median:.1f} ms, 90th percentile {p90:.1f} ms, "
            f"max {max(times):.1f} ms; goal < {GOAL_MS:g} ms: {verdict}"
        )


if __name__ == "__main__":
    main()
