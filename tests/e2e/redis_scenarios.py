"""The Redis drill: real faults on the Sentinel deployment (main) and the plain pair (sessions), the alerts they
must and must not fire, and every command of the Redis runbook pages run against the live servers.

main runs one fault after the other (each needs the deployment whole again); sessions runs beside it, with a
sidecar exporter per server where main has one multi-target exporter. Roles move with failovers, so servers are
found by what the sentinels say, never by their starting names.
"""

from __future__ import annotations

import re
import socket
import time

from .harness import (DOWN_AFTER_MS, SERVICE, Failure, Moment, Proc, RedisError, redis_call, redis_info,
                      redis_url, sentinel_master, wait_until)
from .runbook_drill import COVERAGE, PageDrill, World, labels_as_variables
from .scenarios import SLACK_S, Ctx, note, scenario

MAIN, SESSIONS = "main", "sessions"
DATA_MEMBERS, DATA_COUNTER = 500, 332   # the drill's victims: a 500-member set, a counter at 332
SENTINEL_NOTICES_S = DOWN_AFTER_MS / 1000 + 1.0  # a sentinel marks a peer or the master down after this


def addr(proc: Proc) -> str:
    return f"127.0.0.1:{proc.port}"


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def live_sentinels(ctx: Ctx) -> list[Proc]:
    return [s for s in ctx.stack.sentinels if s.alive()]


def agreed_master(ctx: Ctx, timeout: float = 20.0) -> str:
    """The master every live sentinel names (waiting, bounded, while they disagree)."""
    def agreed():
        answers = {sentinel_master(s.port) for s in live_sentinels(ctx)}
        return answers.pop() if len(answers) == 1 else None
    return wait_until(agreed, timeout, "the live sentinels to agree on the master", *live_sentinels(ctx))


def main_world(ctx: Ctx) -> World:
    stack = ctx.stack
    down = frozenset(addr(p) for p in [*stack.redis.values(), *stack.sentinels] if not p.alive())
    return World(down, agreed_master(ctx))


def sessions_world(ctx: Ctx) -> World:
    stack = ctx.stack
    down = frozenset(addr(p) for p in stack.redis.values() if not p.alive())
    return World(down, addr(stack.redis["sessions-master"]))


class Drill:
    """Opens runbook pages of one component, filled from an alert's labels and the operator's choices."""

    def __init__(self, ctx: Ctx, component: str) -> None:
        self.ctx, self.component, self.opened = ctx, component, 0
        self.world = (lambda: main_world(ctx)) if component == MAIN else (lambda: sessions_world(ctx))

    def page(self, alert: str, labels: dict[str, str] | None = None, **chosen: str) -> PageDrill:
        self.opened += 1
        workdir = self.ctx.stack.root / "drill" / f"{self.component}-{self.opened}-{alert}"
        variables = {**labels_as_variables(labels or {}), **chosen}
        return PageDrill(self.ctx.stack.runbook(alert), self.component, workdir, variables, self.world)


def replicaof(output: str) -> tuple[str, str]:
    """The ``replicaof <host> <port>`` line a page printed, to start a returning server with."""
    found = re.search(r"^replicaof (\S+) (\d+)$", output, re.M)
    assert found, f"the page printed no replicaof line: {output!r}"
    return found[1], found[2]


def ckquorum(sentinel: Proc) -> str:
    """A sentinel's answer to SENTINEL ckquorum: OK …, or the NOQUORUM … error."""
    try:
        return str(redis_call(sentinel.port, "SENTINEL", "ckquorum", "mymaster"))
    except RedisError as error:
        return str(error)


def write_victims(port: int, prefix: str) -> None:
    """Data a wrong restart loses (the drill's finding): a 500-member set and a counter, acknowledged by the
    replica (replication is asynchronous: what the replica has not acknowledged, a failover loses anyway)."""
    redis_call(port, "SADD", f"{prefix}:set", *(str(i) for i in range(DATA_MEMBERS)))
    redis_call(port, "SET", f"{prefix}:counter", str(DATA_COUNTER))
    acked = redis_call(port, "WAIT", "1", "5000", timeout=10)
    assert acked >= 1, f"the replica did not acknowledge the writes to {port} within 5s (WAIT answered {acked})"
    # WAIT can count a replica that has just finished a full resync (after the drill's refused link) before it
    # applies the stream: the drill is about what the pages lose, so the data must be on every replica first
    replicas = [v for k, v in redis_info(port).items() if re.fullmatch(r"slave\d+", k)]
    for entry in replicas:
        replica = int(dict(kv.split("=", 1) for kv in entry.split(","))["port"])
        deadline = time.monotonic() + 10
        while redis_call(replica, "SCARD", f"{prefix}:set") != DATA_MEMBERS:
            assert time.monotonic() < deadline, f"replica {replica} of {port} never applied the writes: " \
                                                f"{redis_info(replica)}"
            time.sleep(0.1)


