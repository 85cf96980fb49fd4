"""Security-relevant facts of infra/template.yaml, asserted on the template and
on its SAM-transformed CloudFormation. cfn-lint (run by infra/check) checks
that it is valid; these tests check that it is what the design says."""

import re
import tomllib

import pytest

from conftest import FUNCTIONS, ROOT, TEMPLATE

# -------------------------------------------------------------- expectations

REVOKED = ("revoked#", "revoked-sid#", "revoked-sub#")


def pairs(actions, prefixes):
    return {(a, p) for a in actions for p in prefixes}


# Exactly the DynamoDB actions, and the pk prefixes, each function uses
# (shared/src/store: increment = UpdateItem, insert_new/put = PutItem,
# take/delete = DeleteItem, get = GetItem, get_many = BatchGetItem).
EXPECTED_DYNAMODB = {
    # rate counter; login transaction (conditional put)
    "authorize": pairs(["UpdateItem"], ["rate#"]) | pairs(["PutItem"], ["login#"]),
    # rate counter; consume the transaction; exchange code (conditional put)
    "callback": pairs(["UpdateItem"], ["rate#"])
    | pairs(["DeleteItem"], ["login#"])
    | pairs(["PutItem"], ["exchange#"]),
    # rate counter; one consistent BatchGetItem over the revocation kinds;
    # redeem an exchange code (conditional delete)
    "session": pairs(["UpdateItem"], ["rate#"])
    | pairs(["BatchGetItem"], REVOKED)
    | pairs(["DeleteItem"], ["exchange#"]),
    # rate counter; revocation check; an ended session is recorded as
    # revoked; single flight: claim/store (PutItem), poll (GetItem), release
    "refresh": pairs(["UpdateItem"], ["rate#"])
    | pairs(["BatchGetItem"], REVOKED)
    | pairs(["PutItem"], ["revoked#"])
    | pairs(["PutItem", "GetItem", "DeleteItem"], ["refresh#"]),
    # rate counter; revocations (logout, back-channel sid/sub); back-channel
    # jti replay guard (conditional put)
    "logout": pairs(["UpdateItem"], ["rate#"]) | pairs(["PutItem"], [*REVOKED, "jti#"]),
}

# Functions that exchange or revoke tokens at the provider need the client secret.
NEEDS_CLIENT_SECRET = {"callback", "refresh", "logout"}

# Functions that sign CloudFront cookies for the protected routes need the key.
NEEDS_SIGNING_KEY = {"callback", "refresh"}

# Optional variables each function may get (unset when their parameter is
# empty or the feature is off); no other function may have them.
OPTIONAL_ENV = {
    "authorize": {"REQUIRED_ACR", "MAX_AGE"},
    "callback": {
        "ALLOWED_GROUPS", "REQUIRED_ACR", "MAX_AGE", "PROTECTED_PATHS", "CLOUDFRONT_KEY_PAIR_ID",
        "CLOUDFRONT_PRIVATE_KEY_SECRET_ARN", "CLOUDFRONT_COOKIE_TTL_SECS",
    },
    "session": set(),
    "refresh": {
        "ALLOWED_GROUPS", "PROTECTED_PATHS", "CLOUDFRONT_KEY_PAIR_ID",
        "CLOUDFRONT_PRIVATE_KEY_SECRET_ARN", "CLOUDFRONT_COOKIE_TTL_SECS",
    },
    # Clears the CloudFront cookies; the configuration wants the key pair id
    # whenever PROTECTED_PATHS is set, but logout never gets the private key.
    "logout": {"PROTECTED_PATHS", "CLOUDFRONT_KEY_PAIR_ID"},
}  # fmt: skip

EXPECTED_ROUTES = {
    "GET /auth/login": "authorize",
    "GET /auth/callback": "callback",
    "GET /auth/session": "session",
    "POST /auth/session": "session",
    "OPTIONS /auth/session": "session",
    "POST /auth/refresh": "refresh",
    "OPTIONS /auth/refresh": "refresh",
    "POST /auth/logout": "logout",
    "OPTIONS /auth/logout": "logout",
    "POST /auth/backchannel-logout": "logout",
}

REQUIRED_ENV = {
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_REDIRECT_URI",
    "OIDC_SCOPES",
    "ALLOWED_ORIGINS",
    "DEFAULT_RETURN_TO",
    "POST_LOGOUT_REDIRECT_URI",
    "TABLE_NAME",
    "SESSION_HANDOFF",
    "SESSION_IDLE_TIMEOUT_SECS",
    "SESSION_ABSOLUTE_TIMEOUT_SECS",
    "RUST_LOG",
    "COOKIE_KEYS_SECRET_ARN",
}

# Every variable the template may set: the functions' own, plus CONFIG_REVISION
# (unread; changing it recycles execution environments after a secret rotation).
KNOWN_ENV = REQUIRED_ENV | {"OIDC_CLIENT_SECRET_ARN", "CONFIG_REVISION"} | set().union(*OPTIONAL_ENV.values())

# Local-only variables that carry secret values: never in the template.
FORBIDDEN_ENV = {"OIDC_CLIENT_SECRET", "COOKIE_KEYS", "CLOUDFRONT_PRIVATE_KEY", "CLOUDFRONT_PRIVATE_KEY_FILE"}

# Names that look secret but are not: the id of a CloudFront *public* key.
PUBLIC_ENV = {"CLOUDFRONT_KEY_PAIR_ID"}

