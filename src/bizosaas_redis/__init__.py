"""BizOSaaS Redis cache service: settings, redis.conf rendering and the Pulumi component."""
