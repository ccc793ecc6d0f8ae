"""Re-authentication before a sensitive console action (L-10, Q-02; GitHub's "sudo mode").

Rotating or creating a secret (an integration's, an API key's) and managing admins hand out
credentials or privileges, so a session alone is not enough: its admin must have typed the
password within ``OPENXP_CONSOLE_REAUTH_SECONDS`` (sign-in counts). The time is the session's
``authenticated_at`` in the database, never anything the browser sends. Outside the window the
action is not done; the answer is a page asking for the password whose form posts the same action
again, the original form's fields carried along as hidden inputs, so nothing typed is lost and no
script is needed. The password is checked by :func:`openxp.web.signin.reauthenticate`: the
sign-in's budget and lockout, audited as ``reauth_succeeded`` / ``reauth_failed`` /
``reauth_throttled``.
"""

from __future__ import annotations

from starlette.responses import Response

from openxp.web import signin
from openxp.web.console.context import Console

FIELD = "reauth_password"
# Fields of the original form the prompt does not carry: its own token is added afresh.
NOT_CARRIED = frozenset({"csrf_token", FIELD})


def _window(seconds: int) -> str:
    if seconds == 0:
        return "The console asks for it before every such action."
    if seconds % 60 == 0:
        minutes = seconds // 60
        span = f"{minutes} minute{'' if minutes == 1 else 's'}"
    else:
        span = f"{seconds} second{'' if seconds == 1 else 's'}"
    return f"Then for {span} it does not ask again."


def _prompt(ctx: Console, what: str, back: str, *, error: str = "", status: int) -> Response:
    return ctx.render(
        "reauth.html",
        {
            "what": what,
            "back": ctx.url(back),
            "action_url": ctx.request.url.path,
            "carried": [(name, value) for name, value in ctx.form.items() if name not in NOT_CARRIED],
            "field": FIELD,
            "error": error,
            "window": _window(ctx.rt.settings.console_reauth_window),
        },
        status=status,
    )


async def check_password(ctx: Console, password: str, action: str) -> None:
    """The signed-in admin's own password, throttled and audited as a sign-in is (the same
    counters and lockout); raises ``signin.SignInRefused``. A success opens the window again."""
    await signin.reauthenticate(
        ctx.rt,
        ctx.request,
        tenant_id=ctx.tenant.id,
        tenant=ctx.tenant.name,
        account=ctx.account,
        session_hash=ctx.session.id_hash,
        password=password,
        action=action,
    )


async def confirm(ctx: Console, *, action: str, what: str, back: str) -> Response | None:
    """None when the sensitive ``action`` may be done now; otherwise the answer to send instead,
    and nothing was changed. ``what`` completes "To ..., enter your password" on the prompt;
    ``back`` is the page (under the tenant) that Cancel returns to.

    A posted password is always checked, even within the window: a wrong one is refused."""
    password = ctx.form.get(FIELD)
    if password is None:
        if ctx.recently_authenticated:
            return None
        # 403: the session is understood but is not enough for this action until the password.
        return _prompt(ctx, what, back, status=403)
    try:
        await check_password(ctx, password, action)
    except signin.SignInRefused as refused:
        response = _prompt(ctx, what, back, error=refused.message, status=refused.status)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    return None