# Parameters that take public key material (PEM), never a private key.
PUBLIC_KEY_PARAMETERS = {"CloudFrontPublicKeyPem", "CloudFrontPublicKeyPem2"}

# The parameters that switch protected routes on, as a deployment would set them.
FAKE_PUBLIC_PEM = (
    "-----" "BEGIN PUBLIC KEY-----\n"
    + "\n".join(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 20] * 6)
    + "\nIDAQAB\n-----END PUBLIC KEY-----\n"
)
PROTECTED = {
    "ProtectedPathPattern": "/members/*",
    "CloudFrontPublicKeyPem": FAKE_PUBLIC_PEM,
    "CloudFrontPrivateKeySecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:site/cf-key-AbC123",
}

ALLOWED_ROLE_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "secretsmanager:GetSecretValue",
    "kms:Decrypt",
} | {f"dynamodb:{a}" for a in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem")}

# ------------------------------------------------------------------- helpers


def resources(tpl, rtype):
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == rtype}


def as_list(x):
    return x if isinstance(x, list) else [x]


def getatt_target(value):
    """'X' for {'Fn::GetAtt': ['X', 'Arn']} or {'Fn::GetAtt': 'X.Arn'}."""
    att = value["Fn::GetAtt"]
    return att[0] if isinstance(att, list) else att.split(".")[0]


