"""Client-facing network faults: a Kafka-aware TCP proxy per broker (127.0.0.1 only).

    proxies = await ProxySet.start({1: ("127.0.0.1", 9092), 2: ("127.0.0.1", 9093)})
    proxies.bootstrap                 # give this to clients: they stay on the proxies
    proxies[2].set_latency(200)       # +200 ms on every response from broker 2
    proxies[2].drop()                 # reset connections to broker 2 and refuse new ones
    proxies[2].blackhole()            # accept, swallow, never answer
    proxies[2].clear()
    await proxies.close()

Brokers keep advertising their own listeners to each other, so these faults affect the
clients that connect through the proxies (metadata and coordinator answers are rewritten to
point at the proxies), never inter-broker replication or the Raft quorum.
"""

from core.netfaults.proxy import BrokerProxy, ProxySet

__all__ = ["BrokerProxy", "ProxySet"]
