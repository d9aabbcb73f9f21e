#include "uce/core/process.h"

#include <cstdlib>

#if defined(__linux__)
#include <unistd.h>
#endif

namespace uce {

void preferPassiveOpenMpWait(char** argv) {
#if defined(__linux__)
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;  // the user's choice, or already re-executed
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  // Returns only on failure: go on with the default policy here (children still sleep).
  execv("/proc/self/exe", argv);
#else
  (void)argv;
#endif
}

}  // namespace uce
