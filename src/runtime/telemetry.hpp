// DPDK telemetry: `/ustack/stats` returns every stack counter summed over
// lcores, as a dict (read with relaxed loads from DPDK's telemetry thread);
// `/ustack/tcp` the gauges a leak check wants (TCP connections, TIME-WAIT,
// free mbufs), summed and per queue.
//
//   dpdk-telemetry.py   then   --> /ustack/stats
//
// DPDK cannot unregister a command, so the callback finds the runtime through
// a pointer that attach/detach set under a mutex (control plane only; the
// poll loops never see it). When EAL runs without telemetry the command is
// simply never called.
#pragma once

namespace ustack {

class Runtime;

void telemetry_attach(Runtime* rt);
void telemetry_detach(Runtime* rt);

}  // namespace ustack
