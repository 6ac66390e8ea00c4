"""The daemon: the composition root that schedules backups, verifies, prunes and drills.

- `service`: the `Daemon` (scheduler, signals, health endpoint, the run loop)
- `ops`: the operations the daemon's jobs call
- `jobs`, `schedule`, `rpo`, `due`, `streams`: what runs when, admission, catch-up after
  an RPO breach, the WAL and binary log streams
- `runtime`, `sdnotify`: the process's life under systemd
- `metrics`, `notify`, `status`: what operators see: Prometheus metrics, alerts, `status`
- `fleetmode`, `fleetwiring`: fleet mode (which member runs which job, once per slot)
"""