def assert_victims(port: int, prefix: str) -> None:
    found = (redis_call(port, "SCARD", f"{prefix}:set"), redis_call(port, "GET", f"{prefix}:counter"))
    assert found == (DATA_MEMBERS, str(DATA_COUNTER)), (
        f"data lost on {port}: {prefix}:set has {found[0]} members, {prefix}:counter is {found[1]!r}; "
        f"{redis_info(port)}")


def until(check, timeout: float, what: str, *procs: Proc):
    return wait_until(check, timeout, what, *procs, interval=0.5)


def synced(replica: Proc) -> bool:
    """The replica follows its master for real: link up, no sync running, and a replication offset. (After the
    refused PSYNC, Redis can report the link up with no master state at all, offsets -1, nothing applied.)"""
    info = redis_info(replica.port)
    return (info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == "0"
            and int(info.get("slave_repl_offset", "-1")) >= 0)


def resync(replica: Proc) -> None:
    """Wait for the replica to follow its master again. Once, if it stays in the state above (Redis's quirk after
    a refused PSYNC, not the pages' subject), drop its connection to the master so that it syncs afresh."""
    try:
        until(lambda: synced(replica), 20, "the replica to resync", replica)
    except Failure:
        redis_call(replica.port, "CLIENT", "KILL", "TYPE", "master")
        until(lambda: synced(replica), 20, "the replica to resync after its master link was dropped", replica)


def settle(ctx: Ctx, component: str, since: Moment, *alerts: str) -> None:
    """Each of ``alerts`` resolves within 30s of ``since``, and stays resolved two evaluations later (the next
    fault must not meet the tail of this one)."""
    for alert in alerts:
        ctx.resolves(alert, since, 30, component=component)
    ctx.inactive_now(*alerts, component=component)


def no_critical(ctx: Ctx, component: str, since: Moment, what: str) -> None:
    """No critical alert of ``component`` fired since ``since``. (Pending is allowed: targets' scrapes fail at
    their own offsets within a scrape interval, and the `for` is there to outlast such moments.)"""
    seen = [a for _, a in ctx.watcher.seen({"component": component, "severity": "critical"}, since.mono,
                                           time.monotonic()) if a["state"] == "firing"]
    assert not seen, f"{what}: critical alerts fired: {sorted({a['labels']['alertname'] for a in seen})}"


# -- main: the Sentinel deployment -----------------------------------------------------------------

def lose_replica_and_sentinel(ctx: Ctx, drill: Drill) -> None:
    """Stop the replica and one sentinel: two warnings (RedisReplicaDown, RedisSentinelDown), nothing critical.
    Their pages find the master through the sentinels still up, and bring both back."""
    stack = ctx.stack
    master = stack.server_at(port_of(agreed_master(ctx)))
    replica = next(p for p in (stack.redis["main-master"], stack.redis["main-replica"]) if p is not master)
    sentinel = stack.sentinels[0]
    fault = Moment.now()
    replica.stop()
    sentinel.stop()
    _, lost = ctx.fires("RedisReplicaDown", fault, component=MAIN, instance=redis_url(replica))
    _, sentinels = ctx.fires("RedisSentinelDown", fault, fill=SENTINEL_NOTICES_S, component=MAIN,
                             master_name="mymaster")
    assert sentinels["annotations"]["description"].startswith("Master mymaster: 2 of 3 sentinels report healthy")
    no_critical(ctx, MAIN, fault, "a replica and a sentinel down")

    page = drill.page("RedisSentinelDown", sentinels["labels"])
    out = page.run("Diagnosis")
    assert f"{addr(sentinel)}: Could not connect" in out, "the page does not show which sentinel is down"
    sentinel.start()
    until(lambda: page.run("Mitigation").count("OK 3 usable Sentinels") == 3, 20,
          "every sentinel to count 3 usable again", *stack.sentinels)

    page = drill.page("RedisReplicaDown", lost["labels"])
    page.run("Diagnosis")
    host, port = replicaof(page.run("Mitigation", 0))
    assert f"{host}:{port}" == addr(master)
    back = Moment.now()
    replica.start("--replicaof", host, port)
    until(lambda: redis_info(replica.port).get("master_link_status") == "up", 20, "the replica to resync", replica)
    out = page.run("Mitigation", 1)
    assert "role:slave" in out and "master_link_status:up" in out
    settle(ctx, MAIN, back, "RedisReplicaDown", "RedisSentinelDown", "RedisNoHealthyReplica")
    no_critical(ctx, MAIN, fault, "a replica and a sentinel down, then back")


