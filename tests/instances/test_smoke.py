"""A first end-to-end check of the registration protocol on both databases."""

from flask.testing import FlaskClient


def test_register_read_patch_delete(client: FlaskClient) -> None:
    body = {
        "url": "https://indico.example.org/",
        "contact": "Ann",
        "email": "ann@example.org",
        "organization": "CERN",
    }
    created = client.post("/api/instance/", json=body)
    assert created.status_code == 201, created.json
    uuid = created.json["uuid"]
    assert created.headers["Location"].endswith(f"/api/instance/{uuid}")
    read = client.get(f"/api/instance/{uuid}")
    assert read.status_code == 200
    assert read.headers["Access-Control-Allow-Origin"] == "*"
    assert read.json["url"] == "https://indico.example.org"
    assert read.json["enabled"] is True
    patched = client.patch(f"/instance/{uuid}", json={"enabled": False, "contact": None})
    assert patched.status_code == 200
    assert patched.json["enabled"] is False
    assert patched.json["contact"] == "Ann"
    assert client.delete(f"/api/instance/{uuid}").status_code == 204
    gone = client.get(f"/api/instance/{uuid}")
    assert gone.status_code == 404
    assert gone.json["error"]
    assert gone.headers["Access-Control-Allow-Origin"] == "*"
