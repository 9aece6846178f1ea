"""/v2/schema documents the catalog endpoints."""

from __future__ import annotations

import yaml


def test_it_documents_every_catalog_path(api, db):
    response = api.get("/v2/schema", headers={"Accept": "application/vnd.oai.openapi"})

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    assert set(paths["/v2/catalog/models"]) >= {"get", "post"}
    assert set(paths["/v2/catalog/models/{model_id}"]) >= {"get", "put", "delete"}
    assert "post" in paths["/v2/catalog/models/{model_id}/verify"]
    assert "post" in paths["/v2/catalog/models/{model_id}/state"]
    assert "get" in paths["/v2/catalog/availability"]
    create = paths["/v2/catalog/models"]["post"]
    assert "201" in create["responses"]
    assert "202" in paths["/v2/catalog/models/{model_id}/verify"]["post"]["responses"]
    components = schema["components"]["schemas"]
    assert {"CatalogModel", "Availability", "VerifyAccepted"} <= set(components)
    assert "verification" in components["CatalogModel"]["properties"]
    list_params = {param["name"] for param in paths["/v2/catalog/models"]["get"]["parameters"]}
    assert {"state", "tag", "limit", "offset"} <= list_params
