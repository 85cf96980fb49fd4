"""The Authentik blueprint parses, uses only fields of authentik's blueprint
schema, and configures what the functions rely on. authentik itself cannot run
here; the field lists below come from its published blueprints/schema.json
(2025.12: model_authentik_providers_oauth2.oauth2provider,
model_authentik_core.application) and its 2026 API (redirect_uri_type)."""

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import yaml

from conftest import BLUEPRINT

PROVIDER_MODEL = "authentik_providers_oauth2.oauth2provider"
APPLICATION_MODEL = "authentik_core.application"

PROVIDER_FIELDS = {
    "name", "authentication_flow", "authorization_flow", "invalidation_flow",
    "property_mappings", "client_type", "client_id", "client_secret",
    "access_code_validity", "access_token_validity", "refresh_token_validity",
    "refresh_token_threshold", "include_claims_in_id_token", "signing_key",
    "encryption_key", "redirect_uris", "logout_uri", "logout_method", "sub_mode",
    "issuer_mode", "jwt_federation_sources", "jwt_federation_providers",
}  # fmt: skip
REDIRECT_URI_FIELDS = {"matching_mode", "url", "redirect_uri_type"}
APPLICATION_FIELDS = {
    "name", "slug", "provider", "backchannel_providers", "open_in_new_tab",
    "meta_launch_url", "meta_icon", "meta_description", "meta_publisher",
    "policy_engine_mode", "group",
}  # fmt: skip
ENTRY_KEYS = {"model", "id", "identifiers", "attrs", "state", "conditions", "permissions"}
ENUMS = {
    "client_type": {"confidential", "public"},
    "issuer_mode": {"global", "per_provider"},
    "sub_mode": {"hashed_user_id", "user_id", "user_uuid", "user_username", "user_email", "user_upn"},
    "logout_method": {"backchannel", "frontchannel"},
    "matching_mode": {"strict", "regex"},
    "redirect_uri_type": {"authorization", "logout"},
}
KNOWN_TAGS = {"!Context", "!Format", "!Find", "!KeyOf", "!Env", "!If", "!Condition", "!Enumerate"}


@dataclass(frozen=True)
class Tag:
    name: str
    value: Any


class BlueprintLoader(yaml.SafeLoader):
    """SafeLoader that keeps authentik's custom tags (!Find, !Context, ...) as Tag values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tag("!" + suffix, value)


BlueprintLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Find:
    model: str
    field: str
    value: str


@dataclass(frozen=True)
class KeyOf:
    id: str


def resolve(node, context):
    """Evaluates !Context and !Format with the blueprint's default context."""
    if isinstance(node, Tag):
        assert node.name in KNOWN_TAGS, f"unknown tag {node.name}"
        if node.name == "!Context":
            key = node.value if isinstance(node.value, str) else node.value[0]
            return context[key]
        if node.name == "!Format":
            fmt, *args = node.value
            return fmt % tuple(resolve(a, context) for a in args)
        if node.name == "!Find":
            model, (field, value) = node.value
            return Find(model, field, resolve(value, context))
        if node.name == "!KeyOf":
            return KeyOf(node.value)
        raise AssertionError(f"{node.name} not expected in this blueprint")
    if isinstance(node, dict):
        return {k: resolve(v, context) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, context) for v in node]
    return node


def duration(value: str) -> timedelta:
    """authentik's 'hours=1;minutes=2;seconds=3' format."""
    parts = dict(p.split("=") for p in value.split(";"))
    assert set(parts) <= {"weeks", "days", "hours", "minutes", "seconds"}, value
    return timedelta(**{k: float(v) for k, v in parts.items()})


@pytest.fixture(scope="module")
def raw():
    return yaml.load(BLUEPRINT.read_text(), Loader=BlueprintLoader)


@pytest.fixture(scope="module")
def entries(raw):
    return {e["model"]: resolve(e, raw["context"]) for e in raw["entries"]}


@pytest.fixture(scope="module")
def provider(entries):
    return entries[PROVIDER_MODEL]["attrs"]


@pytest.fixture(scope="module")
def application(entries):
    return entries[APPLICATION_MODEL]["attrs"]