def refuse_the_replica_link(ctx: Ctx, drill: Drill) -> None:
    """The replica stays up but the master refuses its PSYNC (an ACL): Sentinel still counts it ok, yet
    RedisNoHealthyReplica fires (the master has no connected replica); the page's ACL LOG names the cause."""
    stack = ctx.stack
    master = stack.server_at(port_of(agreed_master(ctx)))
    replica = next(p for p in (stack.redis["main-master"], stack.redis["main-replica"]) if p is not master)
    redis_call(master.port, "ACL", "SETUSER", "default", "-psync", "-sync")
    redis_call(master.port, "CLIENT", "KILL", "TYPE", "replica")
    fault = Moment.now()
    try:
        _, alone = ctx.fires("RedisNoHealthyReplica", fault, component=MAIN, instance=redis_url(master))
        ok_slaves = ctx.value('max(redis_sentinel_master_ok_slaves{job="redis", master_name="mymaster"})')
        assert ok_slaves == 1, f"Sentinel should still count the replica ok (the drill's blind spot), not {ok_slaves}"
        _, broken = ctx.fires("RedisReplicationBroken", fault, component=MAIN, instance=redis_url(replica))
        out = drill.page("RedisNoHealthyReplica", alone["labels"]).run("Diagnosis")
        assert re.search(r"^p?sync$", out, re.M), "the page's ACL LOG did not show the refused (P)SYNC"
        assert "master_link_status:down" in out
        broken_page = drill.page("RedisReplicationBroken", broken["labels"])
        broken_page.run("Diagnosis")
    finally:
        redis_call(master.port, "ACL", "SETUSER", "default", "+@all")
    back = Moment.now()
    resync(replica)
    assert "slave0:" in drill.page("RedisNoHealthyReplica", alone["labels"]).run("Mitigation")
    broken_page.run("Mitigation")
    settle(ctx, MAIN, back, "RedisNoHealthyReplica", "RedisReplicationBroken")


def fail_over(ctx: Ctx, drill: Drill) -> None:
    """kill -9 of the master with the quorum intact: Sentinel fails over within RedisDown's `for`, so RedisDown
    never fires; RedisSentinelFailover names the old and the new address. The page brings the old master back as
    a replica, and Sentinel lists it healthy (role-reported slave, link ok); no data is lost."""
    stack = ctx.stack
    old = agreed_master(ctx)
    master = stack.server_at(port_of(old))
    write_victims(master.port, "drill")
    fault = Moment.now()
    master.kill9()
    # the switch is when the first sentinel names another master: the exporter may scrape that one before the
    # others agree, and the alert fires from its report
    switch = until(lambda: any(sentinel_master(s.port) != old for s in live_sentinels(ctx)) and Moment.now(),
                   SENTINEL_NOTICES_S + 20, "Sentinel to fail over", *stack.sentinels)
    new = agreed_master(ctx)
    # not active before the kill; detected within its bound of the switch (the exporter may see the switch before
    # this loop does, so the switch is no moment to ask "active before?")
    _, failover = ctx.fires("RedisSentinelFailover", fault, fill=switch.mono - fault.mono, master_name="mymaster",
                            master_address=new)
    assert failover["labels"].get("old_master_address") == old, failover["labels"]
    page = drill.page("RedisSentinelFailover", failover["labels"])
    page.run("Diagnosis")
    host, port = replicaof(page.run("Mitigation", 0))
    assert f"{host}:{port}" == new
    master.start("--replicaof", host, port)
    until(lambda: redis_info(master.port).get("master_link_status") == "up", 20, "the old master to resync", master)
    healthy = f"name={old} flags=slave role-reported=slave master-link-status=ok"
    until(lambda: healthy in page.run("Mitigation", 1), 30, f"Sentinel to list {old} as a healthy replica",
          *stack.sentinels)
    for port_ in (port_of(new), master.port):
        assert_victims(port_, "drill")
    down_for = ctx.for_s("RedisDown", MAIN)
    seen = ctx.quiet({"alertname": "RedisDown", "component": MAIN}, fault, fault.mono + down_for + SLACK_S,
                     states=("firing",))
    assert not seen, "RedisDown fired although Sentinel failed over within its `for`"
    note(f"redis_drill: Sentinel failed over {switch.mono - fault.mono:.1f}s after the kill (RedisDown's `for` is "
         f"{down_for:g}s: no page); the old master came back as a healthy replica, no data lost")


