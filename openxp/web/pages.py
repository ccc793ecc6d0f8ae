"""The authorization endpoint's pages: authorize, login, consent, logout.

Everything the consent decision acts on comes from the stored interaction
(validated once, at ``GET /auth/oauth/authorize``), never from the form, and
the interaction is bound to the browser session that started it (B-04, B-05).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openxp import audit, crypto, scopes
from openxp.oauth.errors import AccessDenied, InvalidRequest
from openxp.oauth.rfc6749 import authorization
from openxp.oauth.rfc6749.authorization import AuthorizationError, InvalidAuthorizationRequest
from openxp.runtime import Runtime, client_ip, runtime
from openxp.store import accounts as account_store
from openxp.store import clients as client_store
from openxp.store import grants as grant_store
from openxp.store import sessions as session_store
from openxp.store import tenants as tenant_store
from openxp.store.accounts import AUTHORIZE_INTEGRATIONS, Account
from openxp.store.clients import Client
from openxp.store.db import now
from openxp.store.sessions import Interaction, Session
from openxp.web import browser, signin
from openxp.web.forms import Refused, current_session, posted

MAX_QUERY = 16 * 1024


def _redirect(url: str) -> RedirectResponse:
    # 303: the browser follows with GET and never re-posts the password (RFC 9700 4.12).
    return RedirectResponse(url, status_code=303)


def _send_back(rt: Runtime, err: AuthorizationError) -> RedirectResponse:
    return _redirect(authorization.error_redirect(err, rt.settings.issuer))


def _eligible(account: Account | None, client: Client) -> bool:
    return account is not None and account.tenant_id == client.tenant_id and account.may(AUTHORIZE_INTEGRATIONS)


async def authorize(request: Request) -> Response:
    rt = runtime(request)
    raw_query = request.scope.get("query_string", b"")
    if len(raw_query) > MAX_QUERY:
        return browser.error_page("The authorization request is too long.", status=414)
    try:
        async with rt.db.read() as conn:
            req = await authorization.validate(conn, raw_query)
    except InvalidAuthorizationRequest as exc:
        audit.event("authorize_rejected", severity="warning", reason=exc.message, ip=client_ip(request, rt.settings))
        return browser.error_page(exc.message)
    except AuthorizationError as err:
        return _send_back(rt, err)

    token, session = await current_session(rt, request)
    async with rt.db.write() as conn:
        if session is None:
            token = await session_store.start_session(conn, None, rt.settings.session_absolute_ttl)
            session_hash = crypto.digest(token)
        else:
            session_hash = session.id_hash
            await session_store.touch_session(conn, session_hash)
        interaction = await session_store.create_interaction(
            conn,
            session_hash=session_hash,
            client_pk=req.client.id,
            redirect_uri=req.redirect_uri,
            scope=scopes.join(req.scope),
            state=req.state,
            code_challenge=req.code_challenge,
            ttl=rt.settings.interaction_ttl,
        )
        account = await account_store.get_by_id(conn, session.account_id) if session and session.account_id else None
    assert token is not None
    if _eligible(account, req.client):
        assert account is not None
        response = _consent_page(rt, token, interaction, req.client, req.tenant, account, req.redirect_uri, req.scope)
    else:
        response = _login_page(token, interaction, req.client, req.tenant, req.redirect_uri)
    browser.set_session_cookie(response, rt.settings, token)
    return response


def _login_page(
    token: str,
    interaction: str,
    client: Client,
    tenant: str,
    redirect_uri: str,
    *,
    error: str = "",
    email: str = "",
    status: int = 200,
) -> Response:
    return browser.render(
        "login.html",
        {
            "client_name": client.name,
            "tenant": tenant,
            "csrf_token": browser.csrf_token(token),
            "interaction": interaction,
            "error": error,
            "email": email,
        },
        status=status,
        form_targets=[browser.origin_of(redirect_uri)],
    )


def _consent_page(
    rt: Runtime,
    token: str,
    interaction: str,
    client: Client,
    tenant: str,
    account: Account,
    redirect_uri: str,
    scope: list[str],
) -> Response:
    return browser.render(
        "consent.html",
        {
            "client_name": client.name,
            "tenant": tenant,
            "email": account.email,
            "scopes": [(s, scopes.SCOPES.get(s, s)) for s in scope],
            "redirect_host": urlsplit(redirect_uri).netloc,
            "csrf_token": browser.csrf_token(token),
            "interaction": interaction,
        },
        form_targets=[browser.origin_of(redirect_uri)],
    )


async def _interaction(rt: Runtime, interaction_id: str, session: Session) -> tuple[Interaction, Client, str]:
    async with rt.db.read() as conn:
        found = await session_store.find_interaction(conn, interaction_id) if interaction_id else None
        if found is None or found.used or found.expires_at <= now():
            raise Refused(browser.error_page("This sign-in request expired or was already used."))
        if not crypto.equals(found.session_hash, session.id_hash):
            # Someone else's pending request, e.g. planted by an attacker (B-05).
            audit.event("interaction_foreign_session", severity="warning")
            raise Refused(
                browser.error_page(
                    "This sign-in request belongs to another browser session.", title="Forbidden", status=403
                )
            )
        client = await client_store.find_by_pk(conn, found.client_pk)
        tenant = await tenant_store.get_by_id(conn, client.tenant_id) if client else None
    if client is None or tenant is None or client.disabled or tenant.disabled:
        raise Refused(browser.error_page("The client is unknown or disabled."))
    return found, client, tenant.name


def _deny(rt: Runtime, interaction: Interaction, error: AccessDenied | InvalidRequest) -> RedirectResponse:
    return _send_back(rt, AuthorizationError(error, interaction.redirect_uri, interaction.state))


async def login(request: Request) -> Response:
    rt = runtime(request)
    try:
        form, token, session = await posted(rt, request)
        interaction_id = form.get("interaction", "")
        interaction, client, tenant = await _interaction(rt, interaction_id, session)
    except Refused as refused:
        return refused.response
    email = form.get("email", "").strip()
    password = form.get("password", "")

    def again(message: str, status: int = 200) -> Response:
        return _login_page(
            token,
            interaction_id,
            client,
            tenant,
            interaction.redirect_uri,
            error=message,
            email=email[:320],
            status=status,
        )

    try:
        signed_in = await signin.sign_in(
            rt,
            request,
            tenant_id=client.tenant_id,
            tenant=tenant,
            email=email,
            password=password,
            old_session_hash=session.id_hash,
        )
    except signin.SignInRefused as refused:
        response = again(refused.message, status=refused.status)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    account, new_token = signed_in.account, signed_in.token

    if not _eligible(account, client):
        async with rt.db.write() as conn:
            await session_store.consume_interaction(conn, interaction_id, crypto.digest(new_token))
        audit.event("consent_refused_role", tenant=tenant, account=account.id, actor=account.email)
        response = _deny(rt, interaction, AccessDenied("this account may not authorize integrations for this tenant"))
    else:
        response = _redirect(f"/auth/oauth/consent?interaction={interaction_id}")
    browser.set_session_cookie(response, rt.settings, new_token)
    return response


async def consent_page(request: Request) -> Response:
    rt = runtime(request)
    token, session = await current_session(rt, request)
    interaction_id = request.query_params.get("interaction", "")
    if token is None or session is None or session.account_id is None:
        return browser.error_page("Your session expired. Start again from the application.")
    try:
        interaction, client, tenant = await _interaction(rt, interaction_id, session)
    except Refused as refused:
        return refused.response
    async with rt.db.read() as conn:
        account = await account_store.get_by_id(conn, session.account_id)
    if not _eligible(account, client):
        return browser.error_page("This account may not authorize integrations for this tenant.", status=403)
    assert account is not None
    return _consent_page(
        rt, token, interaction_id, client, tenant, account, interaction.redirect_uri, scopes.parse(interaction.scope)
    )


async def consent(request: Request) -> Response:
    rt = runtime(request)
    try:
        form, _token, session = await posted(rt, request)
        interaction_id = form.get("interaction", "")
        # Refuses another session's request with 403 before anything is consumed (B-05).
        await _interaction(rt, interaction_id, session)
    except Refused as refused:
        return refused.response
    if session.account_id is None:
        return browser.error_page("Sign in first.", status=403)
    decision = form.get("decision")
    if decision not in ("allow", "deny"):
        return browser.error_page("Choose Allow or Deny.")
    async with rt.db.write() as conn:
        interaction = await session_store.consume_interaction(conn, interaction_id, session.id_hash)
        if interaction is None:
            return browser.error_page("This authorization request expired or was already decided.")
        client = await client_store.find_by_pk(conn, interaction.client_pk)
        account = await account_store.get_by_id(conn, session.account_id)
        if client is None or client.disabled:
            return browser.error_page("The client is unknown or disabled.")
        if not _eligible(account, client):
            return browser.error_page("This account may not authorize integrations for this tenant.", status=403)
        assert account is not None
        if decision == "deny":
            audit.event(
                "consent_denied",
                account=account.id,
                client_id=client.client_id,
                tenant_id=client.tenant_id,
                actor=account.email,
            )
            return _deny(rt, interaction, AccessDenied("the administrator denied the request"))
        issued = await authorization.issue_code(conn, interaction, client, account, rt.settings)
    audit.event(
        "consent_given",
        grant=issued.grant_id,
        client_id=client.client_id,
        tenant_id=client.tenant_id,
        actor=account.email,
        scope=interaction.scope,
    )
    audit.event(
        "code_issued",
        grant=issued.grant_id,
        account=account.id,
        client_id=client.client_id,
        tenant_id=client.tenant_id,
        actor=account.email,
    )
    return _redirect(issued.redirect)


async def logout(request: Request) -> Response:
    rt = runtime(request)
    try:
        _form_values, _token, session = await posted(rt, request)
    except Refused as refused:
        return refused.response
    async with rt.db.write() as conn:
        await session_store.end_session(conn, session.id_hash)
    response = browser.render("message.html", {"title": "Signed out", "message": "You are signed out of openxp."})
    browser.clear_session_cookie(response, rt.settings)
    return response


async def demo_callback(request: Request) -> Response:
    """Stands in for an integration's server in the quick start: shows the code and the exchange
    to make with it, naming the client the code was issued to (its id is no secret; its secret is
    never shown: only its digest is stored)."""
    q = request.query_params
    rt = runtime(request)
    code = q.get("code", "")[:200]
    redirect_uri = f"{rt.settings.public_url}/demo/callback"
    client_id = None
    if code:
        async with rt.db.read() as conn:
            client_id = await grant_store.client_of_code(conn, crypto.digest(code), redirect_uri)
    return browser.render(
        "callback.html",
        {
            "code": code,
            "error": q.get("error", "")[:100],
            "description": q.get("error_description", "")[:300],
            "base": rt.settings.public_url,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
        },
    )
