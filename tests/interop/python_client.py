#!/usr/bin/env python3
"""Talks to a SPIFFE Workload API with the independent `spiffe` package (py-spiffe).

Used by Lanyard's end-to-end test `interop_python`: the agent under test is found through
SPIFFE_ENDPOINT_SOCKET, exactly as any workload would find it, and nothing here knows it is
Lanyard. The script uses only the package's public API and prints one JSON object with what
each call returned, so that the Rust test can check it; it exits non-zero, naming the call
that failed, when a call the SPIFFE Workload API spec requires does not work.

Usage: python_client.py OUT_DIR AUDIENCE

OUT_DIR receives the files the package itself writes (X509Svid.save, X509Bundle.save):
svid.pem (leaf first, then intermediates), svid_key.pem and bundle.pem, for `openssl verify`.
"""

import base64
import json
import os
import sys
import traceback
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from spiffe import JwtSource, JwtSvid, TrustDomain, WorkloadApiClient, X509Source

# Generous for a loaded CI machine, finite so that a hung call fails the test with a reason.
TIMEOUT_SECONDS = 20.0


class CallFailed(Exception):
    """One Workload API call failed; the message names the call."""


def call(name, fn, *args, **kwargs):
    """Runs one call, turning any failure into a CallFailed that names it."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 -- the package raises many types; all are failures
        raise CallFailed(f"{name}: {type(err).__name__}: {err}") from err


def spki(public_key):
    """DER SubjectPublicKeyInfo, to compare keys without trusting either side's encoding."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ).hex()


def jws_part(token, index):
    """Decodes one part of a compact JWS (0: header, 1: claims) without checking anything."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def described(jwt_svid):
    """The SPIFFE ID and audience of a JwtSvid the package returned."""
    return {"spiffe_id": str(jwt_svid.spiffe_id), "audience": sorted(jwt_svid.audience)}


def x509_part(client, out_dir):
    """FetchX509SVID and FetchX509Bundles through the one-shot client calls."""
    ctx = call("fetch_x509_context", client.fetch_x509_context)
    svid = ctx.default_svid
    td = svid.spiffe_id.trust_domain
    bundle = ctx.x509_bundle_set.get_bundle_for_trust_domain(td)
    if bundle is None:
        raise CallFailed(f"fetch_x509_context: no X.509 bundle for the SVID's trust domain {td}")

    call(
        "X509Svid.save",
        svid.save,
        out_dir / "svid.pem",
        out_dir / "svid_key.pem",
        serialization.Encoding.PEM,
    )
    call("X509Bundle.save", bundle.save, out_dir / "bundle.pem", serialization.Encoding.PEM)

    bundles = call("fetch_x509_bundles", client.fetch_x509_bundles)
    return {
        "spiffe_id": str(svid.spiffe_id),
        "svid_count": len(ctx.x509_svids),
        "chain_length": len(svid.cert_chain),
        "key_matches_leaf": spki(svid.private_key.public_key()) == spki(svid.leaf.public_key()),
        "bundle_trust_domains": sorted(str(b.trust_domain) for b in ctx.x509_bundle_set.bundles),
        "bundle_authorities": len(bundle.x509_authorities),
        "fetch_x509_bundles_trust_domains": sorted(str(b.trust_domain) for b in bundles.bundles),
    }


def x509_source_part(socket):
    """The streaming FetchX509SVID behind X509Source, which keeps the stream open."""
    source = call("X509Source", X509Source, socket_path=socket, timeout_in_seconds=TIMEOUT_SECONDS)
    try:
        return {"spiffe_id": str(source.get_x509_context().default_svid.spiffe_id)}
    finally:
        source.close()


def jwt_part(client, audience):
    """FetchJWTSVID, ValidateJWTSVID (right and wrong audience) and FetchJWTBundles."""
    svid = call("fetch_jwt_svid", client.fetch_jwt_svid, {audience})
    token = svid.token

    by_agent = call("validate_jwt_svid", client.validate_jwt_svid, token, audience)
    wrong_audience_error = None
    try:
        client.validate_jwt_svid(token, audience + "-not-this-one")
    except Exception as err:  # noqa: BLE001 -- any refusal is what the spec asks for
        wrong_audience_error = f"{type(err).__name__}: {err}"

    jwt_bundles = call("fetch_jwt_bundles", client.fetch_jwt_bundles)
    td = svid.spiffe_id.trust_domain
    jwt_bundle = jwt_bundles.get_bundle_for_trust_domain(td)
    if jwt_bundle is None:
        raise CallFailed(f"fetch_jwt_bundles: no JWT bundle for the token's trust domain {td}")
    local = call(
        "JwtSvid.parse_and_validate", JwtSvid.parse_and_validate, token, jwt_bundle, {audience}
    )

    return {
        "spiffe_id": str(svid.spiffe_id),
        # The token itself is not printed, only its header and claims.
        "header": jws_part(token, 0),
        "claims": jws_part(token, 1),
        "audience": sorted(svid.audience),
        "expiry": svid.expiry,
        "validated_by_agent": described(by_agent),
        "wrong_audience_error": wrong_audience_error,
        "validated_locally": described(local),
        "jwt_bundle_trust_domains": sorted(str(b.trust_domain) for b in jwt_bundles.bundles),
        "jwt_bundle_key_ids": sorted(jwt_bundle.jwt_authorities.keys()),
    }


def jwt_source_part(socket, audience):
    """The streaming FetchJWTBundles behind JwtSource, plus a fetch through it."""
    source = call("JwtSource", JwtSource, socket_path=socket, timeout_in_seconds=TIMEOUT_SECONDS)
    try:
        svid = call("JwtSource.fetch_svid", source.fetch_svid, {audience})
        bundle = source.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
        if bundle is None:
            raise CallFailed("JwtSource: no JWT bundle for the token's trust domain")
        checked = call(
            "JwtSvid.parse_and_validate", JwtSvid.parse_and_validate, svid.token, bundle, {audience}
        )
        return {"spiffe_id": str(checked.spiffe_id)}
    finally:
        source.close()


def main(argv):
    if len(argv) != 3:
        print(f"usage: {argv[0]} OUT_DIR AUDIENCE", file=sys.stderr)
        return 2
    out_dir, audience = Path(argv[1]), argv[2]
    out_dir.mkdir(parents=True, exist_ok=True)
    socket = os.environ.get("SPIFFE_ENDPOINT_SOCKET")
    if not socket:
        print("SPIFFE_ENDPOINT_SOCKET is not set", file=sys.stderr)
        return 2

    try:
        client = call("WorkloadApiClient", WorkloadApiClient, default_timeout=TIMEOUT_SECONDS)
        try:
            result = {
                "x509": x509_part(client, out_dir),
                "x509_source": x509_source_part(socket),
                "jwt": jwt_part(client, audience),
                "jwt_source": jwt_source_part(socket, audience),
            }
        finally:
            client.close()
    except CallFailed as err:
        traceback.print_exc(file=sys.stderr)
        print(f"FAILED: {err}", file=sys.stderr)
        return 1

    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
