"""The few HTML pages: login, consent, error and sign-out (no JavaScript)."""
