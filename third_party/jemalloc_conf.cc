// jemalloc's options for the binaries that link //third_party:malloc. The
// library reads this variable at start-up (a definition in the executable
// overrides its weak default); MALLOC_CONF in the environment still applies
// on top, for an experiment.
//
// - background_thread: a jemalloc thread returns freed pages to the kernel
//   on time, without waiting for the next malloc call to do it. A sidecar
//   that served a burst and went quiet must shrink back under its pod's
//   memory limit, not keep the burst's pages.
// - dirty_decay_ms 1000 (default 10000), muzzy_decay_ms 0: freed pages go
//   back within about a second. bench/inflight.sh measures the effect.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's interface.
const char* malloc_conf =
    "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
