"""ARM's answer to a request without valid credentials: 401 with ARM's error body and a
WWW-Authenticate challenge, when the Authorization header is missing, is not a bearer token,
or (when the emulator has a `token`) is not that token."""

from __future__ import annotations

from .emulator import Request, Response


def unauthenticated(request: Request, token: str | None) -> Response | None:
    """ARM's 401 when the Authorization header is missing, not a bearer, or (with `token`)
    not the expected one. Codes and messages as ARM answers them (recorded in public issue
    threads: hashicorp/terraform-provider-azurerm#3612, Azure/azure-sdk-for-python#4124)."""
    auth = request.headers.get("authorization", "").strip()
    if not auth:
        code, message, why = ("AuthenticationFailed",
                              "Authentication failed. The 'Authorization' header is missing.",
                              "missing 'Authorization' header")
    elif not auth.lower().startswith("bearer ") or not auth[7:].strip():
        code, message, why = ("AuthenticationFailedInvalidHeader",
                              "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                              "invalid format of 'Authorization' header")
    elif token is not None and auth[7:].strip() != token:
        code, message, why = "InvalidAuthenticationToken", "The access token is invalid.", "invalid access token"
    else:
        return None
    challenge = (f'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
                 f'error_description="The authentication failed because of {why}."')
    return Response(401, {"error": {"code": code, "message": message}}, {"WWW-Authenticate": challenge})
