"""Ports: refuse to start on a port that something else already holds."""

from __future__ import annotations

import socket

import psutil


class PortInUseError(RuntimeError):
    pass


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _holder(port: int) -> str:
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    proc = psutil.Process(conn.pid)
                    return f" by pid {conn.pid} ({' '.join(proc.cmdline()[:3])})"
    except (psutil.Error, PermissionError):
        pass
    return ""


def ensure_free(host: str, port: int, what: str, setting: str) -> None:
    """Raise PortInUseError naming the port, its holder and the setting to change."""
    if port_open(host, port):
        raise PortInUseError(
            f"cannot start {what}: port {port} on {host} is already in use{_holder(port)}. "
            f"Stop that program or choose another port with {setting}=<port>."
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