def test_shape(raw):
    assert raw["version"] == 1
    assert raw["metadata"]["name"]
    models = [e["model"] for e in raw["entries"]]
    assert sorted(models) == sorted([PROVIDER_MODEL, APPLICATION_MODEL])
    for e in raw["entries"]:
        assert set(e) <= ENTRY_KEYS, set(e) - ENTRY_KEYS
        assert e["identifiers"], "entries are matched by identifiers, so re-applying updates them"


def test_fields_exist_in_the_schema(provider, application):
    assert set(provider) <= PROVIDER_FIELDS, set(provider) - PROVIDER_FIELDS
    assert set(application) <= APPLICATION_FIELDS, set(application) - APPLICATION_FIELDS
    for uri in provider["redirect_uris"]:
        assert set(uri) <= REDIRECT_URI_FIELDS
    for field, allowed in ENUMS.items():
        for value in [provider.get(field)] + [u.get(field) for u in provider["redirect_uris"]]:
            assert value is None or value in allowed, (field, value)


def test_slug_and_issuer(provider, application, template):
    assert application["slug"] == "static-site"
    assert re.fullmatch(r"[-a-zA-Z0-9_]+", application["slug"])
    # per_provider: the issuer is https://HOST/application/o/<slug>/
    assert provider["issuer_mode"] == "per_provider"
    assert "/application/o/static-site/" in template["Parameters"]["IssuerUrl"]["Description"]


def test_application_uses_the_provider(raw, application):
    provider_id = next(e["id"] for e in raw["entries"] if e["model"] == PROVIDER_MODEL)
    assert application["provider"] == KeyOf(provider_id)


def test_confidential_client_with_a_generated_secret(provider, raw, template):
    assert provider["client_type"] == "confidential"
    assert "client_secret" not in provider, "authentik generates it; it never lives in a file"
    assert provider["client_id"] == template["Parameters"]["ClientId"]["Default"]


def test_scopes_include_offline_access(provider, template):
    managed = {f.value for f in provider["property_mappings"]}
    for scope in ("openid", "profile", "email", "offline_access"):
        assert f"goauthentik.io/providers/oauth2/scope-{scope}" in managed
        assert scope in template["Parameters"]["Scopes"]["Default"].split()
    assert all(f.model == "authentik_providers_oauth2.scopemapping" for f in provider["property_mappings"])


def test_asymmetric_signing_key(provider):
    # Without a signing key authentik signs ID tokens with HS256 and the client
    # secret; the functions accept only asymmetric signatures checked against JWKS.
    key = provider["signing_key"]
    assert isinstance(key, Find) and key.model == "authentik_crypto.certificatekeypair"
    assert "encryption_key" not in provider, "the functions expect signed, not encrypted, ID tokens"


def test_claims_in_the_id_token(provider):
    assert provider["include_claims_in_id_token"] is True


def test_flows(provider):
    assert provider["authorization_flow"] == Find(
        "authentik_flows.flow", "slug", "default-provider-authorization-implicit-consent"
    )
    assert provider["invalidation_flow"].model == "authentik_flows.flow"


def test_redirect_uris_are_exact(provider, raw):
    uris = provider["redirect_uris"]
    assert all(u["matching_mode"] == "strict" for u in uris)
    auth = [u["url"] for u in uris if u.get("redirect_uri_type", "authorization") == "authorization"]
    assert auth == [raw["context"]["auth_origin"] + "/auth/callback"]
    logout = [u["url"] for u in uris if u.get("redirect_uri_type") == "logout"]
    assert logout == [raw["context"]["site_origin"] + "/"]
    for url in auth + logout:
        assert url.startswith("https://")


def test_backchannel_logout(provider, raw):
    assert provider["logout_method"] == "backchannel"
    assert provider["logout_uri"] == raw["context"]["auth_origin"] + "/auth/backchannel-logout"


def test_token_lifetimes(provider, template):
    access = duration(provider["access_token_validity"])
    refresh = duration(provider["refresh_token_validity"])
    threshold = duration(provider["refresh_token_threshold"])
    code = duration(provider["access_code_validity"])
    session = timedelta(seconds=template["Parameters"]["SessionAbsoluteTimeoutSecs"]["Default"])
    assert timedelta(minutes=1) <= access <= timedelta(minutes=15)
    assert code <= timedelta(minutes=10)
    assert refresh >= session, "a refresh token must last as long as the session it serves"
    assert refresh <= timedelta(days=30)
    assert timedelta(0) <= threshold < refresh
