"""The web demo and REST API (scripts/serve.py): keypoints.web.app.create_app; its load test
(scripts/load_test.py): keypoints.web.load. Their settings' checks are here, so a command checks its
config before FastAPI (the `web` extra) is imported."""

from keypoints.core.checks import BOOLEAN, number, one_of, optional, whole


def host_pattern(value) -> bool:
    """A Host: name as Starlette's TrustedHostMiddleware takes it: a name, `*.` a domain, or `*`."""
    return isinstance(value, str) and value.strip() != "" and "*" not in value[1:] \
        and (not value.startswith("*") or value == "*" or value.startswith("*."))


RULES = {  # keypoints/conf/serve.yaml
    "host": ((lambda v: isinstance(v, str) and v.strip() != ""), "a host name or address (127.0.0.1, 0.0.0.0, ...)"),
    "port": whole(0, 65535),
    "max_upload_mb": number(0.0, inclusive=False),
    "max_concurrency": whole(1),
    "max_queue": whole(0),
    "header_timeout_s": number(0.0, inclusive=False),
    "body_timeout_s": number(0.0, inclusive=False),
    "keep_alive_s": number(0.0, inclusive=False),
    "max_connections": whole(1),
    "allowed_hosts": optional(((lambda v: isinstance(v, list) and len(v) > 0 and all(map(host_pattern, v))),
                               "a list of host names (['example.org', '*.example.org', '127.0.0.1'], or ['*'] for any)")),
    "log_level": one_of("critical", "error", "warning", "info", "debug", "trace"),
    "draw_pose": BOOLEAN,
}
LOAD_TEST_RULES = {  # conf/load_test.yaml
    "requests": whole(1),
    "concurrency": whole(1),
    "slow": whole(0),
    "timeout_s": number(0.0, inclusive=False),
}
