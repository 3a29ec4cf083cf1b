"""Tests for the Pi app: frame sources (lwdet.edge.app.sources), drawing (lwdet.edge.app.overlay), outputs
(lwdet.edge.app.outputs), the systemd unit and deploy/raspberry-pi/detect.py run without torch.

Source, overlay and back-off tests use no model; the CLI tests reuse test_edge's tiny ncnn export (pnnx).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_edge import NAMES, _image, exported  # noqa: F401  (module-scoped fixtures)

from lwdet.edge.app.outputs import Display, JsonlSink, Meter, Saver, StatusPrinter, detection_record
from lwdet.edge.app.overlay import class_color, draw_detections, draw_label, label_rect, text_color
from lwdet.edge.app.sources import KINDS, Source, SourceError, SourceLost, backoff, parse_source, resilient

ROOT = Path(__file__).resolve().parents[1]
PI = ROOT / "deploy" / "raspberry-pi"
DETECT = PI / "detect.py"


# --------------------------------------------------------------------------------------------------- sources
@pytest.fixture()
def media(tmp_path) -> Path:
    """<tmp>/imgs/{a,b}.png, <tmp>/imgs/notes.txt and <tmp>/clip.avi (4 frames)."""
    (tmp_path / "imgs").mkdir()
    for i, n in enumerate("ab"):
        cv2.imwrite(str(tmp_path / "imgs" / f"{n}.png"), _image(48, 64, seed=i))
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(4):
        writer.write(_image(48, 64, seed=i))
    writer.release()
    return tmp_path


def test_parse_source_kinds(media):
    cases = {
        "0": ("camera", True),
        "picam": ("picamera2", True),
        "picamera2:1": ("picamera2", True),
        "rtsp://cam.local:8554/live": ("stream", True),
        "http://127.0.0.1:8080/x.mjpg": ("stream", True),
        str(media / "imgs"): ("images", False),
        str(media / "imgs" / "*.png"): ("images", False),
        str(media / "imgs" / "a.png"): ("images", False),
        str(media / "clip.avi"): ("video", False),
        str(media / "*"): ("files", False),
    }  # a glob over images and a video
    for spec, (kind, live) in cases.items():
        s = parse_source(spec)
        assert (s.kind, s.live) == (kind, live), spec
    assert parse_source("picamera2:1").target == 1 and parse_source("0").target == 0
    for bad in [media / "missing.mp4", media / "*.jpg", "picam:x"]:
        with pytest.raises(SourceError):
            parse_source(str(bad))
    with pytest.raises(SourceError, match="camera index.*picam.*glob.*rtsp"):
        parse_source(str(media / "missing.mp4"))
    (media / "empty").mkdir()
    with pytest.raises(SourceError, match="no images or videos"):
        parse_source(str(media / "empty"))


def test_read_folder_glob_video_and_mixed(media):
    frames = list(resilient(parse_source(str(media / "imgs"))))
    assert [f.name for f in frames] == ["a.png", "b.png"] and all(f.fps is None for f in frames)
    assert frames[0].image.shape == (48, 64, 3)
    assert [f.name for f in parse_source(str(media / "imgs" / "b*")).open()] == ["b.png"]
    video = list(resilient(parse_source(str(media / "clip.avi"))))  # a file ends: no retry, no SourceLost
    assert [f.name for f in video] == [f"clip_{i:06d}" for i in range(4)] and video[0].fps == pytest.approx(10)
    cv2.imwrite(str(media / "z.png"), _image(48, 64))
    mixed = [f.name for f in parse_source(str(media / "*")).open()]  # imgs/ is a folder: not one of the glob's files
    assert mixed == [f"clip_{i:06d}" for i in range(4)] + ["z.png"]
    (media / "bad.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="cannot read"):
        list(parse_source(str(media / "bad.png")).open())


# ------------------------------------------------------------------------------- a local MJPEG stream server
def _mjpeg_server(frames_per_connection: int, delay: float = 0.02, stall: float = 0.0):
    """A thread serving multipart JPEG (as an IP camera) on 127.0.0.1; each connection ends after N frames (after
    ``stall`` s of silence, as a stream that hangs)."""
    jpegs = [cv2.imencode(".jpg", _image(48, 64, seed=i))[1].tobytes() for i in range(4)]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for i in range(frames_per_connection):
                    data = jpegs[i % len(jpegs)]
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(data)).encode()
                        + b"\r\n\r\n"
                        + data
                        + b"\r\n"
                    )
                    self.wfile.flush()
                    time.sleep(delay)
                time.sleep(stall)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/x.mjpg"


@pytest.fixture()
def mjpeg():
    server, url = _mjpeg_server(frames_per_connection=5)
    cap = cv2.VideoCapture(url)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        server.shutdown()
        pytest.skip(f"this OpenCV cannot read a multipart JPEG stream from {url} (FFmpeg backend missing?)")
    yield url
    server.shutdown()


def test_http_stream_and_reconnect(mjpeg, caplog):
    source = parse_source(mjpeg)
    assert source.kind == "stream" and source.live
    waits = []
    frames = []
    with caplog.at_level(logging.WARNING, logger="lwdet.edge.app.sources"):
        for frame in resilient(source, sleep=waits.append):  # each connection gives 5 frames, then drops
            frames.append(frame)
            if len(frames) == 12:
                break
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert [f.name for f in frames[:6]] == [f"x_{i:06d}" for i in range(5)] + ["x_000000"]  # reopened
    assert waits == [1.0, 1.0]  # each drop after frames: the back-off starts again at 1 s
    assert sum("retry 1 in 1.0 s" in r.getMessage() for r in caplog.records) == 2


def test_stalled_stream_times_out_and_is_retried():
    server, url = _mjpeg_server(frames_per_connection=3, delay=0.02, stall=30.0)  # 3 frames, then silence
    try:
        source = parse_source(url)
        source.timeout = 1.0
        waits, names = [], []
        t0 = time.monotonic()
        for frame in resilient(source, sleep=waits.append):
            names.append(frame.name)
            if len(names) == 4:
                break
        if not names:
            pytest.skip(f"this OpenCV cannot read a multipart JPEG stream from {url}")
        assert names == ["x_000000", "x_000001", "x_000002", "x_000000"] and waits == [1.0]
        assert time.monotonic() - t0 < 20  # the read timed out (1 s); it did not wait for the 30 s stall
    finally:
        server.shutdown()


# --------------------------------------------------------------------------------------------------- back-off
class FlakySource(Source):
    """A live source that fails to open ``fails`` times, then gives ``frames`` frames."""

    def __init__(self, fails: int, frames: int = 3):
        super().__init__("flaky", "camera", 0, True)
        self.fails, self.frames, self.opens = fails, frames, 0

    def open(self):
        self.opens += 1
        if self.opens <= self.fails:
            raise SourceLost(f"cannot open camera 0 (attempt {self.opens})")
        return (f for f in [("f", np.zeros((2, 2, 3), np.uint8), 30.0)] * self.frames)


def test_backoff_grows_is_capped_and_logged(caplog):
    assert [backoff(n, 1, 30) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    waits = []
    src = FlakySource(fails=6)
    with caplog.at_level(logging.WARNING, logger="lwdet.edge.app.sources"):
        gen = resilient(src, base=0.5, max_wait=5, sleep=waits.append)
        got = [next(gen) for _ in range(3)]  # no exception: the 7th open works
    assert len(got) == 3 and src.opens == 7
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot open camera 0" in m for m in messages) == 6 and "back after 6 failed attempt(s)" in messages[-1]


def test_backoff_limit_gives_up():
    waits = []
    with pytest.raises(SourceLost, match="attempt 3"):
        list(resilient(FlakySource(fails=10), limit=3, sleep=waits.append))
    assert waits == [1.0, 2.0]


# ---------------------------------------------------------------------------------------------------- overlay
def test_label_pixels_change_and_stay_readable():
    image = np.full((120, 160, 3), 255, np.uint8)
    before = image.copy()
    draw_detections(image, [((40.0, 50.0, 100.0, 110.0), 0.87, 1, "tree")])
    x0, y0, x1, y1, _ = label_rect(image.shape, "tree 0.87", 40, 50, 0.35, 1)
    label = image[y0:y1, x0:x1]
    assert y1 <= 50 and (label != before[y0:y1, x0:x1]).any(axis=2).all()  # above the box, filled
    fill = class_color(1)
    assert (
        (image[y0 + 1, x0 + 1] == fill).all()
        and text_color(fill) == (0, 0, 0)
        and text_color((20, 20, 20)) == (255, 255, 255)
    )
    assert (label.astype(int).sum(axis=2) < 200).any()  # black text on the light fill


@pytest.mark.parametrize("xy", [(150, 0), (-20, -20), (155, 115)])
def test_label_at_the_edge_stays_in_the_image(xy):
    image = np.zeros((120, 160, 3), np.uint8)
    x0, y0, x1, y1 = draw_label(image, "a-long-label 0.99", *xy, (0, 200, 255))
    assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120 and x1 - x0 > 30
    assert (image[y0:y1, x0:x1] != 0).any(axis=2).mean() > 0.5  # drawn where it fits, not cut off
    text = (image[y0:y1, x0:x1] == 0).all(axis=2)  # black text pixels on the orange fill
    assert text.any() and text[:, -5:].sum() < text.sum()


# ---------------------------------------------------------------------------------------------------- outputs
def test_meter_warmup_not_counted_and_status_lines():
    t = iter(range(100))
    m = Meter(warmup=2, clock=lambda: float(next(t)))
    for s in (5.0, 5.0, 0.1, 0.1, 0.1, 0.1):  # two slow warm-up frames
        m.add(s, 2)
    assert m.frames == 6 and m.counted == 4 and m.fps == pytest.approx(10) and m.mean_ms == pytest.approx(100)
    assert m.rate == pytest.approx(1.0) and "frames 6" in m.status() and "detections 12" in m.status()
    clock = iter([0, 1, 6, 7, 12])
    out = io.StringIO()
    p = StatusPrinter(out, every=5, clock=lambda: next(clock))
    assert [p(f"s{i}") for i in range(5)] == [True, False, True, False, True]
    assert out.getvalue() == "s0\ns2\ns4\n"  # not a tty: whole lines, no carriage returns, no bars


def test_jsonl_record_and_append(tmp_path):
    path = tmp_path / "d.jsonl"
    for _ in range(2):  # a restarted service appends
        sink = JsonlSink(path)
        sink.write(detection_record("f_000001", 1, (48, 64, 3), [((1, 2, 30.55, 40), 0.912345, 2, "blue")], 3.21))
        sink.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["detections"] == [
        {"box": [1.0, 2.0, 30.6, 40.0], "score": 0.9123, "class_id": 2, "class": "blue"}
    ]
    assert rows[0]["width"] == 64 and rows[0]["height"] == 48 and rows[0]["latency_ms"] == 3.21


def test_saver_appends_csv_and_refuses_a_foreign_one(tmp_path):
    for _ in range(2):  # a restarted service keeps its earlier rows
        saver = Saver(tmp_path / "out")
        saver.write("a.png", _image(48, 64), None, [((1, 2, 3, 4), 0.5, 0, "red")])
        saver.close()
    lines = (tmp_path / "out" / "detections.csv").read_text().splitlines()
    assert lines[0].startswith("frame,class_id") and lines[1:] == ["a.png,0,red,0.5000,1.0,2.0,3.0,4.0"] * 2
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (48, 64, 3)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "detections.csv").write_text("id,value\n1,2\n")
    with pytest.raises(ValueError, match="header differs"):
        Saver(tmp_path / "other")


def test_show_refuses_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ValueError, match="--show needs a display"):
        Display()


# ------------------------------------------------------------------------------------------------ systemd unit
def test_systemd_unit_verifies(tmp_path):
    unit = (PI / "lwdet-detect.service").read_text()
    for line in ["Restart=on-failure", "StandardOutput=journal", "WantedBy=multi-user.target"]:
        assert line in unit
    assert "detect.py" in unit and "--retry" in unit
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    # the unit's Pi paths -> this checkout and interpreter, so verify can check that ExecStart exists
    text = unit.replace("/home/pi/lwdet/deploy/raspberry-pi/.venv/bin/python", sys.executable)
    (tmp_path / "lwdet-detect.service").write_text(text.replace("/home/pi/lwdet", str(ROOT)))
    r = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "lwdet-detect.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "lwdet-detect.service" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------- detect.py without torch (Pi)
def _detect(args, env, cwd):
    return subprocess.run(
        [sys.executable, str(DETECT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.export
@pytest.mark.slow  # the shared export fixture takes ~1-3 min on 2 busy cores
def test_detect_sources_jsonl_without_torch(request, media):
    model, env = request.getfixturevalue("exported"), request.getfixturevalue("no_torch_env")
    base = ["--model", model, "--threads", "1"]
    r = _detect([*base, "--source", media / "imgs" / "*.png", "--jsonl", "-", "--save", media / "o1"], env, media)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]  # stdout is only JSON lines with --jsonl -
    assert [x["frame"] for x in rows] == ["a.png", "b.png"] and "a.png:" in r.stderr
    dets = [d for x in rows for d in x["detections"]]
    assert dets and all(len(d["box"]) == 4 and 0 <= d["score"] <= 1 and d["class"] in NAMES for d in dets)
    assert sorted(p.name for p in (media / "o1").iterdir()) == ["a.png", "b.png", "detections.csv"]
    r = _detect(
        [*base, "--source", media / "clip.avi", "--jsonl", media / "v.jsonl", "--status-every", "0", "--warmup", "1"],
        env,
        media,
    )
    assert r.returncode == 0, r.stderr
    assert len((media / "v.jsonl").read_text().splitlines()) == 4 and "frames 4" in r.stdout and "FPS" in r.stdout
    big = media / "big.png"
    cv2.imwrite(str(big), _image(160, 200, seed=3))
    r = _detect(
        [*base, "--source", big, "--fp16", "off", "--tile", "96", "--overlap", "16", "--jsonl", media / "t.jsonl"],
        env,
        media,
    )
    try:
        import lwdet.edge.slicing  # noqa: F401  (sliced inference: issue 9's branch)
    except ImportError:
        assert r.returncode == 2 and "--tile needs sliced inference" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        boxes = [d["box"] for d in json.loads((media / "t.jsonl").read_text())["detections"]]
        assert boxes and all(0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 160 for x1, y1, x2, y2 in boxes)
    r = _detect([*base, "--source", media / "missing.mp4"], env, media)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no such file, folder or camera" in r.stderr
    assert KINDS in r.stderr
    r = _detect([*base, "--source", media / "imgs", "--fp16", "sometimes"], env, media)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


@pytest.mark.export
@pytest.mark.slow
def test_detect_http_stream_without_torch(request, mjpeg, tmp_path):
    model, env = request.getfixturevalue("exported"), request.getfixturevalue("no_torch_env")
    r = _detect(
        [
            "--model",
            model,
            "--threads",
            "1",
            "--source",
            mjpeg,
            "--max-frames",
            "3",
            "--jsonl",
            tmp_path / "s.jsonl",
            "--save",
            tmp_path / "out",
        ],
        env,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in rows] == [f"x_{i:06d}" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["detections.csv", "x.mp4"]


def test_app_modules_import_without_torch(request):
    env = request.getfixturevalue("no_torch_env")
    code = (
        "import lwdet.edge.app.sources, lwdet.edge.app.overlay, lwdet.edge.app.outputs, sys; "
        "assert not {'torch', 'ultralytics', 'yaml'} & set(sys.modules), sorted(sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