def fail_over_without_quorum(ctx: Ctx, drill: Drill) -> None:
    """Two sentinels stopped, then the master killed: no automatic failover, RedisDown pages. The page's first
    move, a manual failover on the live sentinel, ends the outage; the old master comes back as a replica and
    keeps the data; RedisSentinelQuorumAtRisk fires and says 1 of 3."""
    stack = ctx.stack
    gone = stack.sentinels[1:]
    quorum_fault = Moment.now()
    for s in gone:
        s.stop()
    lone = stack.sentinels[0]
    until(lambda: ckquorum(lone).startswith("NOQUORUM"), 20, "the last sentinel to see the quorum lost", lone)
    old = agreed_master(ctx)
    master = stack.server_at(port_of(old))
    write_victims(master.port, "quorum")
    fault = Moment.now()
    master.kill9()
    _, down = ctx.fires("RedisDown", fault, component=MAIN, instance=redis_url(master))
    page = drill.page("RedisDown", down["labels"])
    out = page.run("Diagnosis", errors=frozenset({"NOQUORUM"}))
    assert f"{addr(lone)}: NOQUORUM" in out and f"master: {old}" in out
    page.run("Mitigation", 0)
    until(lambda: agreed_master(ctx) != old, 20, "the manual failover", lone)
    ended = Moment.now()
    outage = ctx.resolves("RedisDown", ended, 20, component=MAIN)
    page.run("Diagnosis", errors=frozenset({"NOQUORUM"}))  # as the page says: the decision block again, for MASTER
    host, port = replicaof(page.run("Mitigation", 1))
    master.start("--replicaof", host, port)
    until(lambda: redis_info(master.port).get("master_link_status") == "up", 20, "the old master to resync", master)
    healthy = f"name={old} flags=slave role-reported=slave master-link-status=ok"
    until(lambda: healthy in page.run("Mitigation", 2), 30, f"Sentinel to list {old} as a healthy replica", lone)
    for port_ in (port_of(agreed_master(ctx)), master.port):
        assert_victims(port_, "quorum")

    _, risk = ctx.fires("RedisSentinelQuorumAtRisk", quorum_fault, fill=SENTINEL_NOTICES_S, component=MAIN)
    assert risk["annotations"]["description"].startswith("Master mymaster: 1 of 3 sentinels report healthy")
    page = drill.page("RedisSentinelQuorumAtRisk", risk["labels"])
    page.run("Diagnosis", errors=frozenset({"NOQUORUM"}))
    for s in gone:
        s.start()
    back = Moment.now()
    until(lambda: page.run("Mitigation", 1).count("OK 3 usable Sentinels") == 3, 30,
          "every sentinel to count 3 usable again", *stack.sentinels)
    settle(ctx, MAIN, back, "RedisSentinelQuorumAtRisk", "RedisSentinelDown")
    note(f"redis_drill: without quorum RedisDown fired; the page's manual failover ended it ({outage:.1f}s to "
         "resolve); the old master came back as a healthy replica, no data lost")


