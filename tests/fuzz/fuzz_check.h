// FUZZ_CHECK: the invariant check of egressd's fuzz targets. A failed check
// prints what broke and aborts, which libFuzzer reports as a crash and saves
// the input as a reproducer (and the Bazel corpus replay tests fail).
// Deliberately not assert(): it must hold in optimised builds too.
#ifndef EGRESS_TESTS_FUZZ_FUZZ_CHECK_H_
#define EGRESS_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, ...)                                       \
  do {                                                                   \
    if (!(condition)) {                                                  \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n  ", __FILE__, \
                   __LINE__, #condition);                                \
      std::fprintf(stderr, __VA_ARGS__);                                 \
      std::fprintf(stderr, "\n");                                        \
      std::abort();                                                      \
    }                                                                    \
  } while (0)

#endif  // EGRESS_TESTS_FUZZ_FUZZ_CHECK_H_
