"""The stack bench-fleet deploys, written for pyinfra as a user would write it honestly:
replicas as instances of a template unit, a socat route unit, and haproxy.cfg validated
with `haproxy -c` before it goes live and reloaded only when it changed. Host data (from
the generated inventory.py): replicas, base_port, next_ip."""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd

replicas = host.data.replicas
base = host.data.base_port

ECHO_UNIT = """[Unit]
Description=echo replica %i (pyinfra)

[Service]
ExecStart=/usr/bin/socat TCP-LISTEN:%i,fork,reuseaddr EXEC:cat
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

ROUTE_UNIT = f"""[Unit]
Description=route 8443 -> {host.data.next_ip}:8500 (pyinfra)
After=network-online.target

[Service]
ExecStart=/usr/bin/socat TCP-LISTEN:8443,fork,reuseaddr TCP:{host.data.next_ip}:8500
Restart=always

[Install]
WantedBy=multi-user.target
"""

servers = "".join(
    f"    server r{p} 127.0.0.1:{p} check inter 2000 fall 3 rise 2\n"
    for p in range(base, base + replicas)
)
HAPROXY = f"""global
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend echo
    bind :8500
    default_backend echo

backend echo
    balance roundrobin
{servers}"""

echo_unit = files.put(
    name="replica unit",
    src=StringIO(ECHO_UNIT),
    dest="/etc/systemd/system/pyecho@.service",
)
route_unit = files.put(
    name="route unit",
    src=StringIO(ROUTE_UNIT),
    dest="/etc/systemd/system/pyroute.service",
)
systemd.daemon_reload(
    name="systemd reads the units",
    _if=lambda: echo_unit.did_change() or route_unit.did_change(),
)
for port in range(base, base + replicas):
    systemd.service(
        name=f"replica {port}",
        service=f"pyecho@{port}.service",
        running=True,
        enabled=True,
    )
systemd.service(
    name="route",
    service="pyroute.service",
    running=True,
    enabled=True,
)
systemd.service(
    name="route restarted",
    service="pyroute.service",
    restarted=True,
    _if=route_unit.did_change,
)
staged = files.put(
    name="haproxy.cfg (staged)",
    src=StringIO(HAPROXY),
    dest="/etc/haproxy/haproxy.cfg.pyinfra",
)
server.shell(
    name="haproxy.cfg checked, then live",
    commands=[
        "haproxy -c -q -f /etc/haproxy/haproxy.cfg.pyinfra && cp /etc/haproxy/haproxy.cfg.pyinfra /etc/haproxy/haproxy.cfg"
    ],
    _if=staged.did_change,
)
systemd.service(
    name="haproxy reloaded",
    service="haproxy.service",
    running=True,
    reloaded=True,
    _if=staged.did_change,
)
