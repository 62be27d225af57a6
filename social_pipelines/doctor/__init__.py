"""`social-pipelines doctor`: is this deployment healthy, and are its schedules and sensors
really running?

Every check is a row (name, ok / warn / problem, detail); a problem makes the command exit
1, a warning does not. The modules:

- `report`: the rows, their summary, the table and the JSON document;
- `state`: settings, the state store's schema, accounts and tokens, circuits, quotas,
  deliveries and posts, read through the wiring (plain Python, no Dagster);
- `instance`: the Dagster instance, the daemon's heartbeats, each schedule and sensor
  with its last tick;
- `listeners`: whether a Dagster UI on this machine listens beyond loopback (Linux /proc);
- `cli`: the command.
"""