def statements(role):
    """Every statement of a role's inline policies, with Fn::If branches expanded."""
    out = []
    for policy in role["Properties"].get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if isinstance(st, dict) and "Fn::If" in st:
                out += [b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Ref" not in b]
            else:
                out.append(st)
    return out


def function_role(tpl, logical_id):
    role_ref = tpl["Resources"][logical_id]["Properties"]["Role"]
    return getatt_target(role_ref)


def strings_in(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from strings_in(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings_in(v)


# --------------------------------------------------------------------- tests


def test_is_a_sam_template(template):
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_transform_yields_exactly_five_functions(transformed):
    fns = resources(transformed, "AWS::Lambda::Function")
    assert sorted(fns) == sorted(f"{p}Function" for p in FUNCTIONS)


@pytest.mark.parametrize("prefix", FUNCTIONS)
def test_function_runtime_settings(transformed, prefix):
    props = transformed["Resources"][f"{prefix}Function"]["Properties"]
    assert props["Architectures"] == ["arm64"]
    assert props["Runtime"] == "provided.al2023"
    assert props["Handler"] == "bootstrap"
    assert props["MemorySize"] == 128
    assert 3 <= props["Timeout"] <= 15


@pytest.mark.parametrize("prefix,binary", FUNCTIONS.items())
def test_built_with_cargo_lambda_from_the_workspace(template, prefix, binary):
    fn = template["Resources"][f"{prefix}Function"]
    assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert fn["Metadata"]["BuildProperties"]["Binary"] == binary
    code_uri = fn["Properties"].get("CodeUri", template["Globals"]["Function"]["CodeUri"])
    workspace = (TEMPLATE.parent / code_uri).resolve()
    assert workspace == ROOT, "CodeUri must point at the Cargo workspace root"
    manifest = tomllib.loads((workspace / "Cargo.toml").read_text())
    assert f"functions/{binary}" in manifest["workspace"]["members"]
    package = ROOT / "functions" / binary / "Cargo.toml"
    if package.exists():  # written by the Rust side; check the name SAM builds
        pkg = tomllib.loads(package.read_text())
        bins = {b.get("name") for b in pkg.get("bin", [])} | {pkg["package"]["name"]}
        assert binary in bins


def test_one_dedicated_role_per_function(transformed):
    roles = resources(transformed, "AWS::IAM::Role")
    used = [function_role(transformed, f"{p}Function") for p in FUNCTIONS]
    assert len(set(used)) == len(FUNCTIONS), f"roles shared between functions: {used}"
    assert set(used) == set(roles), "every role belongs to exactly one function"
    for name, role in roles.items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{name}: no managed policies"
        (stmt,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert stmt["Principal"] == {"Service": "lambda.amazonaws.com"}


@pytest.mark.parametrize("prefix,binary", FUNCTIONS.items())
def test_dynamodb_least_privilege(transformed, prefix, binary):
    role = transformed["Resources"][function_role(transformed, f"{prefix}Function")]
    granted = set()
    for st in statements(role):
        actions = as_list(st["Action"])
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        assert all(a.startswith("dynamodb:") for a in actions), st
        assert st["Effect"] == "Allow"
        res = as_list(st["Resource"])
        assert len(res) == 1 and isinstance(res[0], dict), f"{binary}: {res}"
        assert getatt_target(res[0]) == "AuthTable", f"{binary}: only the table, no index, no '*'"
        assert "*" not in str(res)
        keys = st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        assert set(st["Condition"]) == {"ForAllValues:StringLike"}, st["Condition"]
        for k in as_list(keys):
            assert re.fullmatch(r"[a-z-]+#\*", k), f"{binary}: prefix pattern {k!r}"
        granted |= pairs([a.split(":", 1)[1] for a in actions], [k[:-1] for k in as_list(keys)])
    assert granted == EXPECTED_DYNAMODB[binary]


def test_logout_cannot_read_the_table(transformed):
    role = transformed["Resources"][function_role(transformed, "LogoutFunction")]
    actions = {a for st in statements(role) for a in as_list(st["Action"])}
    assert not actions & {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}


def test_no_function_touches_items_it_never_uses(transformed):
    prefixes = {
        binary: {p for _, p in EXPECTED_DYNAMODB[binary]} for binary in FUNCTIONS.values()
    }
    assert "exchange#" not in prefixes["logout"] | prefixes["refresh"] | prefixes["authorize"]
    assert "refresh#" not in prefixes["session"] | prefixes["logout"] | prefixes["callback"]
    assert "login#" not in prefixes["session"] | prefixes["refresh"] | prefixes["logout"]


@pytest.mark.parametrize("prefix", FUNCTIONS)
def test_no_wildcards_in_roles(transformed, prefix):
    role = transformed["Resources"][function_role(transformed, f"{prefix}Function")]
    for st in statements(role):
        assert st["Effect"] == "Allow"
        for a in as_list(st["Action"]):
            assert a in ALLOWED_ROLE_ACTIONS, f"unexpected action {a}"
        assert "NotResource" not in st and "NotAction" not in st
        for r in as_list(st["Resource"]):
            # Literal strings would be the place for a '*'; references resolve to exact ARNs.
            assert not (isinstance(r, str) and "*" in r), r


@pytest.mark.parametrize("prefix,binary", FUNCTIONS.items())
def test_secrets_are_read_only_by_who_needs_them(template, transformed, prefix, binary):
    role = transformed["Resources"][function_role(transformed, f"{prefix}Function")]
    secret_refs = {
        r["Ref"]
        for st in statements(role)
        if "secretsmanager:GetSecretValue" in as_list(st["Action"])
        for r in as_list(st["Resource"])
    }
    expected = {"CookieKeysSecretArn"} | ({"ClientSecretArn"} if binary in NEEDS_CLIENT_SECRET else set())
    if binary in NEEDS_SIGNING_KEY:
        expected.add("CloudFrontPrivateKeySecretArn")
    assert secret_refs == expected

    env = transformed["Resources"][f"{prefix}Function"]["Properties"]["Environment"]["Variables"]
    assert env["COOKIE_KEYS_SECRET_ARN"] == {"Ref": "CookieKeysSecretArn"}
    if binary in NEEDS_CLIENT_SECRET:
        assert env["OIDC_CLIENT_SECRET_ARN"] == {"Ref": "ClientSecretArn"}
    else:
        assert "OIDC_CLIENT_SECRET_ARN" not in env
    if binary in NEEDS_SIGNING_KEY:
        cond, yes, no = env["CLOUDFRONT_PRIVATE_KEY_SECRET_ARN"]["Fn::If"]
        assert (yes, no) == ({"Ref": "CloudFrontPrivateKeySecretArn"}, {"Ref": "AWS::NoValue"})
        assert _cond(template, PROTECTED, cond) and not _cond(template, {}, cond)
        # The grant exists only while protected routes are on.
        (grant,) = [
            st["Fn::If"]
            for policy in role["Properties"]["Policies"]
            for st in policy["PolicyDocument"]["Statement"]
            if "Fn::If" in st and st["Fn::If"][1].get("Resource") == {"Ref": "CloudFrontPrivateKeySecretArn"}
        ]
        assert grant[2] == {"Ref": "AWS::NoValue"}
        assert _cond(template, PROTECTED, grant[0]) and not _cond(template, {}, grant[0])
    else:
        assert "CLOUDFRONT_PRIVATE_KEY_SECRET_ARN" not in env


def test_kms_decrypt_only_through_secrets_manager(transformed):
    for role in resources(transformed, "AWS::IAM::Role").values():
        for st in statements(role):
            if "kms:Decrypt" in as_list(st["Action"]):
                assert st["Resource"] == {"Ref": "SecretsKmsKeyArn"}
                assert "kms:ViaService" in st["Condition"]["StringEquals"]


@pytest.mark.parametrize("prefix,binary", FUNCTIONS.items())
def test_environment(transformed, prefix, binary):
    env = transformed["Resources"][f"{prefix}Function"]["Properties"]["Environment"]["Variables"]
    assert REQUIRED_ENV <= set(env)
    assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
    extra = set(env) - REQUIRED_ENV - {"OIDC_CLIENT_SECRET_ARN", "CONFIG_REVISION"}
    assert extra <= OPTIONAL_ENV[binary], f"{binary} gets {extra - OPTIONAL_ENV[binary]}"
    assert not FORBIDDEN_ENV & set(env)
    for name, value in env.items():
        # Values come from parameters, resources or literals without secrets.
        assert not re.search(r"secret|password|key", name, re.I) or name.endswith("_ARN") or name in PUBLIC_ENV, name


def test_secret_values_never_appear_in_the_template():
    text = TEMPLATE.read_text()
    for name in FORBIDDEN_ENV:
        assert not re.search(rf"\b{name}\s*:", text), f"{name} is for local use only"


def test_parameters_hold_no_secret_values(template):
    for name, p in template["Parameters"].items():
        assert not p.get("NoEcho"), f"{name}: a NoEcho parameter means a secret value in a parameter"
        if name in PUBLIC_KEY_PARAMETERS:
            continue  # public key material; test_public_key_parameters_refuse_private_keys
        if re.search(r"secret|password|key", name, re.I):
            assert name.endswith("Arn"), f"{name}: secrets are passed by ARN only"
            pattern = p["AllowedPattern"]
            assert pattern.removeprefix("^$|").startswith("^arn:"), f"{name}: must only accept an ARN"
    for arn in ("ClientSecretArn", "CookieKeysSecretArn"):
        p = template["Parameters"][arn]
        assert "Default" not in p
        assert ":secretsmanager:" in p["AllowedPattern"]


def test_table(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert list(tables) == ["AuthTable"]
    props = tables["AuthTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert "GlobalSecondaryIndexes" not in props and "LocalSecondaryIndexes" not in props
    assert "TableName" not in props, "named by CloudFormation; functions get TABLE_NAME"


def _if_on_parameter(template, value, parameter):
    """value is !If [Cond, true, false] and Cond is !Equals [!Ref parameter, "true"]."""
    cond, yes, no = value["Fn::If"]
    assert (yes, no) == (True, False)
    assert template["Conditions"][cond] == {"Fn::Equals": [{"Ref": parameter}, "true"]}


def test_point_in_time_recovery_off_by_default(template):
    props = template["Resources"]["AuthTable"]["Properties"]
    _if_on_parameter(
        template,
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        "TablePointInTimeRecovery",
    )
    assert template["Parameters"]["TablePointInTimeRecovery"]["Default"] == "false"


def test_deletion_protection_is_a_parameter(template):
    props = template["Resources"]["AuthTable"]["Properties"]
    _if_on_parameter(template, props["DeletionProtectionEnabled"], "TableDeletionProtection")
    assert template["Parameters"]["TableDeletionProtection"]["AllowedValues"] == ["true", "false"]


def test_routes(template):
    integrations = resources(template, "AWS::ApiGatewayV2::Integration")
    for name, integ in integrations.items():
        assert integ["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert integ["Properties"]["PayloadFormatVersion"] == "2.0", name
    fn_of_integration = {
        name: getatt_target(i["Properties"]["IntegrationUri"]) for name, i in integrations.items()
    }
    routes = {}
    for r in resources(template, "AWS::ApiGatewayV2::Route").values():
        target = r["Properties"]["Target"]["Fn::Sub"]
        integration = re.fullmatch(r"integrations/\$\{(\w+)\}", target).group(1)
        fn = fn_of_integration[integration]
        routes[r["Properties"]["RouteKey"]] = FUNCTIONS[fn.removesuffix("Function")]
    assert routes == EXPECTED_ROUTES


def test_preflight_is_answered_by_the_functions_not_api_gateway(template):
    (api,) = resources(template, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert "CorsConfiguration" not in api["Properties"]
    assert not resources(template, "AWS::Serverless::HttpApi")
    for p in FUNCTIONS:
        assert "Events" not in template["Resources"][f"{p}Function"]["Properties"]


def test_each_route_has_an_exact_invoke_permission(template):
    perms = set()
    for p in resources(template, "AWS::Lambda::Permission").values():
        props = p["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert props["Action"] == "lambda:InvokeFunction"
        fn = props["FunctionName"]["Ref"].removesuffix("Function")
        arn = props["SourceArn"]["Fn::Sub"]
        m = re.fullmatch(
            r"arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
            r"\$\{HttpApi\}/\*/([A-Z]+)(/\S+)",
            arn,
        )
        assert m, arn
        perms.add((f"{m.group(1)} {m.group(2)}", FUNCTIONS[fn]))
    assert perms == set(EXPECTED_ROUTES.items())


def test_stage_throttling_and_access_log(template):
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    settings = props["DefaultRouteSettings"]
    for key, param in (
        ("ThrottlingRateLimit", "ApiThrottlingRateLimit"),
        ("ThrottlingBurstLimit", "ApiThrottlingBurstLimit"),
    ):
        assert settings[key] == {"Ref": param}
        assert template["Parameters"][param]["Default"] > 0
    log = props["AccessLogSettings"]
    assert getatt_target(log["DestinationArn"]) in resources(template, "AWS::Logs::LogGroup")
    # The callback's query string carries the authorization code: never log paths or queries.
    for banned in ("$context.path", "$context.requestPath", "querystring", "$context.identity.caller"):
        assert banned not in log["Format"]


def test_log_groups_have_retention(template):
    groups = resources(template, "AWS::Logs::LogGroup")
    assert len(groups) == len(FUNCTIONS) + 1  # + API access log
    for name, g in groups.items():
        assert g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}, name
    for p in FUNCTIONS:
        cfg = template["Resources"][f"{p}Function"]["Properties"]["LoggingConfig"]
        assert cfg["LogGroup"] == {"Ref": f"{p}LogGroup"}


def test_site_is_optional_and_routes_auth_to_the_api(template):
    site_types = {
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::CloudFront::Distribution",
        "AWS::CloudFront::OriginAccessControl",
    }
    for name, r in template["Resources"].items():
        if r["Type"] in site_types:
            assert r.get("Condition") == "CreateSite", name
    assert template["Conditions"]["CreateSite"] == {"Fn::Equals": [{"Ref": "EnableSite"}, "true"]}

    bucket = template["Resources"]["SiteBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())

    dist = template["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]
    (auth,) = [b for b in dist["CacheBehaviors"] if b.get("PathPattern") == "/auth/*"]
    origins = {o["Id"]: o for o in dist["Origins"]}
    assert "CustomOriginConfig" in origins[auth["TargetOriginId"]]
    assert "HttpApi" in str(origins[auth["TargetOriginId"]]["DomainName"])
    assert {"GET", "POST", "OPTIONS"} <= set(auth["AllowedMethods"])
    assert auth["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert auth["ViewerProtocolPolicy"] == "https-only"


def test_outputs(template):
    outputs = template["Outputs"]
    for name in ("ApiEndpoint", "CallbackUrl", "BackchannelLogoutUrl", "TableName"):
        assert name in outputs
    # The URL to register at the provider is the one the functions send.
    redirect_env = template["Globals"]["Function"]["Environment"]["Variables"]["OIDC_REDIRECT_URI"]
    assert outputs["CallbackUrl"]["Value"] == redirect_env


def test_nothing_in_the_template_is_a_plain_secret(template):
    for s in strings_in(template):
        assert not re.search(r"-----BEGIN|AKIA[0-9A-Z]{16}", s)


def test_optional_api_domain_is_tls12_and_conditional(template):
    for name in ("ApiCustomDomain", "ApiCustomDomainMapping"):
        assert template["Resources"][name]["Condition"] == "UseApiDomain"
    (cfg,) = template["Resources"]["ApiCustomDomain"]["Properties"]["DomainNameConfigurations"]
    assert cfg["SecurityPolicy"] == "TLS_1_2"
    assert cfg["EndpointType"] == "REGIONAL"


# ------------------------------------------------- parameter combinations --
# A small evaluator for Conditions and Fn::If, to check which URLs the
# functions get in each supported setup.


def _param(template, params, name):
    if name in params:
        return params[name]
    return str(template["Parameters"][name].get("Default", ""))


def _cond(template, params, node):
    if isinstance(node, str):  # a condition name
        return _cond(template, params, template["Conditions"][node])
    (fn, arg), = node.items()
    if fn == "Condition":
        return _cond(template, params, arg)
    if fn == "Fn::Equals":
        a, b = (_param(template, params, x["Ref"]) if isinstance(x, dict) else x for x in arg)
        return a == b
    if fn == "Fn::Not":
        return not _cond(template, params, arg[0])
    if fn == "Fn::And":
        return all(_cond(template, params, x) for x in arg)
    if fn == "Fn::Or":
        return any(_cond(template, params, x) for x in arg)
    raise AssertionError(fn)


def _eval(template, params, node):
    """Resolves Fn::If and Ref-to-parameter; leaves Fn::Sub text for inspection."""
    if isinstance(node, dict) and "Fn::If" in node:
        cond, yes, no = node["Fn::If"]
        return _eval(template, params, yes if _cond(template, params, cond) else no)
    if isinstance(node, dict) and "Ref" in node:
        ref = node["Ref"]
        return _param(template, params, ref) if ref in template["Parameters"] else ref
    if isinstance(node, dict) and "Fn::Sub" in node:
        text = node["Fn::Sub"]
        for p in re.findall(r"\$\{(\w+)\}", text):
            if p in template["Parameters"]:
                text = text.replace("${%s}" % p, _param(template, params, p))
        return text
    return node


def _rules_hold(template, params):
    for rule in template["Rules"].values():
        if "RuleCondition" in rule and not _cond(template, params, rule["RuleCondition"]):
            continue
        for a in rule["Assertions"]:
            if not _cond(template, params, a["Assert"]):
                return False
    return True


SETUPS = {
    "built-in CloudFront site (defaults)": (
        {},
        "https://${SiteDistribution.DomainName}/auth/callback",
        "https://${SiteDistribution.DomainName}",
    ),
    "built-in site on a custom domain": (
        {"SiteDomainName": "www.example.com", "SiteCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
        "https://www.example.com/auth/callback",
        "https://www.example.com",
    ),
    "own CDN in front of the API": (
        {"EnableSite": "false", "AuthPublicOrigin": "https://www.example.com",
         "AllowedOrigins": "https://www.example.com", "DefaultReturnTo": "https://www.example.com/",
         "PostLogoutRedirectUri": "https://www.example.com/"},
        "https://www.example.com/auth/callback",
        "https://www.example.com",
    ),
    "exchange mode on a sibling API domain": (
        {"EnableSite": "false", "SessionHandoff": "exchange", "ApiDomainName": "auth.example.com",
         "ApiCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x",
         "AllowedOrigins": "https://www.example.com", "DefaultReturnTo": "https://www.example.com/",
         "PostLogoutRedirectUri": "https://www.example.com/"},
        "https://${ApiCustomDomain}/auth/callback",
        "https://www.example.com",
    ),
    "exchange mode on the execute-api domain": (
        {"EnableSite": "false", "SessionHandoff": "exchange",
         "AllowedOrigins": "https://www.example.com", "DefaultReturnTo": "https://www.example.com/",
         "PostLogoutRedirectUri": "https://www.example.com/"},
        "${HttpApi.ApiEndpoint}/auth/callback",
        "https://www.example.com",
    ),
}  # fmt: skip


@pytest.mark.parametrize("setup", SETUPS)
def test_urls_per_setup(template, setup):
    params, redirect_uri, origins = SETUPS[setup]
    assert _rules_hold(template, params), "a supported setup must pass the template's Rules"
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    values = {k: _eval(template, params, v) for k, v in env.items()}
    assert values["OIDC_REDIRECT_URI"] == redirect_uri
    assert values["ALLOWED_ORIGINS"] == origins
    for name in ("DEFAULT_RETURN_TO", "POST_LOGOUT_REDIRECT_URI"):
        assert isinstance(values[name], str) and values[name].startswith(origins), (name, values[name])


@pytest.mark.parametrize(
    "params",
    [
        {"EnableSite": "false"},  # no origins to redirect to
        {"EnableSite": "false", "AllowedOrigins": "https://a.example", "DefaultReturnTo": "https://a.example/",
         "PostLogoutRedirectUri": "https://a.example/"},  # cookie mode, cross-site API
        {"SiteDomainName": "www.example.com"},  # custom domain without certificate
        {"EnableSite": "false", "SessionHandoff": "exchange", "ApiDomainName": "auth.example.com",
         "AllowedOrigins": "https://a.example", "DefaultReturnTo": "https://a.example/",
         "PostLogoutRedirectUri": "https://a.example/"},  # API domain without certificate
    ],
)  # fmt: skip
def test_rules_refuse_broken_setups(template, params):
    assert not _rules_hold(template, params)


# ------------------------------------------- access policy and max_age --


@pytest.mark.parametrize(
    "parameter,variable,value",
    [("AllowedGroups", "ALLOWED_GROUPS", "members,staff"),
     ("RequiredAcr", "REQUIRED_ACR", "urn:example:mfa"),
     ("MaxAge", "MAX_AGE", "3600")],
)  # fmt: skip
def test_access_policy_parameters_reach_exactly_the_functions_that_use_them(template, parameter, variable, value):
    p = template["Parameters"][parameter]
    assert p["Default"] == "", f"{parameter}: empty means off"
    assert re.fullmatch(p["AllowedPattern"], value)
    for prefix, binary in FUNCTIONS.items():
        env = _function_env(template, {parameter: value}, prefix)
        if variable in OPTIONAL_ENV[binary]:
            assert env[variable] == value, (binary, variable)
            assert variable not in _function_env(template, {}, prefix), f"{binary}: {variable} set while off"
        else:
            assert variable not in env, (binary, variable)


def test_access_policy_parameter_patterns(template):
    params = template["Parameters"]
    assert re.fullmatch(params["MaxAge"]["AllowedPattern"], "0") is None, "the functions refuse max_age 0"
    assert re.fullmatch(params["MaxAge"]["AllowedPattern"], "-5") is None
    assert re.fullmatch(params["RequiredAcr"]["AllowedPattern"], "a b") is None, "acr_values is space-separated"
    assert re.fullmatch(params["AllowedGroups"]["AllowedPattern"], "Site Members, staff")
    assert re.fullmatch(params["AllowedGroups"]["AllowedPattern"], ",") is None


# ------------------------------------------------------ protected routes --
# Evaluated the way CloudFormation would with the feature's parameters set:
# Rules, resource Conditions and every Fn::If are resolved.

NO_VALUE = object()


def _resolve(template, params, node):
    """Resolves Fn::If, Ref to parameters and AWS::NoValue throughout `node`."""
    if isinstance(node, dict):
        if "Fn::If" in node:
            cond, yes, no = node["Fn::If"]
            return _resolve(template, params, yes if _cond(template, params, cond) else no)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        if set(node) == {"Ref"} and node["Ref"] in template["Parameters"]:
            return _param(template, params, node["Ref"])
        out = {k: _resolve(template, params, v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (_resolve(template, params, x) for x in node) if v is not NO_VALUE]
    return node


def _deployed(template, params):
    """The resources CloudFormation would create, resolved."""
    assert _rules_hold(template, params)
    return {
        name: _resolve(template, params, r)
        for name, r in template["Resources"].items()
        if "Condition" not in r or _cond(template, params, r["Condition"])
    }


def _function_env(template, params, prefix):
    glob = template["Globals"]["Function"]["Environment"]["Variables"]
    own = template["Resources"][f"{prefix}Function"]["Properties"].get("Environment", {}).get("Variables", {})
    return _resolve(template, params, {**glob, **own})


def _distribution(deployed):
    return deployed["SiteDistribution"]["Properties"]["DistributionConfig"]


def test_protected_routes_are_off_by_default(template):
    deployed = _deployed(template, {})
    types = {r["Type"] for r in deployed.values()}
    assert not types & {"AWS::CloudFront::KeyGroup", "AWS::CloudFront::PublicKey"}
    dist = _distribution(deployed)
    assert [b["PathPattern"] for b in dist["CacheBehaviors"]] == ["/auth/*"]
    assert "CustomErrorResponses" not in dist
    assert not any("TrustedKeyGroups" in b for b in [dist["DefaultCacheBehavior"], *dist["CacheBehaviors"]])
    for prefix in FUNCTIONS:
        env = _function_env(template, {}, prefix)
        assert not {k for k in env if k.startswith("CLOUDFRONT_") or k == "PROTECTED_PATHS"}, prefix


def test_protected_routes_key_group_and_cache_behaviour(template):
    deployed = _deployed(template, PROTECTED)
    groups = {n: r for n, r in deployed.items() if r["Type"] == "AWS::CloudFront::KeyGroup"}
    keys = {n: r for n, r in deployed.items() if r["Type"] == "AWS::CloudFront::PublicKey"}
    (group_name, group), = groups.items()
    assert list(keys) == ["CloudFrontPublicKey1"]
    assert keys["CloudFrontPublicKey1"]["Properties"]["PublicKeyConfig"]["EncodedKey"] == FAKE_PUBLIC_PEM
    assert group["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": "CloudFrontPublicKey1"}]

    dist = _distribution(deployed)
    (protected,) = [b for b in dist["CacheBehaviors"] if b["PathPattern"] == "/members/*"]
    assert protected["TrustedKeyGroups"] == [{"Ref": group_name}]
    assert protected["TargetOriginId"] == dist["DefaultCacheBehavior"]["TargetOriginId"], "the site's bucket"
    assert set(protected["AllowedMethods"]) == {"GET", "HEAD"}
    assert protected["ViewerProtocolPolicy"] in ("https-only", "redirect-to-https")
    # Only the protected pattern is restricted: /auth/* and the rest of the site are not.
    others = [dist["DefaultCacheBehavior"], *(b for b in dist["CacheBehaviors"] if b is not protected)]
    assert not any("TrustedKeyGroups" in b or "TrustedSigners" in b for b in others)
    assert [b["PathPattern"] for b in dist["CacheBehaviors"]][0] == "/auth/*"


def test_protected_routes_map_403_to_the_login_required_page(template):
    dist = _distribution(_deployed(template, PROTECTED))
    (page,) = [e for e in dist["CustomErrorResponses"] if e["ErrorCode"] == 403]
    assert page["ResponsePagePath"] == "/login-required.html"
    assert page["ResponseCode"] == 403, "still a refusal, not a 200 that caches as content"
    assert page.get("ErrorCachingMinTTL", 10) == 0
    # The page itself must be served by a behaviour without trusted keys.
    assert not re.fullmatch(PROTECTED["ProtectedPathPattern"].replace("*", ".*"), page["ResponsePagePath"])
    assert (ROOT / "demo" / "login-required.html").exists()
    assert (ROOT / "demo" / "login-required.js").exists()


def test_protected_routes_let_s3_answer_404_for_missing_objects(template):
    def statements_of(deployed):
        return deployed["SiteBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    (listing,) = [st for st in statements_of(_deployed(template, PROTECTED)) if st["Action"] == "s3:ListBucket"]
    assert listing["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert listing["Resource"] == {"Fn::GetAtt": ["SiteBucket", "Arn"]}, "the bucket only, not its objects"
    assert "AWS:SourceArn" in listing["Condition"]["StringEquals"]
    assert not [st for st in statements_of(_deployed(template, {})) if st["Action"] == "s3:ListBucket"]


def test_protected_routes_private_key_only_by_arn_and_only_to_signers(template):
    arn = template["Parameters"]["CloudFrontPrivateKeySecretArn"]
    assert arn["AllowedPattern"].removeprefix("^$|").startswith("^arn:aws[a-z-]*:secretsmanager:")
    assert not arn.get("NoEcho")
    # Referenced only by the signers' roles (GetSecretValue on exactly that
    # ARN) and their environment (the ARN, never a value).
    referencing = {
        name for name, r in template["Resources"].items()
        if {"Ref": "CloudFrontPrivateKeySecretArn"} in list(_dicts_in(r))
    }  # fmt: skip
    signers = {p for p, b in FUNCTIONS.items() if b in NEEDS_SIGNING_KEY}
    assert referencing == {f"{p}{kind}" for p in signers for kind in ("Role", "Function")}
    deployed = _deployed(template, PROTECTED)
    for prefix, binary in FUNCTIONS.items():
        env = _function_env(template, PROTECTED, prefix)
        grants = {
            r if isinstance(r, str) else str(r)
            for st in _resolved_statements(deployed[f"{prefix}Role"])
            if "secretsmanager:GetSecretValue" in as_list(st["Action"])
            for r in as_list(st["Resource"])
        }
        if binary in NEEDS_SIGNING_KEY:
            assert env["CLOUDFRONT_PRIVATE_KEY_SECRET_ARN"] == PROTECTED["CloudFrontPrivateKeySecretArn"]
            assert PROTECTED["CloudFrontPrivateKeySecretArn"] in grants
        else:
            assert "CLOUDFRONT_PRIVATE_KEY_SECRET_ARN" not in env, binary
            assert PROTECTED["CloudFrontPrivateKeySecretArn"] not in grants, binary


def test_protected_routes_environment(template):
    for prefix, binary in FUNCTIONS.items():
        env = _function_env(template, PROTECTED, prefix)
        if "PROTECTED_PATHS" in OPTIONAL_ENV[binary]:
            assert env["PROTECTED_PATHS"] == "/members/*", binary
            # !Ref of an AWS::CloudFront::PublicKey is its id.
            assert env["CLOUDFRONT_KEY_PAIR_ID"] == {"Ref": "CloudFrontPublicKey1"}, binary
        else:
            assert "PROTECTED_PATHS" not in env and "CLOUDFRONT_KEY_PAIR_ID" not in env, binary
        if binary in NEEDS_SIGNING_KEY:
            assert env["CLOUDFRONT_COOKIE_TTL_SECS"] == "900"
        else:
            assert "CLOUDFRONT_COOKIE_TTL_SECS" not in env


def test_protected_routes_rotate_through_the_second_key_slot(template):
    second = FAKE_PUBLIC_PEM.replace("IDAQAB", "IDAQAC")
    both = {**PROTECTED, "CloudFrontPublicKeyPem2": second}
    # Step 1: the new key joins the group; signing still uses slot 1.
    deployed = _deployed(template, both)
    items = deployed["CloudFrontKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"]
    assert items == [{"Ref": "CloudFrontPublicKey1"}, {"Ref": "CloudFrontPublicKey2"}]
    assert _function_env(template, both, "Callback")["CLOUDFRONT_KEY_PAIR_ID"] == {"Ref": "CloudFrontPublicKey1"}
    # Step 2: sign with slot 2.
    switched = {**both, "CloudFrontSigningSlot": "2"}
    for prefix in ("Callback", "Refresh", "Logout"):
        assert _function_env(template, switched, prefix)["CLOUDFRONT_KEY_PAIR_ID"] == {"Ref": "CloudFrontPublicKey2"}
    # Step 3: slot 1 emptied; its key leaves the group and is deleted.
    only2 = {**switched, "CloudFrontPublicKeyPem": ""}
    deployed = _deployed(template, only2)
    assert "CloudFrontPublicKey1" not in deployed
    assert deployed["CloudFrontKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": "CloudFrontPublicKey2"}]


@pytest.mark.parametrize(
    "params",
    [
        {**PROTECTED, "EnableSite": "false", "AuthPublicOrigin": "https://www.example.com",
         "AllowedOrigins": "https://www.example.com", "DefaultReturnTo": "https://www.example.com/",
         "PostLogoutRedirectUri": "https://www.example.com/"},  # no distribution to protect
        {**PROTECTED, "SessionHandoff": "exchange"},  # cookies would land on the API's host
        {**PROTECTED, "CloudFrontPrivateKeySecretArn": ""},  # nothing to sign with
        {**PROTECTED, "CloudFrontPublicKeyPem": ""},  # signing slot empty
        {**PROTECTED, "CloudFrontSigningSlot": "2"},  # slot 2 empty
    ],
)  # fmt: skip
def test_rules_refuse_broken_protected_routes(template, params):
    assert not _rules_hold(template, params)


def test_protected_path_pattern_is_a_prefix_outside_auth(template):
    pattern = template["Parameters"]["ProtectedPathPattern"]["AllowedPattern"]
    for ok in ("", "/members/*", "/members/premium/*", "/a_b-c.d~e/*"):
        assert re.fullmatch(pattern, ok), ok
    # /* would cover /login-required.html and /auth/*; /auth/... would shadow
    # the API; ; and , would break the cookie's Path and PROTECTED_PATHS.
    for bad in ("/*", "*", "/auth/*", "/auth/x/*", "/members", "/members*", "members/*",
                "/mem;bers/*", "/a,b/*", "/members/*/x", "//*"):  # fmt: skip
        assert not re.fullmatch(pattern, bad), bad


def test_public_key_parameters_refuse_private_keys(template):
    for name in PUBLIC_KEY_PARAMETERS:
        p = template["Parameters"][name]
        assert p["Default"] == "" and not p.get("NoEcho")
        pattern = p["AllowedPattern"]
        assert re.fullmatch(pattern, FAKE_PUBLIC_PEM)
        assert re.fullmatch(pattern, FAKE_PUBLIC_PEM.rstrip("\n")), "with or without the final newline"
        for kind in ("PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
            private = FAKE_PUBLIC_PEM.replace("PUBLIC KEY", kind)
            assert not re.fullmatch(pattern, private), (name, kind)
        assert not re.fullmatch(pattern, FAKE_PUBLIC_PEM + FAKE_PUBLIC_PEM.replace("PUBLIC", "PRIVATE"))


# ----------------------------------------------------- CloudFront -> API --


def test_cloudfront_forwards_what_the_functions_read_and_caches_nothing(template):
    dist = template["Resources"]["SiteDistribution"]["Properties"]["DistributionConfig"]
    (auth,) = [b for b in dist["CacheBehaviors"] if b.get("PathPattern") == "/auth/*"]
    assert auth["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    # Managed-AllViewerExceptHostHeader: every viewer header but Host (Origin,
    # X-Requested-With, Authorization, Accept, User-Agent), all cookies, all
    # query strings. A custom origin request policy could not forward
    # Authorization; the managed AllViewer* ones do when caching is disabled.
    assert auth["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert "ForwardedValues" not in auth, "legacy cache settings would override the policies"
    assert "TrustedKeyGroups" not in auth


def test_optional_web_acl_on_the_distribution(template):
    acl = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/site/0123abcd-0123-4567-89ab-0123456789ab"
    assert re.fullmatch(template["Parameters"]["SiteWebAclArn"]["AllowedPattern"], acl)
    assert not re.fullmatch(
        template["Parameters"]["SiteWebAclArn"]["AllowedPattern"],
        "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/site/0123abcd",
    ), "CloudFront takes only global web ACLs"
    assert _distribution(_deployed(template, {"SiteWebAclArn": acl}))["WebACLId"] == acl
    assert "WebACLId" not in _distribution(_deployed(template, {}))


def _dicts_in(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _dicts_in(v)
    elif isinstance(node, list):
        for v in node:
            yield from _dicts_in(v)


def _resolved_statements(role):
    return [st for policy in role["Properties"]["Policies"] for st in policy["PolicyDocument"]["Statement"]]
