"""The OAuth 2.0 authorization server: one module per RFC, as the spec is the map.

- ``rfc6749``: the authorization endpoint, client authentication, the token
  endpoint and its two grants (authorization code, refresh token);
- ``rfc7636``: PKCE (S256 only);
- ``rfc7009``: token revocation;
- ``rfc7662``: token introspection;
- ``rfc8414``: authorization server metadata (with RFC 9207's ``iss``).

No web framework is imported here except in ``endpoints``, which turns HTTP
requests into calls on these modules and their errors into responses.
"""
