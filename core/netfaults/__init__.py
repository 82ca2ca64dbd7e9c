"""Network faults: a Kafka-aware TCP proxy per broker (127.0.0.1 only) and per-broker faults.

    proxies = await ProxySet.start({1: ("127.0.0.1", 9092), 2: ("127.0.0.1", 9093)})
    proxies.bootstrap                 # give this to clients: they stay on the proxies
    proxies[2].set_latency(200)       # +200 ms on every round trip to broker 2
    proxies[2].drop()                 # reset connections to broker 2 and refuse new ones
    proxies[2].blackhole()            # accept, swallow, never answer
    proxies[2].isolate()              # cut broker 2 off from the other brokers only
    proxies[2].clear()
    await proxies.close()

With ProxySet.start the brokers keep advertising their own listeners to each other, so the
faults reach only the clients that connect through the proxies (answers are rewritten to point
at them). The supervisor (core.cluster) instead makes every broker advertise its proxy, so
client *and* inter-broker traffic (replication, Raft, heartbeats) crosses the proxies and
``isolate`` partitions one broker from its peers; see core.netfaults.proxy.
"""

from core.netfaults.faults import FAULTS, FaultTable, LinkFault, source_broker
from core.netfaults.proxy import BrokerProxy, ProxySet

__all__ = ["FAULTS", "BrokerProxy", "FaultTable", "LinkFault", "ProxySet", "source_broker"]
