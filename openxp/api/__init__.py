"""The ClearXP API (``/api/...``): Bearer token plus ``X-CXP-Tenant``."""
