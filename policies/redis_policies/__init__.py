"""BizOSaaS Redis policy rules (see rules.py)."""
