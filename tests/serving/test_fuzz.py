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


# What a client can get wrong that the strategies above do not reach: a length in non-ASCII digits or
# past any int, a shape whose product wraps an int64, more dimensions than numpy holds.
LENGTHS = st.sampled_from(["²", "١٢", "1" * 5000, "-1", "0x10", "1e3", "1_2"]) | st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=6
)  # a header value h11 can send: no controls, no surrounding space
SHAPES = st.sampled_from(
    [[4294967296, 4294967296, 4], [2**63, 2], [2**64, 1], [1] * 65, [1] * 33, [0, 2**62, 4], [True, 4]]
) | st.lists(st.integers(0, 2**65), max_size=70)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=LENGTHS, shape=SHAPES, binary=st.booleans())
def test_lengths_and_shapes_no_server_can_hold_get_400(
    litert_server: Server, length: str, shape: list, binary: bool
) -> None:
    tensor: dict = {"name": "features", "datatype": "FP32", "shape": shape}
    tensor |= {"parameters": {"binary_data_size": 16}} if binary else {"data": [1.0, 2.0, 3.0, 4.0]}
    header = json.dumps({"inputs": [tensor]}).encode()
    with litert_server.client() as client:
        plain = client.post(
            "/v2/models/iris/infer",
            content=header + (b"\0" * 16 if binary else b""),
            headers={"inference-header-content-length": str(len(header))} if binary else {},
        )
        assert plain.status_code == 400, plain.text
        odd = client.post(
            "/v2/models/iris/infer",
            content=header,
            headers={"inference-header-content-length": length.encode()},
        )
        assert 400 <= odd.status_code < 500, odd.text
        _check(odd)
        assert client.get("/v2/health/ready").status_code == 200