def no_replica_to_promote(ctx: Ctx, drill: Drill) -> None:
    """The replica stopped, then the master killed, every sentinel up: Sentinel has nothing to promote. RedisDown
    fires once per lost server; the page opened from the replica's (trial 3: it sorts first) shows no healthy
    replica, its manual failover answers NOGOODSLAVE on every sentinel instead of looping, and its exception
    (the lost master started as it was, then the replica as its replica) ends the outage."""
    stack = ctx.stack
    old = agreed_master(ctx)
    master = stack.server_at(port_of(old))
    replica = next(p for p in (stack.redis["main-master"], stack.redis["main-replica"]) if p is not master)
    assert "--replicaof" not in master.argv, "the drill restarts the master as it was: it must have been started one"
    fault = Moment.now()
    replica.stop()
    master.kill9()
    _, down = ctx.fires("RedisDown", fault, component=MAIN, instance=redis_url(replica))
    ctx.fires("RedisDown", fault, component=MAIN, instance=redis_url(master))
    page = drill.page("RedisDown", down["labels"])
    out = page.run("Diagnosis")
    assert f"master: {old}" in out, out
    assert f"name={addr(replica)} flags=s_down" in out, f"the decision block does not show the replica down: {out}"
    # A sentinel may answer INPROG: its own automatic attempt is running (and will abort: no replica to promote)
    out = page.run("Mitigation", 0, errors=frozenset({"NOGOODSLAVE", "INPROG"}))
    assert "NOGOODSLAVE" in out and "OK" not in out.split(), f"no sentinel may fail over: {out}"
    assert out.count("NOGOODSLAVE") + out.count("INPROG") == len(stack.sentinels), f"every sentinel should refuse: {out}"
    master.start()
    ended = Moment.now()
    ctx.resolves("RedisDown", ended, 30, component=MAIN)
    page.run("Diagnosis")  # as the page says: the decision block again, for MASTER
    host, port = replicaof(page.run("Mitigation", 1))
    assert f"{host}:{port}" == old
    back = Moment.now()
    replica.start("--replicaof", host, port)
    until(lambda: redis_info(replica.port).get("master_link_status") == "up", 20, "the replica to resync", replica)
    healthy = f"name={addr(replica)} flags=slave role-reported=slave master-link-status=ok"
    until(lambda: healthy in page.run("Mitigation", 2), 30, f"Sentinel to list {addr(replica)} as a healthy replica",
          *stack.sentinels)
    settle(ctx, MAIN, back, "RedisDown", "RedisReplicaDown")
    note("redis_drill: with no replica to promote RedisDown fired for both servers; the page's failover answered "
         "NOGOODSLAVE and its exception (the master as it was, then the replica) ended the outage")


def calm_pages(ctx: Ctx, drill: Drill) -> None:
    """The pages whose alerts the drill does not provoke on main, run on the healthy deployment: memory
    commands reach the master although the alert (here) named a replica."""
    stack = ctx.stack
    master = agreed_master(ctx)
    replica = next(p for p in (stack.redis["main-master"], stack.redis["main-replica"]) if addr(p) != master)
    redis_call(port_of(master), "SET", "drill:big", "x" * 100_000)
    page = drill.page("RedisMemoryHigh", {"instance": redis_url(replica)}, KEY="drill:big", MAXMEMORY="64mb")
    page.run("Diagnosis")
    page.run("Mitigation")
    assert redis_call(port_of(master), "EXISTS", "drill:big") == 0
    leak = [socket.create_connection(("127.0.0.1", port_of(master))) for _ in range(5)]
    try:
        page = drill.page("RedisRejectedConnections", {"instance": f"redis://{master}"}, MAXCLIENTS="10000",
                          CLIENT_HOST="127.0.0.1")
        assert re.search(r"^\s*\d+ 127\.0\.0\.1$", page.run("Diagnosis"), re.M)
        page.run("Mitigation")
    finally:
        for sock in leak:
            sock.close()


@scenario(app=False)
def redis_drill(ctx: Ctx) -> None:
    """The drill on the Sentinel deployment, one fault after the other."""
    drill = Drill(ctx, MAIN)
    lose_replica_and_sentinel(ctx, drill)
    refuse_the_replica_link(ctx, drill)
    fail_over(ctx, drill)
    fail_over_without_quorum(ctx, drill)
    no_replica_to_promote(ctx, drill)
    calm_pages(ctx, drill)


