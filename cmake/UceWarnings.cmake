# Warnings are errors in our own code; third-party headers come in as SYSTEM includes.
# -DUCE_WERROR=OFF keeps the warnings but not as errors (e.g. against a newer LibTorch whose
# deprecations this code has not met yet).
option(UCE_WERROR "Treat compiler warnings in our code as errors" ON)
function(uce_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-error=deprecated-declarations)
  if(UCE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
