"""Shared fixtures: the SAM template as written, and as CloudFormation after the SAM transform."""

import copy
import json
import os
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[1]
ROOT = INFRA.parent
TEMPLATE = INFRA / "template.yaml"
BLUEPRINT = INFRA / "authentik" / "blueprint.yaml"

# function logical id prefix -> binary / package name
FUNCTIONS = {
    "Authorize": "authorize",
    "Callback": "callback",
    "Session": "session",
    "Refresh": "refresh",
    "Logout": "logout",
}


def _plain(node):
    """cfn-lint's decoder returns str/dict subclasses carrying line marks; tests want plain data."""
    return json.loads(json.dumps(node))


@pytest.fixture(scope="session")
def template():
    from cfnlint.decode import decode

    decoded, matches = decode(str(TEMPLATE))
    assert not matches, f"template does not parse: {matches}"
    return _plain(decoded)


@pytest.fixture(scope="session")
def transformed(template):
    """The template after AWS::Serverless-2016-10-31, as CloudFormation would see it.

    Uses aws-sam-translator (a dependency of cfn-lint). The local CodeUri is
    swapped for an S3 URI the way `sam package` would; no managed policies are
    referenced, so the policy loader is never asked for anything.
    """
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    class NoManagedPolicies:
        def load(self):
            return {}

    tpl = copy.deepcopy(template)
    tpl["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
    return transform(tpl, {}, NoManagedPolicies())