@scenario(app=False)
def redis_exporter_down(ctx: Ctx) -> None:
    """Stop the multi-target exporter (after the dashboards are checked): RedisExporterDown fires for each of its
    targets and nothing critical fires, although no Redis alert can see anything, nor the service's own
    InstanceDown or ServiceDown (they read the application's scrapes); it resolves once restarted."""
    ctx.after("redis_drill", "dashboards")
    stack = ctx.stack
    master = agreed_master(ctx)
    fault = Moment.now()
    stack.exporter.stop()
    _, blind = ctx.fires("RedisExporterDown", fault, component=MAIN, instance=f"redis://{master}")
    targets = {a["labels"]["instance"] for _, a in ctx.watcher.seen({"alertname": "RedisExporterDown",
                                                                    "component": MAIN}, fault.mono, time.monotonic())}
    assert len(targets) == 5, f"RedisExporterDown should name each of the exporter's 5 targets, named {targets}"
    page = Drill(ctx, MAIN).page("RedisExporterDown", blind["labels"], EXPORTER=f"127.0.0.1:{stack.exporter.port}")
    assert "PONG" in page.run("Diagnosis"), "Redis answers: only the exporter is blind"
    no_critical(ctx, MAIN, fault, "the exporter down")
    service = [a for _, a in ctx.watcher.seen({"service": SERVICE}, fault.mono, time.monotonic())
               if a["labels"]["alertname"] in ("ServiceDown", "InstanceDown")]
    assert not service, f"the exporter's failed scrapes fired the service's own alerts: {service}"
    back = Moment.now()
    stack.exporter.start()
    ctx.resolves("RedisExporterDown", back, 30, component=MAIN)


# -- sessions: the plain pair with sidecar exporters -------------------------------------------------

def restart_master_from_the_replica(ctx: Ctx, drill: Drill) -> None:
    """kill -9 of the master: RedisDown and RedisReplicationBroken fire. Restarted as it is (no persistence
    here) it would come back empty and its replica would resync the emptiness; the page saves the replica's copy
    into the master's RDB first, and nothing is lost."""
    stack = ctx.stack
    master, replica = stack.redis["sessions-master"], stack.redis["sessions-replica"]
    write_victims(master.port, "sessions")
    fault = Moment.now()
    master.kill9()
    _, down = ctx.fires("RedisDown", fault, component=SESSIONS, instance=redis_url(master))
    _, broken = ctx.fires("RedisReplicationBroken", fault, component=SESSIONS, instance=redis_url(replica))
    assert (broken["labels"]["master_host"], broken["labels"]["master_port"]) == ("127.0.0.1", str(master.port))
    drill.page("RedisReplicationBroken", broken["labels"]).run("Diagnosis")
    # REPLICA as the page says to find it: the instance label of the replicas' link series
    (link,) = ctx.prom.query('redis_master_link_up{job="redis-sessions"}')
    dump = master.workdir / "dump.rdb"
    page = drill.page("RedisDown", down["labels"], REPLICA=link["metric"]["instance"], DUMP=str(dump))
    page.run("Diagnosis")
    page.run("Mitigation", 0)
    assert dump.stat().st_size > 0
    back = Moment.now()
    master.start()
    wait_until(lambda: redis_call(master.port, "PING") == "PONG", 10, "the master to start", master)
    page.run("Mitigation", 1)
    until(lambda: redis_info(replica.port).get("master_link_status") == "up", 20, "the replica to resync", replica)
    sizes = [line for line in page.run("Mitigation", 2).splitlines() if line.strip().isdigit()]
    assert len(sizes) == 2 and sizes[0] == sizes[1], f"master and replica differ in size: {sizes}"
    for port in (master.port, replica.port):
        assert_victims(port, "sessions")
    settle(ctx, SESSIONS, back, "RedisDown", "RedisReplicationBroken")


