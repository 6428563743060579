"""Property: whatever a client sends, a running server answers with a JSON body, never a crash."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.conftest import Server

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
PREDICT_BODIES = st.fixed_dictionaries(
    {}, optional={"instances": JSON_VALUES, "inputs": JSON_VALUES, "signature_name": JSON_VALUES}
)
INFER_BODIES = st.fixed_dictionaries(
    {
        "inputs": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["features", "x"]) | JSON_VALUES,
                    "shape": st.lists(st.integers(-2, 40), max_size=3) | JSON_VALUES,
                    "datatype": st.sampled_from(["FP32", "INT64", "BYTES"]) | JSON_VALUES,
                    "data": JSON_VALUES,
                    "parameters": st.fixed_dictionaries(
                        {}, optional={"binary_data_size": st.integers(-4, 64)}
                    ),
                },
            ),
            max_size=2,
        )
    },
    optional={"id": JSON_VALUES, "outputs": JSON_VALUES, "parameters": JSON_VALUES},
)
PATHS = st.sampled_from(["/v1/models/iris:predict", "/v2/models/iris/infer"]) | st.text(
    alphabet="/v12mdelsiris:pct", max_size=30
).map(lambda s: "/" + s)


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert isinstance(
        json.loads(
            response.content[: int(response.headers.get("inference-header-content-length", 0)) or None]
        ),
        dict,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=PREDICT_BODIES | INFER_BODIES, path=PATHS, raw=st.binary(max_size=64))
def test_any_request_gets_a_json_answer(litert_server: Server, body: dict, path: str, raw: bytes) -> None:
    with litert_server.client() as client:
        # An absolute URL: a bare "//…" would be read by the client as a host, not sent as a path.
        _check(client.post(litert_server.url + path, content=json.dumps(body, allow_nan=True)))
        header = json.dumps(body).encode()
        binary = {"inference-header-content-length": str(len(header))}
        _check(client.post("/v2/models/iris/infer", content=header + raw, headers=binary))
        assert client.get("/v2/health/ready").status_code == 200
