"""RFC 6749, The OAuth 2.0 Authorization Framework: the code flow and its grants."""