def fill_memory(ctx: Ctx, drill: Drill) -> None:
    """Fill the master to 93% of its 64 MB maxmemory: RedisMemoryHigh fires for master and replica. From the
    replica's alert the page finds the master and deletes the key there (a replica is read-only)."""
    master, replica = ctx.stack.redis["sessions-master"], ctx.stack.redis["sessions-replica"]
    limit = 64 * 2 ** 20
    # 1 MB at a time: a client's query buffer counts as used memory, one 60 MB command would hit the limit itself.
    # Each step waits for the replica: while it lags, the master's replication buffer counts as used memory too,
    # and a fill judged on that would stop short and fall back under the threshold once the replica catches up.
    for _ in range(80):
        if int(redis_info(master.port, "memory")["used_memory"]) > 0.93 * limit:
            break
        redis_call(master.port, "APPEND", "sessions:big", "x" * 2 ** 20)
        redis_call(master.port, "WAIT", "1", "5000", timeout=10)
    used = int(redis_info(master.port, "memory")["used_memory"])
    assert used > 0.92 * limit, f"the fill stopped at {used / limit:.1%} of maxmemory"
    fault = Moment.now()
    _, high = ctx.fires("RedisMemoryHigh", fault, component=SESSIONS, instance=redis_url(replica))
    page = drill.page("RedisMemoryHigh", high["labels"], KEY="sessions:big", MAXMEMORY="64mb")
    assert f"master: {addr(master)}" in page.run("Diagnosis")
    page.run("Mitigation")
    settle(ctx, SESSIONS, Moment.now(), "RedisMemoryHigh")


def stop_a_sidecar(ctx: Ctx, drill: Drill) -> None:
    """Stop the replica's sidecar exporter: RedisExporterDown names the replica, and nothing else of sessions
    fires (the replica is fine; only its exporter is gone)."""
    replica = ctx.stack.redis["sessions-replica"]
    exporter = ctx.stack.sidecars["sessions-replica"]
    fault = Moment.now()
    exporter.stop()
    _, blind = ctx.fires("RedisExporterDown", fault, component=SESSIONS, instance=redis_url(replica))
    others = {a["labels"]["alertname"] for _, a in ctx.watcher.seen({"component": SESSIONS}, fault.mono,
                                                                      time.monotonic())} - {"RedisExporterDown"}
    assert not others, f"a sidecar exporter down fired {others} too"
    page = drill.page("RedisExporterDown", blind["labels"], EXPORTER=f"127.0.0.1:{exporter.port}")
    assert "PONG" in page.run("Diagnosis")
    back = Moment.now()
    exporter.start()
    settle(ctx, SESSIONS, back, "RedisExporterDown")


def sessions_calm_pages(ctx: Ctx, drill: Drill) -> None:
    """The sessions pages the faults above do not reach, run on the healthy pair."""
    master, replica = ctx.stack.redis["sessions-master"], ctx.stack.redis["sessions-replica"]
    drill.page("RedisNoHealthyReplica", {"instance": redis_url(master)}, REPLICA=redis_url(replica)).run("Diagnosis")
    drill.page("RedisNoHealthyReplica", {"instance": redis_url(master)}).run("Mitigation")
    page = drill.page("RedisReplicaDown", {"instance": redis_url(replica)})
    page.run("Diagnosis")
    page.run("Mitigation")
    page = drill.page("RedisRejectedConnections", {"instance": redis_url(master)}, MAXCLIENTS="10000",
                      CLIENT_HOST="127.0.0.1")
    page.run("Diagnosis")
    page.run("Mitigation")


@scenario(app=False)
def redis_replication(ctx: Ctx) -> None:
    """The drill on the plain pair: the master lost and restored from its replica, memory filled, an exporter
    gone."""
    drill = Drill(ctx, SESSIONS)
    restart_master_from_the_replica(ctx, drill)
    fill_memory(ctx, drill)
    stop_a_sidecar(ctx, drill)
    sessions_calm_pages(ctx, drill)


@scenario(app=False)
def redis_pages_covered(ctx: Ctx) -> None:
    """Every redis-cli command of every Redis page, for both deployments, ran against the live servers."""
    ctx.after("redis_drill", "redis_replication", "redis_exporter_down")
    runbooks = ctx.stack.root / "obsgen" / SERVICE / "runbooks"
    pages = {p.stem: p.read_text() for p in sorted(runbooks.glob("Redis*.md"))}
    assert len(pages) >= 10, sorted(pages)
    missing = COVERAGE.missing(pages, (MAIN, SESSIONS))
    assert not missing, f"{len(missing)} page commands never ran:\n" + "\n".join(missing)
    note(f"redis pages: every redis-cli command of {len(pages)} pages ran against the live servers "
         f"({sum(len(v) for v in COVERAGE.ran.values())} distinct lines)")
