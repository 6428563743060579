"""`make package`: both zips build here, reproducibly, and the zip alone answers as the HTTP server does."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from serving.tools.packaging import lambda_zip
from tests.serving.conftest import MANAGED_RUNTIME, REPO, Server, load_event
from tests.serving.emulator import emulated
from tests.serving.events import EQUIVALENCE, event_for, lambda_body

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
# Only the unzipped directory and the standard library: -I ignores the environment, -S skips site-packages.
DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from serving.lambda_handler import handler
results = [handler(event, None) for event in json.load(sys.stdin)]
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"results": results, "modules": loaded, "path": sys.path}))
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, model_root: Path) -> Path:
    """`make package` for this interpreter's Python, both architectures, into a fresh dist, from a copy of
    the session's model root (its export up to date, so `make model` trains nothing)."""
    root = tmp_path_factory.mktemp("package")
    shutil.copytree(model_root, root / "models")
    result = subprocess.run(
        ["make", "-s", "package", f"PYTHON_VERSION={PYTHON_VERSION}", f"MODEL_ROOT={root / 'models'}",
         f"DIST={root / 'dist'}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lambda-x86_64.zip" in result.stdout
    assert "sha256" in result.stdout
    return root / "dist"


@pytest.fixture(scope="module")
def unzipped(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(dist / "lambda-x86_64.zip") as archive:
        archive.extractall(target)
    return target


def invoke(task_root: Path, events: list[dict]) -> dict:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", DRIVER, str(task_root)],
        input=json.dumps(events), capture_output=True, text=True, timeout=120, env={},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # after the handler's own lines (its metrics)


def test_both_architectures_with_their_sha256(dist: Path) -> None:
    for arch in ("x86_64", "arm64"):
        path = dist / f"lambda-{arch}.zip"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert (dist / f"lambda-{arch}.zip.sha256").read_text() == f"{digest}  {path.name}\n"
        assert path.stat().st_size < lambda_zip.ZIP_LIMIT


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_native_code_is_for_the_target_architecture(dist: Path, arch: str, machine: str) -> None:
    names = zipfile.ZipFile(dist / f"lambda-{arch}.zip").namelist()
    extensions = [n for n in names if n.endswith(".so") and "cpython" in n]
    assert extensions
    assert all(f"-{machine}-linux-gnu" in n for n in extensions), extensions


def test_holds_the_handler_litert_and_the_model_and_no_tensorflow(dist: Path) -> None:
    names = zipfile.ZipFile(dist / "lambda-x86_64.zip").namelist()
    tops = {n.split("/")[0] for n in names}
    assert {"serving", "ai_edge_litert", "numpy", "orjson", "simdjson"} <= tops
    assert not {t for t in tops if t.startswith(("tensorflow", "keras", "uvicorn", "awslambdaric"))}
    assert sorted(n for n in names if n.startswith("serving/models/")) == [
        "serving/models/iris/1/metadata.json",
        "serving/models/iris/1/model.tflite",
    ]
    code = sorted(
        n.removeprefix("serving/").removesuffix(".py")
        for n in names
        if n.count("/") == 1 and n.startswith("serving/")
    )
    # The handler's import closure, derived from the imports: the route table, codecs, runtime, the
    # shadow's judging and the embedded metrics, no server.
    assert code == [
        "__init__", "allocator", "app", "artifact", "capture", "contract", "dataplane", "emf", "errors",
        "json_tensors", "jsonio", "lambda_handler", "lambda_shadow", "prediction_mix", "routes", "runtime",
        "settings", "shadow_verdict", "stdout", "tensors", "tfserving", "v2",
    ]  # fmt: skip
    assert not [n for n in names if n.startswith("serving/tools/")]
    assert not [n for n in names if n.startswith("simdjson/") and n.endswith((".cpp", ".h", ".pyx"))]


def test_a_handler_module_that_imports_what_does_not_ship_is_refused(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "lambda_handler.py").write_text("from serving import routes\n")
    (tmp_path / "routes.py").write_text("def f():\n    from serving.tools.bench import wrk\n")
    with pytest.raises(lambda_zip.PackageError) as refused:
        lambda_zip.handler_modules(tmp_path)
    assert str(refused.value) == "serving/routes.py imports serving.tools, not a module that ships"


def test_same_inputs_give_a_byte_identical_zip(dist: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "serving.tools.packaging", "--model-root", str(dist.parent / "models"),
               "--python-version", PYTHON_VERSION, "--arch", "x86_64", "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300)
    assert (tmp_path / "lambda-x86_64.zip").read_bytes() == (dist / "lambda-x86_64.zip").read_bytes()


def test_a_second_make_package_with_the_same_inputs_rebuilds_nothing(dist: Path) -> None:
    before = {p.name: p.read_bytes() for p in dist.iterdir()}
    result = subprocess.run(
        ["make", "-s", "package", f"PYTHON_VERSION={PYTHON_VERSION}", f"MODEL_ROOT={dist.parent / 'models'}",
         f"DIST={dist}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "is up to date: its inputs (data, config, code, lock) are unchanged" in result.stdout
    assert "lambda-x86_64.zip (up to date: same inputs)" in result.stdout
    assert "lambda-arm64.zip (up to date: same inputs)" in result.stdout
    assert {p.name: p.read_bytes() for p in dist.iterdir()} == before


def test_a_changed_input_rebuilds_the_zip(dist: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(dist.parent / "models", models)
    out = tmp_path / "dist"
    shutil.copytree(dist, out)
    metadata = next(models.glob("*/*/metadata.json"))
    metadata.write_text(metadata.read_text().replace('"labels"', '"labels" ', 1))
    command = [sys.executable, "-m", "serving.tools.packaging", "--model-root", str(models),
               "--python-version", PYTHON_VERSION, "--arch", "x86_64", "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "up to date" not in result.stdout
    assert (out / "lambda-x86_64.zip").read_bytes() != (dist / "lambda-x86_64.zip").read_bytes()


def test_entries_have_fixed_times_and_modes(dist: Path) -> None:
    infos = zipfile.ZipFile(dist / "lambda-x86_64.zip").infolist()
    assert {i.date_time for i in infos} == {lambda_zip.FIXED_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)


def test_answers_captured_events_alone_in_a_clean_interpreter(unzipped: Path) -> None:
    seen = invoke(unzipped, [load_event("http_api_predict"), load_event("function_url_infer")])
    assert [r["statusCode"] for r in seen["results"]] == [200, 200]
    assert not {m for m in seen["modules"] if m.startswith(("tensorflow", "keras", "site"))}
    server_only = {"asyncio", "subprocess", "uvicorn", "uvloop"}  # each milliseconds of every cold start
    assert not {m for m in seen["modules"] if m.split(".")[0] in server_only}
    assert all(p.startswith((str(unzipped), sys.base_prefix)) for p in seen["path"]), seen["path"]


def test_answers_every_case_as_the_http_server_does(unzipped: Path, litert_server: Server) -> None:
    results = invoke(unzipped, [event_for(case, base64_body=True) for case in EQUIVALENCE])["results"]
    with litert_server.client() as client:
        for case, result in zip(EQUIVALENCE, results, strict=True):
            expected = client.request(case.method, case.path, content=case.body, headers=case.headers)
            assert (result["statusCode"], lambda_body(result)) == (expected.status_code, expected.content), (
                case.id
            )


def test_the_zip_answers_events_under_awss_runtime_interface_emulator(
    unzipped: Path, managed_runtime: Path, tmp_path: Path
) -> None:
    """The unzipped package as the task root under the emulator, the runtime interface client as the
    managed runtime's, an isolated interpreter: the same answers the handler gives in a clean one."""
    events = [load_event("http_api_predict"), load_event("function_url_infer")]
    bootstrap = [sys.executable, "-I", "-S", "-c", MANAGED_RUNTIME, str(unzipped), str(managed_runtime),
                 f"serving.{lambda_zip.HANDLER_MODULE}.handler"]  # fmt: skip
    log = tmp_path / "lambda.log"
    with emulated(bootstrap, unzipped, {"PATH": "/usr/bin:/bin"}, log) as call:
        answers = [call(event) for event in events]
    expected = invoke(unzipped, events)["results"]
    assert [a["statusCode"] for a in answers] == [200, 200], log.read_text()
    assert [lambda_body(a) for a in answers] == [lambda_body(e) for e in expected]


def test_a_zip_over_a_lambda_limit_fails_the_build_with_the_limit_named(tmp_path: Path) -> None:
    path = tmp_path / "lambda-x86_64.zip"
    path.write_bytes(b"z")
    with pytest.raises(lambda_zip.PackageError, match="over Lambda's 250 MiB limit"):
        lambda_zip.check_limits(path, lambda_zip.UNZIPPED_LIMIT + 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model-root", "/nonexistent", "--python-version", "3.12", "--arch", "x86_64"],
            "model root not found",
        ),
        (["--model-root", ".", "--python-version", "twelve", "--arch", "x86_64"], "not a Python version"),
        (["--model-root", ".", "--python-version", "3.12", "--arch", "sparc"], "invalid choice: 'sparc'"),
    ],
)
def test_bad_arguments_are_named(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serving.tools.packaging", *args, "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr
    assert not list(tmp_path.iterdir())


def test_every_wheel_record_lists_only_files_that_ship(dist: Path) -> None:
    """A pruned console script's RECORD line would carry a hash of the building interpreter's path."""
    archive = zipfile.ZipFile(dist / "lambda-x86_64.zip")
    names = set(archive.namelist())
    records = [n for n in names if n.endswith(".dist-info/RECORD")]
    assert records
    for record in records:
        listed = [row[0] for row in csv.reader(archive.read(record).decode().splitlines())]
        assert set(listed) <= names, f"{record} lists {sorted(set(listed) - names)[:5]}"
